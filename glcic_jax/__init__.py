"""glcic-jax: GLCIC face completion (Iizuka et al., SIGGRAPH 2017) in JAX/Flax."""

"""Speed tooling: the process allocator and the benchmark protocol (jax-free modules may be imported first)."""

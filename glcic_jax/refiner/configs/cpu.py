"""The shipped refiner's preset: `base_config()` with the correction kept to its detail band."""

from glcic_jax.refiner.configs import base_config


def get_config():
    c = base_config()
    c.preset = "cpu"
    c.detail_sigma = 2.0
    return c

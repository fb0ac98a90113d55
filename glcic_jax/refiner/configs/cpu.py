"""The shipped refiner's preset: `base_config()` unchanged."""

from glcic_jax.refiner.configs import base_config


def get_config():
    c = base_config()
    c.preset = "cpu"
    return c

"""A preset for CPUs: 64px, half width, all three phases in about 30 minutes on 2 cores.

Adam instead of ADADELTA reaches a usable model within the short schedule
(2,500 completion steps, 200 discriminator steps, 300 joint). launch.py's
default where JAX has no GPU/TPU plugin, and the base of photo64.
"""

import ml_collections

from glcic_jax.training import configs


def get_config() -> ml_collections.ConfigDict:
    """64px faces, widths 32, batch 16, Adam, 3,000 steps."""
    c = configs.base_config()
    c.preset = "cpu64"
    c.image_size = 64
    c.width = 32
    c.d_width = 32
    c.batch_size = 16
    c.optimizer = "adam"
    c.g_lr = 1e-3
    c.d_lr = 1e-4
    c.phase1_steps = 2_500
    c.phase2_steps = 200
    c.total_steps = 3_000
    c.log_every = 25
    c.sample_every = 500
    c.checkpoint_every = 500
    return c

"""Tests: 32 px crops of 64 and 96 px frames, width 4, batch 2, the detail band on; seconds."""

from glcic_jax.refiner.configs import base_config


def get_config():
    c = base_config()
    c.preset = "tiny"
    c.frame_sizes = (64, 96)
    c.crop_size = 32
    c.width = 4
    c.critic_width = 4
    c.batch_size = 2
    c.total_steps = 4
    c.holes = 8
    c.log_every = 2
    c.checkpoint_every = 2
    c.sample_every = 2
    c.num_samples = 2
    c.detail_sigma = 2.0
    return c

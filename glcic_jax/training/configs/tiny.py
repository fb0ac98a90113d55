"""Used for testing only: 32px, width 8, 40 steps through all three phases in seconds.

Small enough that the tests can train, checkpoint and resume a run on a
CPU; its models complete nothing usefully.
"""

import ml_collections

from glcic_jax.training import configs


def get_config() -> ml_collections.ConfigDict:
    """32px faces, widths 8, batch 4, Adam, 40 steps."""
    c = configs.base_config()
    c.preset = "tiny"
    c.image_size = 32
    c.width = 8
    c.d_width = 8
    c.batch_size = 4
    c.optimizer = "adam"
    c.g_lr = 1e-3
    c.d_lr = 1e-4
    c.phase1_steps = 10
    c.phase2_steps = 5
    c.total_steps = 40
    c.log_every = 5
    c.sample_every = 20
    c.checkpoint_every = 10
    c.num_samples = 4
    return c

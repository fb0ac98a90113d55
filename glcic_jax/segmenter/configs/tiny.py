"""Used for testing only: 32 px crops, width 4, 30 steps in seconds.

Small enough that the tests can train, checkpoint, resume and export a
segmenter on a CPU; its models segment nothing usefully.
"""

import ml_collections

from glcic_jax.segmenter import configs


def get_config() -> ml_collections.ConfigDict:
    """32 px crops, width 4, batch 4, 30 steps."""
    c = configs.base_config()
    c.preset = "tiny"
    c.image_size = 32
    c.width = 4
    c.batch_size = 4
    c.total_steps = 30
    c.log_every = 5
    c.checkpoint_every = 10
    c.sample_every = 15
    c.num_samples = 4
    return c

"""The study's preset: the paper's networks at 256px, 480k iterations of batch 16.

The study ran its 480k iterations as six runs of 80k, each resumed from the
last one's checkpoint: a run stops cleanly after steps_per_run and
`launch.py --resume` starts the next. launch.py's default where JAX has a
GPU/TPU plugin.
"""

import ml_collections

from glcic_jax.training import configs


def get_config() -> ml_collections.ConfigDict:
    """The study's schedule: batch 16, 480k steps in runs of 80k."""
    c = configs.base_config()
    c.preset = "seed"
    c.batch_size = 16
    c.total_steps = 480_000
    c.steps_per_run = 80_000
    c.checkpoint_every = 10_000
    return c

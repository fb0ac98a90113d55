"""The paper's preset: the SIGGRAPH 2017 schedule at 256px.

Batch 96, the completion network alone for Tc=90k steps, the discriminators
alone for Td=10k, then joint training to 500k, with ADADELTA: base_config()
unchanged, kept as its own preset so a run can name the schedule it follows.
"""

import ml_collections

from glcic_jax.training import configs


def get_config() -> ml_collections.ConfigDict:
    """The paper's schedule (base_config's defaults)."""
    c = configs.base_config()
    c.preset = "paper"
    return c

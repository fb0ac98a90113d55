"""The completion network's weights read out of a training run's checkpoint, and nothing else.

A checkpoint's `state` also holds the discriminators and both optimizers'
states (most of its bytes); completing images needs only the completion
network's parameters, its BatchNorm statistics and the mean pixel, so only
those are read, into a target built from the config the checkpoint stores.
"""

import jax
import ml_collections
import numpy as np

from glcic_jax import runs
from glcic_jax.nets import hole_filling


def read(workdir, step: int | None = None):
    """(config, gen, gen_stats, mean_pixel, step) of a training checkpoint (default: the latest).

    Raises runs.CheckpointError (one line) for a missing run or step.
    """
    with runs.RunReader(workdir) as reader:
        meta = reader.read_meta(step)
        config = ml_collections.ConfigDict(meta["config"])
        gen, gen_stats = hole_filling.abstract_weights(config)
        target = dict(
            gen=gen, gen_stats=gen_stats, mean_pixel=jax.ShapeDtypeStruct((3,), np.float32)
        )
        weights = reader.read_state(target, meta["step"])
    return config, weights["gen"], weights["gen_stats"], weights["mean_pixel"], meta["step"]

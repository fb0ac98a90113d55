"""The completion network alone, in eval mode: its weights' shapes and the jitted completion function.

Every model source (model file, model folder, training run) ends here: the
network is built from the config stored with the weights, without the
discriminators or any optimizer, and one jitted function per network shape
completes batches of images.
"""

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from glcic_jax import holes
from glcic_jax.nets import factory, formulations


def abstract_weights(config):
    """(params, batch_stats) of `config`'s completion network as shapes: the target to read into."""
    _, params, stats = factory.abstract_completion_network(config)
    return params, stats


def complete(graphdef, compute_dtype, params, stats, mean_pixel, images, hole):
    """Eval-mode completion of [0, 1] images: the network's pixels in the hole only.

    The same computation as the training loop's sample grid: hole filled with
    the mean pixel, network in `compute_dtype`, known pixels kept.
    """
    x = holes.fill_holes(images, hole, mean_pixel)
    model = nnx.merge(graphdef, params, stats, copy=True)
    out = model(x.astype(compute_dtype), train=False)
    return holes.composite(images, out.astype(jnp.float32), hole)


def jitted_complete(config):
    """`complete` for `config`'s network, jitted as (params, stats, mean_pixel, images, hole) -> images.

    Configs that agree on the completion network's fields (every checkpoint
    of a run, and runs that differ only in holes or schedule) share one
    compiled function.
    """
    return _jitted_complete(*(config[f] for f in factory.COMPLETION_FIELDS))


@functools.lru_cache(maxsize=16)
def _jitted_complete(*completion_fields):
    config = dict(zip(factory.COMPLETION_FIELDS, completion_fields))
    graphdef, _, _ = factory.abstract_completion_network(config)
    fn = functools.partial(complete, graphdef, jnp.dtype(config["compute_dtype"]))
    return jax.jit(
        fn, compiler_options=formulations.inference_compiler_options(config["image_size"])
    )

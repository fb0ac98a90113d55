"""Filling holes with the completion network: its input, its composite, and eval-mode completion.

The one eval-mode `complete`, below both training (its sample grid) and
completion (every model source: model file, model folder, training run),
and the function the benchmark times as inference. The network is built
from a config without the discriminators or any optimizer, and one jitted
function per network shape completes batches of images.
"""

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from glcic_jax.nets import factory, formulations


def abstract_weights(config):
    """(params, batch_stats) of `config`'s completion network as shapes: the target to read into."""
    _, params, stats = factory.abstract_completion_network(config)
    return params, stats


def fill_holes(images, masks, mean_pixel):
    """The network's input: hole set to the training mean pixel, plus the mask channel."""
    filled = images * (1.0 - masks) + mean_pixel * masks
    return jnp.concatenate([filled, masks], axis=-1)


def composite(images, completions, masks):
    """Known pixels from the image, hole pixels from the network."""
    return images * (1.0 - masks) + completions * masks


def complete(graphdef, compute_dtype, params, stats, mean_pixel, images, hole):
    """Eval-mode completion of [0, 1] images: the network's pixels in the hole only.

    The same computation as the training loop's sample grid: hole filled with
    the mean pixel, network in `compute_dtype`, known pixels kept.
    """
    x = fill_holes(images, hole, mean_pixel)
    model = nnx.merge(graphdef, params, stats, copy=True)
    out = model(x.astype(compute_dtype), train=False)
    return composite(images, out.astype(jnp.float32), hole)


def jit_complete(graphdef, compute_dtype, image_size: int, compiler_options: dict | None = None):
    """`complete` for one network, jitted as (params, stats, mean_pixel, images, hole) -> images.

    `compiler_options` default: `formulations.inference_compiler_options(image_size)`.
    """
    if compiler_options is None:
        compiler_options = formulations.inference_compiler_options(image_size)
    fn = functools.partial(complete, graphdef, jnp.dtype(compute_dtype))
    return jax.jit(fn, compiler_options=compiler_options)


def jitted_complete(config):
    """`jit_complete` for `config`'s network, shared by every config that builds the same network.

    Configs that agree on the completion network's fields (every checkpoint
    of a run, and runs that differ only in holes or schedule) share one
    compiled function.
    """
    return _jitted_complete(*(config[f] for f in factory.COMPLETION_FIELDS))


@functools.lru_cache(maxsize=16)
def _jitted_complete(*completion_fields):
    config = dict(zip(factory.COMPLETION_FIELDS, completion_fields))
    graphdef, _, _ = factory.abstract_completion_network(config)
    return jit_complete(graphdef, config["compute_dtype"], config["image_size"])

"""Builds the paper's networks from a config: the completion network alone, or with its discriminators.

Completion needs only the completion network; training needs it and the
discriminators, initialised from one random stream in a fixed order so a
seed always gives the same starting weights. The config is any mapping or
`ml_collections.ConfigDict` holding `NETWORK_FIELDS` (a training config, or
the config stored with a model file or checkpoint).
"""

from flax import nnx

from glcic_jax.nets.models import CompletionNetwork, ContextDiscriminator

# The fields that define the networks' code: two configs that agree on them
# build the same graph (the weights may differ).
NETWORK_FIELDS = ("image_size", "width", "d_width", "bn_momentum", "compute_dtype")
# The subset the completion network alone depends on (it is fully convolutional:
# the image size changes only the shapes it is called with).
COMPLETION_FIELDS = ("image_size", "width", "bn_momentum", "compute_dtype")


def completion_network(config, rngs: nnx.Rngs) -> CompletionNetwork:
    """The completion network of `config`, its weights drawn from `rngs`."""
    return CompletionNetwork(config["width"], bn_momentum=config["bn_momentum"], rngs=rngs)


def discriminators(config, patch_size: int, rngs: nnx.Rngs) -> ContextDiscriminator:
    """The global + local discriminator of `config`; `patch_size` is the local patch in pixels.

    The patch size comes from the hole regimes' canvas, which the networks
    do not know about, so the caller computes it.
    """
    return ContextDiscriminator(
        config["image_size"],
        patch_size,
        config["d_width"],
        bn_momentum=config["bn_momentum"],
        rngs=rngs,
    )


def training_networks(config, patch_size: int, seed: int):
    """(completion network, discriminators) from one stream: the completion network draws first.

    The order fixes which initial weights a seed gives, so every checkpoint
    written so far depends on it.
    """
    rngs = nnx.Rngs(seed)
    gen = completion_network(config, rngs)
    disc = discriminators(config, patch_size, rngs)
    return gen, disc


def abstract_completion_network(config):
    """(graphdef, params, batch_stats) of the completion network, shapes only, nothing computed.

    The target a checkpoint's or a model file's weights are read into.
    """
    gen = nnx.eval_shape(lambda: completion_network(config, nnx.Rngs(0)))
    return nnx.split(gen, nnx.Param, nnx.BatchStat)

"""GLCIC's completion network and its global + local context discriminator.

Iizuka, Simo-Serra, Ishikawa, "Globally and Locally Consistent Image
Completion", SIGGRAPH 2017, Tables 1-3. `width` is the paper's 64 (the first
layer's channels); smaller widths give the same architecture for CPU runs.
How each convolution is computed is the layers' business: `formulations`,
optional everywhere, fixes it; by default each layer takes the backend's
(`formulations.default_formulations`).
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

from glcic_jax.nets.formulations import Formulations
from glcic_jax.nets.layers import BatchNorm, Conv, ConvTranspose4x4

# Completion network, Table 1: (kind, kernel, stride or dilation, channels / width).
# "conv" strides, "dilated" dilates, "deconv" is the 4x4 stride-2 transposed conv.
COMPLETION_LAYERS = (
    ("conv", 5, 1, 1),
    ("conv", 3, 2, 2),
    ("conv", 3, 1, 2),
    ("conv", 3, 2, 4),
    ("conv", 3, 1, 4),
    ("conv", 3, 1, 4),
    ("dilated", 3, 2, 4),
    ("dilated", 3, 4, 4),
    ("dilated", 3, 8, 4),
    ("dilated", 3, 16, 4),
    ("conv", 3, 1, 4),
    ("conv", 3, 1, 4),
    ("deconv", 4, 2, 2),
    ("conv", 3, 1, 2),
    ("deconv", 4, 2, 1),
    ("conv", 3, 1, 0.5),
)
# Discriminators, Tables 2-3: 5x5 stride-2 convs with these channels / width.
DISCRIMINATOR_CHANNELS = (1, 2, 4, 8, 8, 8)
DISCRIMINATOR_FEATURES = 16  # the 1024-d FC output, / width
# Each discriminator stops downsampling at a 4x4 map (5x5 for a 160 patch).
DISCRIMINATOR_FINAL_MAP = 4


class ConvBNReLU(nnx.Module):
    """A convolution, BatchNorm and ReLU: every layer of the paper's tables but the last."""

    def __init__(
        self,
        conv: nnx.Module,
        features: int,
        bn_momentum: float,
        formulations: Formulations | None = None,
    ):
        self.conv = conv
        self.bn = BatchNorm(features, momentum=bn_momentum, formulations=formulations)

    def __call__(self, x, *, train: bool):
        return nnx.relu(self.bn(self.conv(x), train=train))


class CompletionNetwork(nnx.Module):
    """Image (hole filled with the mean pixel) + mask channel -> RGB in [0, 1]."""

    def __init__(
        self,
        width: int = 64,
        *,
        bn_momentum: float = 0.9,
        formulations: Formulations | None = None,
        rngs: nnx.Rngs,
    ):
        f = formulations
        blocks = []
        cin = 4
        for kind, kernel, factor, mult in COMPLETION_LAYERS:
            cout = int(width * mult)
            if kind == "deconv":
                conv = ConvTranspose4x4(cin, cout, use_bias=False, formulations=f, rngs=rngs)
            elif kind == "dilated":
                conv = Conv(
                    cin, cout, kernel, dilation=factor, use_bias=False, formulations=f, rngs=rngs
                )
            else:
                conv = Conv(
                    cin, cout, kernel, stride=factor, use_bias=False, formulations=f, rngs=rngs
                )
            blocks.append(ConvBNReLU(conv, cout, bn_momentum, f))
            cin = cout
        self.blocks = nnx.List(blocks)
        self.output = Conv(cin, 3, 3, formulations=f, rngs=rngs)

    def __call__(self, x, *, train: bool):
        for block in self.blocks:
            x = block(x, train=train)
        return nnx.sigmoid(self.output(x).astype(jnp.float32))


def discriminator_depth(size: int) -> int:
    """Stride-2 convolutions needed to bring `size` down to about 4 pixels."""
    return max(1, int(math.floor(math.log2(size / DISCRIMINATOR_FINAL_MAP))))


class ContextEncoder(nnx.Module):
    """One branch of the discriminator: strided convs, then a fully connected layer."""

    def __init__(
        self,
        size: int,
        width: int,
        *,
        bn_momentum: float,
        formulations: Formulations | None = None,
        rngs: nnx.Rngs,
    ):
        depth = discriminator_depth(size)
        if depth > len(DISCRIMINATOR_CHANNELS):
            raise ValueError(f"a {size}px discriminator input needs more layers than the paper's")
        blocks = []
        cin = 3
        for mult in DISCRIMINATOR_CHANNELS[:depth]:
            cout = width * mult
            conv = Conv(
                cin, cout, 5, stride=2, use_bias=False, formulations=formulations, rngs=rngs
            )
            blocks.append(ConvBNReLU(conv, cout, bn_momentum, formulations))
            cin = cout
            size = (size + 1) // 2
        self.blocks = nnx.List(blocks)
        self.fc = nnx.Linear(size * size * cin, width * DISCRIMINATOR_FEATURES, rngs=rngs)

    def __call__(self, x, *, train: bool):
        for block in self.blocks:
            x = block(x, train=train)
        return nnx.relu(self.fc(x.reshape(x.shape[0], -1)))


class ContextDiscriminator(nnx.Module):
    """Global (whole image) and local (patch around the hole) branches -> one logit."""

    def __init__(
        self,
        image_size: int,
        patch_size: int,
        width: int = 64,
        *,
        bn_momentum=0.9,
        formulations: Formulations | None = None,
        rngs,
    ):
        branch = dict(bn_momentum=bn_momentum, formulations=formulations, rngs=rngs)
        self.global_branch = ContextEncoder(image_size, width, **branch)
        self.local_branch = ContextEncoder(patch_size, width, **branch)
        self.head = nnx.Linear(2 * width * DISCRIMINATOR_FEATURES, 1, rngs=rngs)

    def __call__(self, images, patches, *, train: bool):
        features = jnp.concatenate(
            [self.global_branch(images, train=train), self.local_branch(patches, train=train)],
            axis=-1,
        )
        return self.head(features)[:, 0].astype(jnp.float32)


def num_params(tree) -> int:
    """Number of scalars in a pytree of arrays (the tables' parameter counts)."""
    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree))

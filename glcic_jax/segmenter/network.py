"""The mask segmentation network: a small U-Net, mask crop in, one logit per pixel out.

Input: an RGB mask crop (`faces.mask_crop`) in [0, 1], side divisible by 8.
Output: float32 logits (N, S, S), > 0 where the pixel belongs to a worn
face mask. Three stride-2 levels, two 3x3 convolutions each, GroupNorm and
ReLU; a dilated bottleneck at 1/8 size gives the receptive field the whole
lower face (a mask is told from a white wall by its shape, not its colour);
the decoder upsamples (nearest, then a 1x1 projection to the skip's width)
and fuses the skip with one 3x3 convolution per level: the cheap half, since
the boundary needs the encoder's fine features, not many decoder layers.

GroupNorm, not BatchNorm: no running statistics to carry, and a batch of one
face behaves as in training.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from glcic_jax.nets.layers import Conv

LEVELS = 4  # full, 1/2, 1/4, 1/8 resolution
DOWNSAMPLE = 2 ** (LEVELS - 1)
GROUPS = 4


class ConvNormReLU(nnx.Module):
    def __init__(self, cin, cout, *, stride=1, dilation=1, rngs):
        self.conv = Conv(cin, cout, 3, stride=stride, dilation=dilation, use_bias=False, rngs=rngs)
        self.norm = nnx.GroupNorm(cout, num_groups=GROUPS, rngs=rngs)

    def __call__(self, x):
        return nnx.relu(self.norm(self.conv(x)))


class MaskSegmenter(nnx.Module):
    """U-Net with `width` channels at full resolution, doubling per level."""

    def __init__(self, width: int = 16, *, rngs: nnx.Rngs):
        widths = [width * 2**i for i in range(LEVELS)]
        self.width = width
        encoder, cin = [], 3
        for i, w in enumerate(widths):
            encoder.append(
                nnx.List(
                    [ConvNormReLU(cin, w, stride=1 if i == 0 else 2, rngs=rngs),
                     ConvNormReLU(w, w, rngs=rngs)]
                )
            )  # fmt: skip
            cin = w
        self.encoder = nnx.List(encoder)
        deepest = widths[-1]
        self.bottleneck = nnx.List(
            [ConvNormReLU(deepest, deepest, dilation=d, rngs=rngs) for d in (2, 4)]
        )
        projections, fusions = [], []
        for w in reversed(widths[:-1]):
            projections.append(Conv(cin, w, 1, use_bias=False, rngs=rngs))
            fusions.append(ConvNormReLU(2 * w, w, rngs=rngs))
            cin = w
        self.projections = nnx.List(projections)
        self.fusions = nnx.List(fusions)
        self.head = Conv(cin, 1, 1, rngs=rngs)

    def __call__(self, images):
        if images.shape[1] % DOWNSAMPLE or images.shape[2] % DOWNSAMPLE:
            raise ValueError(f"image sides must be divisible by {DOWNSAMPLE}, got {images.shape}")
        x = images * 2.0 - 1.0
        skips = []
        for first, second in self.encoder:
            x = second(first(x))
            skips.append(x)
        for layer in self.bottleneck:
            x = x + layer(x)
        for project, fuse, skip in zip(self.projections, self.fusions, reversed(skips[:-1])):
            x = jnp.repeat(jnp.repeat(project(x), 2, axis=1), 2, axis=2)
            x = fuse(jnp.concatenate([x, skip], axis=-1))
        return self.head(x)[..., 0].astype(jnp.float32)


def build(width: int, seed: int = 0) -> MaskSegmenter:
    return MaskSegmenter(width, rngs=nnx.Rngs(seed))


def abstract(width: int):
    """(graphdef, params) with shapes only: the target saved weights are read into."""
    model = nnx.eval_shape(lambda: build(width))
    return nnx.split(model, nnx.Param)


def logits(graphdef, params, images) -> jax.Array:
    """Pure forward pass: float images (N, S, S, 3) in [0, 1] -> logits (N, S, S)."""
    return nnx.merge(graphdef, params)(images)

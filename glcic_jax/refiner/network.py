"""The fine stage's networks: a refiner that sharpens the coarse fill, and its patch critic.

Refiner (the coarse-to-fine design of DeepFill, Yu et al. 2018/2019): the
masked face at the frame's full resolution with the coarse model's fill
(upsampled) in the hole, plus the hole itself, in; a correction of the
fill, out. Two stride-2 levels and a dilated bottleneck at 1/4 size give
each hole pixel the whole lower face as context; the skips keep the fine
texture of the visible face beside the hole. Fully convolutional: it trains
on crops and runs on whole frames of any side divisible by `DOWNSAMPLE`.
No normalisation (a face is refined alone, and statistics over a hole and
its surround would mix the two). With `detail_sigma` (`detail_band`) the
correction keeps only what lies above a Gaussian low-pass: the coarse fill
decides shape and colour, the refiner adds the detail the coarse model, at
64 px, cannot draw (a refiner free to move the low frequencies drew swollen
lips and colour blotches on real photos).

Critic: a PatchGAN (Isola et al. 2017) whose every output judges a patch
78 px across, with spectral normalisation on each convolution
(Miyato et al. 2018; DeepFill v2's SN-PatchGAN): real faces against
refined ones, the hole given as a fourth channel so it learns where to look.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from glcic_jax.nets.layers import Conv

LEVELS = 3  # full, 1/2, 1/4 resolution
DOWNSAMPLE = 2 ** (LEVELS - 1)
BOTTLENECK_DILATIONS = (2, 4, 8, 16)


def _act(x):
    return nnx.leaky_relu(x, 0.2)


class Refiner(nnx.Module):
    """U-Net with `width` channels at full resolution, doubling per level."""

    def __init__(self, width: int = 24, *, rngs: nnx.Rngs):
        widths = [width * 2**i for i in range(LEVELS)]
        encoder, cin = [], 4
        for i, w in enumerate(widths):
            encoder.append(
                nnx.List(
                    [
                        Conv(cin, w, 3, stride=1 if i == 0 else 2, rngs=rngs),
                        Conv(w, w, 3, rngs=rngs),
                    ]
                )
            )
            cin = w
        self.encoder = nnx.List(encoder)
        self.bottleneck = nnx.List(
            [Conv(cin, cin, 3, dilation=d, rngs=rngs) for d in BOTTLENECK_DILATIONS]
        )
        projections, fusions = [], []
        for w in reversed(widths[:-1]):
            projections.append(Conv(cin, w, 1, rngs=rngs))
            fusions.append(Conv(2 * w, w, 3, rngs=rngs))
            cin = w
        self.projections = nnx.List(projections)
        self.fusions = nnx.List(fusions)
        self.head = Conv(cin, 3, 3, rngs=rngs)
        # Start as the identity: the coarse fill, unchanged.
        self.head.kernel[...] = jnp.zeros_like(self.head.kernel[...])

    def __call__(self, composite, hole, sigmas=None, radius: int = 0):
        """composite (N, S, S, 3) in [0, 1], hole (N, S, S) {0, 1} -> refined (N, S, S, 3).

        Only the hole's pixels may change; the rest is `composite`'s, exactly.
        `sigmas` (N,) and `radius`: the correction is limited to its detail
        band (`detail_band`); None: the whole correction.
        """
        if composite.shape[1] % DOWNSAMPLE or composite.shape[2] % DOWNSAMPLE:
            raise ValueError(f"sides must be divisible by {DOWNSAMPLE}, got {composite.shape}")
        m = hole[..., None].astype(composite.dtype)
        x = jnp.concatenate([composite * 2.0 - 1.0, m], axis=-1)
        skips = []
        for first, second in self.encoder:
            x = _act(second(_act(first(x))))
            skips.append(x)
        for layer in self.bottleneck:
            x = x + _act(layer(x))
        for project, fuse, skip in zip(self.projections, self.fusions, reversed(skips[:-1])):
            x = jnp.repeat(jnp.repeat(project(x), 2, axis=1), 2, axis=2)
            x = _act(fuse(jnp.concatenate([x, skip], axis=-1)))
        correction = self.head(x)
        if sigmas is not None:
            correction = detail_band(correction, sigmas, radius)
        refined = jnp.clip(composite + correction, 0.0, 1.0)
        return m * refined + (1.0 - m) * composite


def band_sigmas(detail_sigma: float, sides, largest_side=None) -> tuple[jax.Array, int]:
    """(per-image sigma, static radius) of the low-pass for frames of `sides` px.

    `detail_sigma` is in pixels of a 256 px frame, scaled with the frame so
    the band is the same part of the face at every side. The radius reaches
    3 sigma of the largest side: `largest_side` where `sides` is traced.
    """
    sigmas = detail_sigma * jnp.asarray(sides, jnp.float32) / 256.0
    largest = float(np.max(sides)) if largest_side is None else largest_side
    return sigmas, int(np.ceil(3.0 * detail_sigma * largest / 256.0))


def detail_band(x, sigmas, radius: int):
    """x (N, H, W, C) less its Gaussian blur (sigma `sigmas[n]` per image, taps to `radius`).

    Separable, edges reflected; linear, so its gradient is the same filter.
    """
    taps = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    sig = jnp.maximum(jnp.asarray(sigmas, jnp.float32), 1e-3)[:, None]
    w = jnp.exp(-0.5 * (taps[None] / sig) ** 2)
    w = (w / w.sum(axis=1, keepdims=True)).astype(x.dtype)  # (N, taps)
    low = x
    for axis in (1, 2):
        pad = [(0, 0)] * 4
        pad[axis] = (radius, radius)
        padded = jnp.pad(low, pad, mode="reflect")
        n = low.shape[axis]
        low = sum(
            w[:, k, None, None, None] * jax.lax.slice_in_dim(padded, k, k + n, axis=axis)
            for k in range(2 * radius + 1)
        )
    return x - low


class SpectralConv(nnx.Module):
    """A 4x4 (or k x k) convolution whose kernel is divided by its largest singular value.

    One power iteration per call, its vector kept as a `BatchStat` (Miyato et
    al. 2018). Written here because flax's `nnx.SpectralNorm` writes the
    normalised kernel back into its `Param`, which a pure, differentiated step
    cannot do.
    """

    def __init__(self, cin, cout, kernel_size, *, stride=1, rngs: nnx.Rngs):
        init = nnx.initializers.lecun_normal()
        self.kernel = nnx.Param(init(rngs.params(), (kernel_size, kernel_size, cin, cout)))
        self.bias = nnx.Param(jnp.zeros((cout,)))
        u = jax.random.normal(rngs.params(), (cout,))
        self.u = nnx.BatchStat(u / jnp.linalg.norm(u))
        self.stride = stride

    def __call__(self, x, update_stats: bool = True):
        kernel = self.kernel[...]
        w = kernel.reshape(-1, kernel.shape[-1])  # (k*k*cin, cout)
        u = jax.lax.stop_gradient(self.u[...])
        v = w @ u
        v = v / (jnp.linalg.norm(v) + 1e-12)
        u_new = w.T @ v
        u_new = jax.lax.stop_gradient(u_new / (jnp.linalg.norm(u_new) + 1e-12))
        sigma = jax.lax.stop_gradient(v) @ w @ u_new
        if update_stats:
            self.u[...] = u_new
        y = jax.lax.conv_general_dilated(
            x,
            (kernel / sigma).astype(x.dtype),
            (self.stride, self.stride),
            "SAME",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        return y + self.bias[...].astype(x.dtype)


class PatchCritic(nnx.Module):
    """Four stride-2 4x4 convolutions and a 1-channel head, each spectrally normalised."""

    def __init__(self, width: int = 32, *, rngs: nnx.Rngs):
        layers, cin = [], 4
        for i in range(4):
            cout = width * 2**i
            layers.append(SpectralConv(cin, cout, 4, stride=2, rngs=rngs))
            cin = cout
        self.layers = nnx.List(layers)
        self.head = SpectralConv(cin, 1, 3, rngs=rngs)

    def __call__(self, images, hole, update_stats: bool = True):
        """images (N, S, S, 3) in [0, 1], hole (N, S, S) -> one score per patch (N, S/16, S/16)."""
        x = jnp.concatenate([images * 2.0 - 1.0, hole[..., None].astype(images.dtype)], axis=-1)
        for layer in self.layers:
            x = _act(layer(x, update_stats=update_stats))
        return self.head(x, update_stats=update_stats)[..., 0].astype(jnp.float32)


def build(width: int, seed: int = 0) -> Refiner:
    return Refiner(width, rngs=nnx.Rngs(seed))


def abstract(width: int):
    """(graphdef, params) with shapes only: the target saved weights are read into."""
    return nnx.split(nnx.eval_shape(lambda: build(width)), nnx.Param)


def refine(graphdef, params, composite, hole, sigmas=None, radius: int = 0) -> jax.Array:
    """Pure forward pass of a split `Refiner` (see `Refiner.__call__`)."""
    return nnx.merge(graphdef, params)(composite, hole, sigmas, radius)

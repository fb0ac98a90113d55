"""Convolution and BatchNorm layers in formulations that are exact and fast on XLA:CPU.

The network file (`models.py`) reads like the paper: it asks for "a 3x3
convolution with stride 2" or "a 4x4 transposed convolution". This module
decides how to compute each one. The plain `lax` forms are mathematically the
same but some run 10-40x slower on CPU (see ../shared/PERF.md and the
README's Performance section):

* 4x4 stride-2 transposed convolutions: backward at 6-8 GFLOP/s. Computed here
  in sub-pixel form (one 2x2 convolution to 4*Cout channels, then
  depth-to-space): same result, no zero taps.
* A convolution's output, input gradient and weight gradient are three
  different operations, and the fastest formulation of one is often not the
  fastest of another. `plan_conv` picks lax, im2col (k*k strided slices
  concatenated on channels, one matmul), per-tap matmuls or lax in bands of
  output rows for each of the three, from measurements; `conv2d_planned` is
  the custom VJP that runs the plan.
* Dilated convolutions on small maps: at dilation 16 on a 16 px map eight of
  the nine taps read only zero padding; `conv2d_valid_taps` computes each
  region of the output with the taps that read inside the map.
* Wide 3x3 and 2x2 convolutions (128 channels and more): Winograd's F(2x2,
  3x3) and F(2x2, 2x2), `conv2d_winograd`, do the output and input gradient
  with 2.25x and 1.78x fewer multiply-adds (batched matmuls over transformed
  blocks; the data and output transforms are additions).
* Few-channel convolutions: YNNPACK, which XLA:CPU gives convolutions to,
  runs some of them on one core; `conv2d_xla_kernel` hands them to XLA's own
  kernel, which uses both.
* BatchNorm: normalisation folded into one scale and one shift per channel,
  with the one-pass statistics shifted by one sample per channel so they stay
  as exact as two passes in float32.

These rewrites are for the CPU: on other backends the layers trace the plain
`lax` operations, which their libraries run well (`formulation`). Parameters
keep the ordinary layouts (HWIO kernels, per-channel scale/bias), so
checkpoints do not depend on the formulation or the backend.
`tests/test_layers.py` proves each formulation equal to the plain `lax`
operation, in outputs and in both gradients.
"""

import contextlib
import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

_DIMS = ("NHWC", "HWIO", "NHWC")
# The formulations measured fastest on XLA:CPU (README, Performance).
CPU_FORMULATIONS = {"conv": "planned", "transposed": "subpixel", "batch_norm": "folded"}
# Other backends keep the plain operations, which their libraries (cuDNN) run:
# on an H100 the CPU rewrites made inference 2.2x slower and phase 1 took
# minutes to compile (README, "Learning, and a GPU").
PLAIN_FORMULATIONS = {"conv": "lax", "transposed": "lax", "batch_norm": "two_pass"}
# Choices that override the backend's default while a benchmark measures
# them (experiments/bench_ablation.py, through `formulations`).
FORMULATIONS = {}
_CHOICES = {
    "conv": (
        "planned",
        "unbanded",
        "no_valid_taps",
        "no_output_taps",
        "no_xla_kernels",
        "no_winograd",
        "im2col",
        "lax",
    ),
    "transposed": ("subpixel", "lax"),
    "batch_norm": ("folded", "two_pass"),
}


def check_formulations(choices: dict) -> None:
    for key, value in choices.items():
        if value not in _CHOICES.get(key, ()):
            raise ValueError(f"unknown formulation {key}={value!r}; choose from {_CHOICES}")


def formulation(key: str) -> str:
    """The formulation traced now: an override, else the default backend's."""
    if key in FORMULATIONS:
        return FORMULATIONS[key]
    defaults = CPU_FORMULATIONS if jax.default_backend() == "cpu" else PLAIN_FORMULATIONS
    return defaults[key]


@contextlib.contextmanager
def formulations(**choices):
    """Trace the layers with other formulations (same mathematics) inside this block."""
    check_formulations(choices)
    saved = dict(FORMULATIONS)
    FORMULATIONS.update(choices)
    try:
        yield
    finally:
        FORMULATIONS.clear()
        FORMULATIONS.update(saved)


# PERF.md's rule for im2col (before per-component plans): maps under this size.
_PERF_MD_IM2COL_MAX_MAP = 128
# A banded weight gradient's pieces: about this many multiply-adds each, and
# at least this many output pixels (measured best among 1k-64k pixels).
_BAND_FLOPS = 1.5e8
_BAND_PIXELS = 1024
# Strided convolutions on maps smaller than this are im2col throughout.
_IM2COL_MAX_MAP = 32
# 3x3 strided convolutions take their weight gradient per tap up to this map size.
_TAPS_MAX_MAP = 128
# 3x3 and 2x2 stride-1 convolutions between at least this many channels take
# their output and input gradient by Winograd's F(2x2, 3x3) and F(2x2, 2x2).
_WINOGRAD_MIN_CHANNELS = 128
# Stride-1 convolutions to this many channels or fewer take their input
# gradient from XLA's own kernel, and their output too on maps up to this size.
_XLA_KERNEL_MAX_COUT = 32
_XLA_KERNEL_FORWARD_MAX_MAP = 64


def _out_size(size, kernel_size, stride, dilation, padding):
    """A convolution's output side for symmetric padding."""
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def _lax_conv(x, kernel, rows, cols, *, stride=1, dilation=1):
    """lax's convolution, NHWC / HWIO; `rows` and `cols` are (before, after) padding."""
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(stride, stride),
        padding=[rows, cols],
        rhs_dilation=(dilation, dilation),
        dimension_numbers=_DIMS,
    )


def conv2d_reference(x, kernel, *, stride=1, dilation=1, padding=0):
    """The plain lax convolution with torch-style symmetric padding."""
    both = (padding, padding)
    return _lax_conv(x, kernel, both, both, stride=stride, dilation=dilation)


def conv2d_im2col(x, kernel, *, stride, padding):
    """A k x k strided convolution as one matmul over gathered taps."""
    k = kernel.shape[0]
    x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    out_h = (x.shape[1] - k) // stride + 1
    out_w = (x.shape[2] - k) // stride + 1
    taps = [
        x[:, a : a + stride * (out_h - 1) + 1 : stride, b : b + stride * (out_w - 1) + 1 : stride]
        for a in range(k)
        for b in range(k)
    ]
    cols = jnp.concatenate(taps, axis=-1)
    return jnp.einsum("bhwk,ko->bhwo", cols, kernel.reshape(-1, kernel.shape[-1]))


def weight_grad_taps(x, dy, *, kernel_size, stride, dilation, padding):
    """A convolution's weight gradient as one matmul per kernel tap.

    dW[a, b] = shifted(x)^T . dy over all pixels; XLA:CPU computes this faster
    than lax's own weight gradient where the kernel is small or strided.
    """
    k = kernel_size
    x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    out_h, out_w = dy.shape[1:3]
    dy = dy.reshape(-1, dy.shape[-1])
    grads = []
    for a in range(k):
        for b in range(k):
            tap = x[
                :,
                a * dilation : a * dilation + stride * (out_h - 1) + 1 : stride,
                b * dilation : b * dilation + stride * (out_w - 1) + 1 : stride,
            ]
            grads.append(tap.reshape(-1, x.shape[-1]).T @ dy)
    return jnp.stack(grads).reshape(k, k, x.shape[-1], dy.shape[-1])


def weight_grad_banded(x, dy, *, kernel_size, stride, dilation, padding, band_pixels):
    """A convolution's weight gradient as the sum of lax's over bands of output rows.

    lax's weight gradient slows down sharply with the number of output pixels
    (at 256 px batch 4: 0.8 s for a 128-channel layer, 0.14 s in bands); one
    sample's band of about `band_pixels` output pixels at a time keeps each
    piece fast. The same sum, in another order.
    """
    k = kernel_size
    x = jnp.pad(x, ((0, 0), (padding, padding), (0, 0), (0, 0)))
    batch, out_h, out_w, _ = dy.shape
    rows = max(1, band_pixels // out_w)
    halo = (k - 1) * dilation + 1
    zeros = jnp.zeros((k, k, x.shape[-1], dy.shape[-1]), x.dtype)
    total = None
    for i in range(batch):
        for r0 in range(0, out_h, rows):
            r1 = min(out_h, r0 + rows)
            band = x[i : i + 1, r0 * stride : (r1 - 1) * stride + halo]

            def conv(w, band=band):
                return _lax_conv(
                    band, w, (0, 0), (padding, padding), stride=stride, dilation=dilation
                )

            (grad,) = jax.vjp(conv, zeros)[1](dy[i : i + 1, r0:r1])
            grad = grad.astype(jnp.float32)  # bfloat16 pieces still sum in float32
            total = grad if total is None else total + grad
    return total


def weight_grad_output_taps(x, dy, *, kernel_size, dilation, padding):
    """A stride-1 convolution's weight gradient as one matmul against shifted output gradients.

    dW[a, b] = sum over pixels of x^T . dy shifted back by tap (a, b): with
    the k*k shifted copies of dy side by side on channels this is one matmul
    of x with a (k*k*Cout)-wide matrix. Cheap where Cout is tiny (the
    3-channel output layer: 6 ms at 256 px against lax's 39 ms).
    """
    k = kernel_size
    (in_h, in_w), (out_h, out_w) = x.shape[1:3], dy.shape[1:3]
    low = max(0, (k - 1) * dilation - padding)
    dy = jnp.pad(
        dy,
        (
            (0, 0),
            (low, max(0, in_h + padding - out_h)),
            (low, max(0, in_w + padding - out_w)),
            (0, 0),
        ),
    )
    starts = [low + padding - tap * dilation for tap in range(k)]
    shifted = [dy[:, a : a + in_h, b : b + in_w] for a in starts for b in starts]
    grad = jnp.einsum("bhwc,bhwt->ct", x, jnp.concatenate(shifted, axis=-1))
    return grad.reshape(x.shape[-1], k, k, -1).transpose(1, 2, 0, 3)


# Output runs shorter than this are merged into a neighbour (padding reads zeros).
_MIN_SEGMENT = 4


def tap_segments(size: int, kernel_size: int, dilation: int, padding: int):
    """Split a stride-1 "same" convolution's output positions along one axis by which
    taps read inside the map: [(start, stop, first_tap, last_tap)].

    With a dilation near the map's size most taps read only padding (at 16 px
    and dilation 16 only the centre tap reads the map).
    """
    segments = []
    for o in range(size):
        first = max(0, -(-(padding - o) // dilation))
        last = min(kernel_size - 1, (size - 1 + padding - o) // dilation)
        if segments and segments[-1][2:] == (first, last):
            segments[-1] = (segments[-1][0], o + 1, first, last)
        else:
            segments.append((o, o + 1, first, last))
    while len(segments) > 1:
        short = [i for i, s in enumerate(segments) if s[1] - s[0] < _MIN_SEGMENT]
        if not short:
            break
        i = short[0]
        j = i + 1 if i + 1 < len(segments) else i - 1
        (a, b) = sorted((i, j))
        first, second = segments[a], segments[b]
        merged = (first[0], second[1], min(first[2], second[2]), max(first[3], second[3]))
        segments[a : b + 1] = [merged]
    return segments


def valid_tap_fraction(size: int, kernel_size: int, dilation: int, padding: int) -> float:
    """The share of a convolution's multiply-adds that `conv2d_valid_taps` computes."""
    per_axis = sum(
        (stop - start) * (last - first + 1)
        for start, stop, first, last in tap_segments(size, kernel_size, dilation, padding)
    ) / (size * kernel_size)
    return per_axis * per_axis


def conv2d_valid_taps(x, kernel, *, dilation, padding):
    """A stride-1 "same" convolution computed region by region with only the taps
    that read inside the map; the taps left out would multiply zero padding."""
    k = kernel.shape[0]
    if k % 2 == 0 or padding != (k // 2) * dilation:
        raise ValueError(f"valid taps need an odd kernel and padding {k // 2} x dilation")

    def span(size, start, stop, first, last):
        lo, hi = start - padding + first * dilation, stop - 1 - padding + last * dilation + 1
        return slice(max(lo, 0), min(hi, size)), (max(0, -lo), max(0, hi - size))

    height, width = x.shape[1:3]
    rows = []
    for row in tap_segments(height, k, dilation, padding):
        row_slice, row_pad = span(height, *row)
        cols = []
        for col in tap_segments(width, k, dilation, padding):
            col_slice, col_pad = span(width, *col)
            region = x[:, row_slice, col_slice]
            taps = kernel[row[2] : row[3] + 1, col[2] : col[3] + 1]
            if taps.shape[:2] == (1, 1) and row_pad == col_pad == (0, 0):
                # One tap left: a matmul, which YNNPACK runs on both cores (a 1x1
                # convolution on one).
                cols.append(jnp.einsum("bhwc,co->bhwo", region, taps[0, 0]))
            else:
                cols.append(_lax_conv(region, taps, row_pad, col_pad, dilation=dilation))
        rows.append(jnp.concatenate(cols, axis=2))
    return jnp.concatenate(rows, axis=1)


def conv2d_xla_kernel(x, kernel, *, stride=1, dilation=1, padding=0):
    """A convolution run by XLA's own (Eigen) kernel instead of YNNPACK's.

    XLA:CPU gives YNNPACK every convolution except those whose output is taller
    than their input. Padding the bottom so the output gains rows (computed,
    then dropped) makes it one of those: YNNPACK runs some few-channel layers
    on a single thread, Eigen on both cores.
    """
    height = x.shape[1]
    out_h = _out_size(height, kernel.shape[0], stride, dilation, padding)
    extra = max(0, (height + 1 - out_h) * stride)  # output rows: height + 1
    rows, cols = (padding, padding + extra), (padding, padding)
    return _lax_conv(x, kernel, rows, cols, stride=stride, dilation=dilation)[:, :out_h]


def _winograd_reads(x, axis: int, dilation: int, count: int):
    """Along `axis` of the padded input: the `count` rows that each pair of output
    rows (`dilation` apart) reads, each as [..., pairs, dilation, ...]."""
    pairs = x.shape[axis] // (2 * dilation) - 1
    x = x.reshape(x.shape[:axis] + (pairs + 1, 2, dilation) + x.shape[axis + 1 :])

    def rows(block, half):
        part = lax.slice_in_dim(x, block, block + pairs, axis=axis)
        return lax.index_in_dim(part, half, axis=axis + 1, keepdims=False)

    return [rows(k // 2, k % 2) for k in range(count)]


# Winograd's F(2, r) by kernel size r: the transforms of the data (B^T d), of
# the filter (G, as a matrix), of the products back to two outputs (A^T m)
# and that last one's transpose (A y), which takes two output gradients to
# the products' gradients.
_WINOGRAD = {
    3: (
        lambda d0, d1, d2, d3: [d0 - d2, d1 + d2, d2 - d1, d1 - d3],
        [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
        lambda m0, m1, m2, m3: [m0 + m1 + m2, m1 - m2 - m3],
        lambda y0, y1: [y0, y0 + y1, y0 - y1, -y1],
    ),
    2: (
        lambda d0, d1, d2: [d0 - d1, d1, d2 - d1],
        [[1, 0], [1, 1], [0, 1]],
        lambda m0, m1, m2: [m0 + m1, m1 + m2],
        lambda y0, y1: [y0, y0 + y1, y1],
    ),
}


def _winograd_data(x, k: int, dilation: int, padding: int):
    """The transformed input blocks B^T d B of F(2x2, k x k), as [(k+1)^2, blocks, C],
    and the blocks' shape (B, h, d, w, d): pairs of outputs `dilation` apart."""
    _, height, width, cin = x.shape
    d = dilation
    out_h, out_w = (_out_size(side, k, 1, d, padding) for side in (height, width))
    # Pad to whole blocks of output pairs, plus the next block that the last pair reads.
    rows_in, cols_in = (2 * d * (-(-side // (2 * d)) + 1) for side in (out_h, out_w))
    x = jnp.pad(
        x,
        (
            (0, 0),
            (padding, rows_in - height - padding),
            (padding, cols_in - width - padding),
            (0, 0),
        ),
    )
    data_tr = _WINOGRAD[k][0]
    by_rows = jnp.stack(data_tr(*_winograd_reads(x, 1, d, k + 1)))  # [a, B, h, d, W', C]
    data = jnp.stack(data_tr(*_winograd_reads(by_rows, 4, d, k + 1)), axis=1)
    blocks = data.shape[2:-1]
    return data.reshape((k + 1) ** 2, -1, cin), blocks


def _winograd_filter_matrix(k: int, dtype, transpose_kernel: bool = False):
    """G (x) G: the filter transform G g G^T of every channel pair as one matmul
    over the k*k taps; reversing the taps flips the kernel."""
    filter_matrix = np.asarray(_WINOGRAD[k][1])
    spatial = np.kron(filter_matrix, filter_matrix)
    if transpose_kernel:
        spatial = spatial[:, ::-1]
    return jnp.asarray(spatial, dtype)


def conv2d_winograd(x, kernel, *, dilation=1, padding=0, transpose_kernel=False):
    """A stride-1 convolution with a 3x3 or 2x2 kernel by Winograd's minimal
    filtering, F(2x2, 3x3) or F(2x2, 2x2).

    Each 2x2 block of outputs (`dilation` apart) comes from a 4x4 (3x3) block
    of inputs with 16 (9) multiplications per channel pair instead of 36 (16):
    that many matmuls over transformed blocks replace the taps' (2.25x and
    1.78x fewer multiply-adds); the data and output transforms are additions
    (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks",
    2016). Exact in exact arithmetic; in float32 within about 1e-6 of lax
    here. Outputs that do not fill a last block are computed on zeros and
    dropped.

    `transpose_kernel`: convolve with the kernel flipped and its channel axes
    swapped (a stride-1 convolution's transpose) without moving its data: the
    flip is folded into the filter transform, the swap into the matmul.
    """
    k = kernel.shape[0]
    if kernel.shape[:2] not in ((3, 3), (2, 2)):
        raise ValueError(f"Winograd here is for 3x3 and 2x2 kernels; got {kernel.shape[:2]}")
    output_tr = _WINOGRAD[k][2]
    batch, height, width, _ = x.shape
    cout = kernel.shape[2] if transpose_kernel else kernel.shape[3]
    d = dilation
    out_h, out_w = (_out_size(side, k, 1, d, padding) for side in (height, width))
    data, blocks = _winograd_data(x, k, d, padding)  # blocks: (B, h, d, w, d)
    filters = jnp.einsum(
        "tk,kio->tio",
        _winograd_filter_matrix(k, kernel.dtype, transpose_kernel),
        kernel.reshape(k * k, *kernel.shape[2:]),
        preferred_element_type=jnp.float32,
    ).astype(kernel.dtype)
    products = jnp.einsum(
        "xtc,xoc->xto" if transpose_kernel else "xtc,xco->xto",
        data,
        filters,
        preferred_element_type=jnp.float32,  # bfloat16 products sum in float32
    )
    tiles = (k + 1) ** 2
    m = [products[i] for i in range(tiles)]
    by_cols = [output_tr(*m[j :: k + 1]) for j in range(k + 1)]
    out = jnp.stack([jnp.stack(output_tr(*(col[a] for col in by_cols))) for a in range(2)])
    out = out.reshape((2, 2, *blocks, cout))  # [row in pair, col in pair, B, h, d, w, d, O]
    out = out.transpose(2, 3, 0, 4, 5, 1, 6, 7)
    out = out.reshape(batch, blocks[1] * 2 * d, blocks[3] * 2 * d, cout)
    return out[:, :out_h, :out_w].astype(x.dtype)


def weight_grad_winograd(x, dy, *, kernel_size, dilation, padding):
    """A stride-1 3x3 or 2x2 convolution's weight gradient by Winograd's F(2x2, k x k).

    The transpose of `conv2d_winograd` in its kernel, written out: the output
    gradients' 2x2 blocks go to the products' gradients A y A^T (additions),
    one matmul per product position against the transformed input blocks sums
    over all blocks, and G^T . G takes the sums back to the taps. 2.25x (3x3)
    and 1.78x (2x2) fewer multiply-adds than the taps'.
    """
    k, d = kernel_size, dilation
    grad_tr = _WINOGRAD[k][3]
    data, blocks = _winograd_data(x, k, d, padding)  # blocks: (B, h, d, w, d)
    batch, h, _, w, _ = blocks
    dy = jnp.pad(dy, ((0, 0), (0, h * 2 * d - dy.shape[1]), (0, w * 2 * d - dy.shape[2]), (0, 0)))
    dy = dy.reshape(batch, h, 2, d, w, 2, d, dy.shape[-1])
    by_rows = jnp.stack(grad_tr(dy[:, :, 0], dy[:, :, 1]))  # [a, B, h, d, w, 2, d, O]
    grads = jnp.stack(grad_tr(by_rows[:, :, :, :, :, 0], by_rows[:, :, :, :, :, 1]), axis=1)
    sums = jnp.einsum(
        "xnc,xno->xco",
        data,
        grads.reshape(data.shape[0], -1, grads.shape[-1]),
        preferred_element_type=jnp.float32,
    )
    taps = jnp.einsum("tk,tco->kco", _winograd_filter_matrix(k, jnp.float32), sums)
    return taps.reshape(k, k, *taps.shape[1:])


@dataclasses.dataclass(frozen=True)
class ConvPlan:
    """How to compute one convolution's output, input gradient and weight gradient.

    Each of the three is chosen on its own ("lax", "im2col", "valid_taps",
    "winograd", for the output and input gradient "xla_kernel", for the weight
    gradient "taps", "output_taps" or "banded"): the fastest formulation of the
    forward pass is often not the one whose automatic transpose is fastest.
    """

    stride: int = 1
    dilation: int = 1
    padding: int = 0
    forward: str = "lax"
    input_grad: str = "lax"
    weight_grad: str = "lax"
    band_pixels: int = 0  # output pixels per piece of a "banded" weight gradient


def plan_conv(
    kernel_shape,
    map_size: int,
    stride: int = 1,
    dilation: int = 1,
    padding=None,
    *,
    bands: bool = True,
    valid_taps: bool = True,
    output_taps: bool = True,
    xla_kernels: bool = True,
    winograd: bool = True,
):
    """The formulations measured fastest on XLA:CPU for this layer (README, Performance).

    `kernel_shape` is (k, k, Cin, Cout); `map_size` the input's side. The
    switches turn one optimisation off, to measure it (bench_ablation.py).

    * Weight gradients in bands of output rows wherever a sample's output has
      at least one band's worth of pixels (lax's own slows down sharply on
      large outputs), except for a 3-channel output and the Winograd layers
      (below).
    * Strided convolutions: lax forward, im2col input gradient (lax's
      lhs-dilated transpose is slow, 40x at 8x8 maps); on maps under 32 px the
      whole layer is im2col; the weight gradient per tap for 3x3 kernels on
      maps up to 128 px.
    * The sub-pixel transposed convolution's 2x2 kernel: between at least 128
      channels all three by Winograd, else lax output, im2col input gradient
      and the weight gradient per tap (lax's takes seconds there).
    * Dilated convolutions whose taps read mostly padding (at most half of the
      work left, e.g. dilation 8 and 16 on 16 px maps): valid taps only, region
      by region, for the output and both gradients.
    * A stride-1 convolution to at most 3 channels: the weight gradient as one
      matmul against the shifted output gradients.
    * A stride-1 convolution to 4-32 channels (64 -> 32 before the output
      layer): the input gradient, and on maps up to 64 px the output, by XLA's
      own kernel, which uses both cores where YNNPACK's uses one.
    * A 3x3 stride-1 "same" convolution between at least 128 channels whose
      map tiles into output pairs: output and both gradients by Winograd.
    """
    k, _, cin, cout = kernel_shape
    if padding is None:
        padding = (k // 2) * dilation
    plan = ConvPlan(stride, dilation, padding)
    wide = min(cin, cout) >= _WINOGRAD_MIN_CHANNELS
    if k == 2:
        plan = dataclasses.replace(plan, input_grad="im2col", weight_grad="taps")
        if winograd and stride == 1 and wide:
            plan = dataclasses.replace(
                plan, forward="winograd", input_grad="winograd", weight_grad="winograd"
            )
        return plan
    if stride > 1 and dilation == 1:
        if map_size < _IM2COL_MAX_MAP:
            return dataclasses.replace(
                plan, forward="im2col", input_grad="im2col", weight_grad="im2col"
            )
        plan = dataclasses.replace(plan, input_grad="im2col")
        if k == 3 and map_size <= _TAPS_MAX_MAP:
            return dataclasses.replace(plan, weight_grad="taps")
    same_size = stride == 1 and k % 2 == 1 and padding == (k // 2) * dilation
    if valid_taps and same_size and valid_tap_fraction(map_size, k, dilation, padding) <= 0.5:
        return dataclasses.replace(
            plan, forward="valid_taps", input_grad="valid_taps", weight_grad="valid_taps"
        )
    if output_taps and stride == 1 and cout <= 3:
        return dataclasses.replace(plan, weight_grad="output_taps")
    if xla_kernels and same_size and 3 < cout <= _XLA_KERNEL_MAX_COUT:
        forward = "xla_kernel" if map_size <= _XLA_KERNEL_FORWARD_MAX_MAP else "lax"
        plan = dataclasses.replace(plan, forward=forward, input_grad="xla_kernel")
    if winograd and wide and same_size and k == 3 and map_size % (2 * dilation) == 0:
        return dataclasses.replace(
            plan, forward="winograd", input_grad="winograd", weight_grad="winograd"
        )
    out_size = _out_size(map_size, k, stride, dilation, padding)
    band_pixels = max(_BAND_PIXELS, int(_BAND_FLOPS / (k * k * cin * cout)))
    if bands and cout > 3 and out_size * out_size >= band_pixels:
        return dataclasses.replace(plan, weight_grad="banded", band_pixels=band_pixels)
    return plan


def _formulation(name: str, plan: ConvPlan):
    if name == "im2col":
        return functools.partial(conv2d_im2col, stride=plan.stride, padding=plan.padding)
    if name == "valid_taps":
        return functools.partial(conv2d_valid_taps, dilation=plan.dilation, padding=plan.padding)
    if name == "winograd":
        return functools.partial(conv2d_winograd, dilation=plan.dilation, padding=plan.padding)
    if name == "xla_kernel":
        return functools.partial(
            conv2d_xla_kernel, stride=plan.stride, dilation=plan.dilation, padding=plan.padding
        )
    return functools.partial(
        conv2d_reference, stride=plan.stride, dilation=plan.dilation, padding=plan.padding
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv2d_planned(x, kernel, plan: ConvPlan):
    """Convolution whose output and two gradients each use the plan's formulation."""
    return _formulation(plan.forward, plan)(x, kernel)


def _planned_fwd(x, kernel, plan):
    return conv2d_planned(x, kernel, plan), (x, kernel)


def _planned_bwd(plan, residuals, dy):
    x, kernel = residuals
    # A stride-1 convolution's transpose is one with the flipped kernel and the
    # complementary padding (for a "same" convolution the same padding).
    transpose_padding = plan.dilation * (kernel.shape[0] - 1) - plan.padding
    if plan.input_grad == "winograd":
        dx = conv2d_winograd(
            dy, kernel, dilation=plan.dilation, padding=transpose_padding, transpose_kernel=True
        )
    elif plan.input_grad in ("valid_taps", "xla_kernel"):
        flipped = jnp.flip(kernel, (0, 1)).swapaxes(2, 3)
        transposed = dataclasses.replace(plan, padding=transpose_padding)
        dx = _formulation(plan.input_grad, transposed)(dy, flipped)
    else:
        # Each vjp's own forward pass is dead code under jit and is removed.
        _, input_vjp = jax.vjp(lambda x: _formulation(plan.input_grad, plan)(x, kernel), x)
        (dx,) = input_vjp(dy)
    geometry = dict(kernel_size=kernel.shape[0], dilation=plan.dilation, padding=plan.padding)
    if plan.weight_grad == "banded":
        dw = weight_grad_banded(x, dy, stride=plan.stride, band_pixels=plan.band_pixels, **geometry)
    elif plan.weight_grad == "taps":
        dw = weight_grad_taps(x, dy, stride=plan.stride, **geometry)
    elif plan.weight_grad == "output_taps":
        dw = weight_grad_output_taps(x, dy, **geometry)
    elif plan.weight_grad == "winograd":
        dw = weight_grad_winograd(x, dy, **geometry)
    else:
        _, weight_vjp = jax.vjp(lambda w: _formulation(plan.weight_grad, plan)(x, w), kernel)
        (dw,) = weight_vjp(dy)
    return dx, dw.astype(kernel.dtype)


conv2d_planned.defvjp(_planned_fwd, _planned_bwd)


def _im2col_throughout(kernel_shape, map_size, stride, dilation, padding):
    """The earlier plan, kept to measure the per-component one against: PERF.md's rule
    (im2col for every strided 3x3 convolution and strided ones on maps under 128 px)."""
    kernel_size = kernel_shape[0]
    plan = ConvPlan(stride, dilation, padding)
    if kernel_size == 2 or (
        stride > 1 and dilation == 1 and (kernel_size == 3 or map_size < _PERF_MD_IM2COL_MAX_MAP)
    ):
        return dataclasses.replace(
            plan, forward="im2col", input_grad="im2col", weight_grad="im2col"
        )
    return plan


def conv2d(x, kernel, *, stride=1, dilation=1, padding=0):
    """Convolution (NHWC, HWIO kernel, symmetric padding) in its fastest exact form."""
    planner = {
        "planned": plan_conv,
        "unbanded": functools.partial(plan_conv, bands=False),
        "no_valid_taps": functools.partial(plan_conv, valid_taps=False),
        "no_output_taps": functools.partial(plan_conv, output_taps=False),
        "no_xla_kernels": functools.partial(plan_conv, xla_kernels=False),
        "no_winograd": functools.partial(plan_conv, winograd=False),
        "im2col": _im2col_throughout,
    }.get(formulation("conv"))
    if planner is None:  # "lax"
        return conv2d_reference(x, kernel, stride=stride, dilation=dilation, padding=padding)
    plan = planner(kernel.shape, x.shape[1], stride, dilation, padding)
    if plan == ConvPlan(stride, dilation, padding):
        return conv2d_reference(x, kernel, stride=stride, dilation=dilation, padding=padding)
    return conv2d_planned(x, kernel, plan)


def conv_transpose_4x4_reference(x, kernel):
    """torch's ConvTranspose2d(k=4, s=2, p=1) in plain lax.

    `kernel[t1, t2, c, o]` is torch's `weight[c, o, t1, t2]`: the kernel that
    scatters input pixel m to outputs 2m - 1 + t.
    """
    return lax.conv_general_dilated(
        x,
        jnp.flip(kernel, (0, 1)),
        window_strides=(1, 1),
        padding=[(2, 2), (2, 2)],
        lhs_dilation=(2, 2),
        dimension_numbers=_DIMS,
    )


# Per axis: output 2m + r = sum_j x[m + r - 1 + j] * w[_TAP[r][j]].
_TAP = ((3, 1), (2, 0))


def conv_transpose_4x4_subpixel(x, kernel):
    """The same transposed convolution as a 2x2 convolution and depth-to-space."""
    batch, h, w, _ = x.shape
    cout = kernel.shape[-1]
    tap = jnp.asarray(_TAP)
    # sub[r1, r2, j1, j2, c, o] = kernel[_TAP[r1][j1], _TAP[r2][j2], c, o]
    sub = kernel[tap[:, None, :, None], tap[None, :, None, :]]
    sub = sub.transpose(2, 3, 4, 0, 1, 5).reshape(2, 2, -1, 4 * cout)
    y = conv2d(x, sub, padding=1)  # (B, h+1, w+1, 4*cout)
    y = y.reshape(batch, h + 1, w + 1, 2, 2, cout)
    rows = []
    for r1 in range(2):
        cols = [y[:, r1 : r1 + h, r2 : r2 + w, r1, r2] for r2 in range(2)]
        rows.append(jnp.stack(cols, axis=3))  # (B, h, w, 2, cout)
    out = jnp.stack(rows, axis=2)  # (B, h, 2, w, 2, cout)
    return out.reshape(batch, 2 * h, 2 * w, cout)


def batch_norm_two_pass(x, scale, bias, eps):
    """Training-mode BatchNorm as usually written: mean, then variance, then normalise."""
    axes = tuple(range(x.ndim - 1))
    mean = jnp.mean(x, axis=axes)
    var = jnp.mean(jnp.square(x - mean), axis=axes)
    return (x - mean) * lax.rsqrt(var + eps) * scale + bias, mean, var


def batch_norm_train(x, scale, bias, eps):
    """Training-mode BatchNorm, folded; returns (y, batch mean, batch variance)."""
    if formulation("batch_norm") == "two_pass":
        return batch_norm_two_pass(x, scale, bias, eps)
    axes = tuple(range(x.ndim - 1))
    # One sample per channel as the shift keeps E[x^2] - E[x]^2 exact in fp32.
    shift = lax.stop_gradient(x[(0,) * (x.ndim - 1)])
    xs = x - shift
    m1 = jnp.mean(xs, axis=axes)
    var = jnp.maximum(jnp.mean(jnp.square(xs), axis=axes) - jnp.square(m1), 0.0)
    mean = m1 + shift
    mult = scale * lax.rsqrt(var + eps)
    return x * mult + (bias - mean * mult), mean, var


class Conv(nnx.Module):
    """k x k convolution with symmetric padding k//2 * dilation, as in the paper's nets."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int,
        *,
        stride: int = 1,
        dilation: int = 1,
        use_bias: bool = True,
        rngs: nnx.Rngs,
    ):
        init = nnx.initializers.lecun_normal()
        self.kernel = nnx.Param(init(rngs.params(), (kernel_size, kernel_size, cin, cout)))
        self.bias = nnx.Param(jnp.zeros((cout,))) if use_bias else None
        self.stride = stride
        self.dilation = dilation
        self.padding = (kernel_size // 2) * dilation

    def __call__(self, x):
        kernel = self.kernel[...].astype(x.dtype)
        y = conv2d(x, kernel, stride=self.stride, dilation=self.dilation, padding=self.padding)
        if self.bias is not None:
            y = y + self.bias[...].astype(x.dtype)
        return y


class ConvTranspose4x4(nnx.Module):
    """The paper's 4x4 stride-2 "deconvolution" that doubles the map size."""

    def __init__(self, cin: int, cout: int, *, use_bias: bool = True, rngs: nnx.Rngs):
        init = nnx.initializers.lecun_normal()
        self.kernel = nnx.Param(init(rngs.params(), (4, 4, cin, cout)))
        self.bias = nnx.Param(jnp.zeros((cout,))) if use_bias else None

    def __call__(self, x):
        kernel = self.kernel[...].astype(x.dtype)
        if formulation("transposed") == "lax":
            y = conv_transpose_4x4_reference(x, kernel)
        else:
            y = conv_transpose_4x4_subpixel(x, kernel)
        if self.bias is not None:
            y = y + self.bias[...].astype(x.dtype)
        return y


class BatchNorm(nnx.Module):
    """BatchNorm over N, H, W with running statistics for evaluation.

    `momentum` is the running average's decay (torch's default 0.1 update is
    0.9 here), so short CPU runs get usable eval-mode statistics.
    """

    def __init__(self, features: int, *, momentum: float = 0.9, eps: float = 1e-5):
        self.scale = nnx.Param(jnp.ones((features,)))
        self.bias = nnx.Param(jnp.zeros((features,)))
        self.mean = nnx.BatchStat(jnp.zeros((features,)))
        self.var = nnx.BatchStat(jnp.ones((features,)))
        self.momentum = momentum
        self.eps = eps

    def __call__(self, x, *, train: bool):
        scale = self.scale[...]
        bias = self.bias[...]
        if train:
            y, mean, var = batch_norm_train(x.astype(jnp.float32), scale, bias, self.eps)
            m = self.momentum
            self.mean[...] = m * self.mean[...] + (1 - m) * lax.stop_gradient(mean)
            self.var[...] = m * self.var[...] + (1 - m) * lax.stop_gradient(var)
            return y.astype(x.dtype)
        mult = scale * lax.rsqrt(self.var[...] + self.eps)
        shift = bias - self.mean[...] * mult
        return x * mult.astype(x.dtype) + shift.astype(x.dtype)


def num_params(tree) -> int:
    """Number of scalars in a pytree of arrays."""
    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree))

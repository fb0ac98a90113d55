"""Exact rewrites of a convolution's output or gradients that XLA:CPU runs faster than lax's own.

A convolution's output, input gradient and weight gradient are three
different operations, and the fastest formulation of one is often not the
fastest of another; each function here computes one of them for the shapes
where it wins (the planner, `conv_plan.py`, says which):

* `conv2d_im2col`: k x k strided slices concatenated on channels, one matmul
  (lax's strided input gradient, an lhs-dilated transpose, ran 40x slower on
  8x8 maps).
* `weight_grad_taps`, `weight_grad_output_taps`, `weight_grad_banded`: the
  weight gradient as one matmul per tap, as one matmul against shifted output
  gradients, or as lax's over bands of output rows.
* `conv2d_valid_taps`: dilated convolutions on small maps computed region by
  region with only the taps that read inside the map (at dilation 16 on a
  16 px map eight of the nine taps read only zero padding).
* `conv2d_xla_kernel`: few-channel convolutions handed from YNNPACK, which
  runs some of them on one core, to XLA's own kernel, which uses both.

Each equals `reference.conv2d_reference` (tests/test_layers.py).
"""

import jax
import jax.numpy as jnp

from glcic_jax.nets.reference import lax_conv, output_size


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
                return lax_conv(
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
                cols.append(lax_conv(region, taps, row_pad, col_pad, dilation=dilation))
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
    out_h = output_size(height, kernel.shape[0], stride, dilation, padding)
    extra = max(0, (height + 1 - out_h) * stride)  # output rows: height + 1
    rows, cols = (padding, padding + extra), (padding, padding)
    return lax_conv(x, kernel, rows, cols, stride=stride, dilation=dilation)[:, :out_h]

"""Winograd's minimal filtering for stride-1 3x3 and 2x2 convolutions: F(2x2, 3x3) and F(2x2, 2x2).

Between wide layers (128 channels and more) the CPU spends its time in the
multiply-adds; these forms do 2.25x (3x3) and 1.78x (2x2) fewer of them, as
batched matmuls over transformed blocks of the input whose data and output
transforms are additions (Lavin and Gray, "Fast Algorithms for Convolutional
Neural Networks", 2016). `conv2d_winograd` gives a convolution's output, and
its input gradient with `transpose_kernel`; `weight_grad_winograd` its
weight gradient. The planner (`conv_plan.py`) decides which layers use them.
"""

import jax.numpy as jnp
import numpy as np
from jax import lax

from glcic_jax.nets.reference import output_size


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
    out_h, out_w = (output_size(side, k, 1, d, padding) for side in (height, width))
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
    out_h, out_w = (output_size(side, k, 1, d, padding) for side in (height, width))
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

"""The plain `lax` convolutions: the definitions every faster formulation must equal.

Non-CPU backends run these as they are (their libraries, e.g. cuDNN, run them
well), and tests/test_layers.py checks each rewrite in this package against
them: the output and both gradients.
"""

import jax.numpy as jnp
from jax import lax

# NHWC images, HWIO kernels (torch's OIHW weights transposed).
DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def output_size(size: int, kernel_size: int, stride: int, dilation: int, padding: int) -> int:
    """A convolution's output side for symmetric padding."""
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def lax_conv(x, kernel, rows, cols, *, stride=1, dilation=1):
    """lax's convolution, NHWC / HWIO; `rows` and `cols` are (before, after) padding."""
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(stride, stride),
        padding=[rows, cols],
        rhs_dilation=(dilation, dilation),
        dimension_numbers=DIMENSIONS,
    )


def conv2d_reference(x, kernel, *, stride=1, dilation=1, padding=0):
    """The plain lax convolution with torch-style symmetric padding."""
    both = (padding, padding)
    return lax_conv(x, kernel, both, both, stride=stride, dilation=dilation)


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
        dimension_numbers=DIMENSIONS,
    )

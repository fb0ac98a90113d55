"""Which formulation each convolution's output, input gradient and weight gradient get.

`plan_conv` is the CPU's planner: from a layer's kernel shape, map size and
geometry it picks, for each of the three parts, the formulation measured
fastest on XLA:CPU (`conv_formulations.py`, `winograd.py`). `lax_plan` is
the planner that keeps lax for all three. A planner is what
`Formulations.conv` holds; `planned_conv.conv2d` runs its plan.
"""

import dataclasses
from typing import Callable

from glcic_jax.nets.conv_formulations import valid_tap_fraction
from glcic_jax.nets.reference import output_size

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


# A planner: (kernel_shape (k, k, Cin, Cout), input map side, stride, dilation,
# padding) -> the plan for that layer.
ConvPlanner = Callable[..., ConvPlan]


def lax_plan(kernel_shape, map_size: int, stride: int = 1, dilation: int = 1, padding=None):
    """The plain plan: lax's convolution and its automatic gradients, whatever the layer."""
    if padding is None:
        padding = (kernel_shape[0] // 2) * dilation
    return ConvPlan(stride, dilation, padding)


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
    """The formulations measured fastest on XLA:CPU for this layer.

    `kernel_shape` is (k, k, Cin, Cout); `map_size` the input's side. Each
    keyword switch turns one optimisation off, so that the ablation benchmark
    can measure what it is worth.

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
    out_size = output_size(map_size, k, stride, dilation, padding)
    band_pixels = max(_BAND_PIXELS, int(_BAND_FLOPS / (k * k * cin * cout)))
    if bands and cout > 3 and out_size * out_size >= band_pixels:
        return dataclasses.replace(plan, weight_grad="banded", band_pixels=band_pixels)
    return plan

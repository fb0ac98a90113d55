"""Convolutions computed by a plan: one custom VJP whose output and two gradients each
run the formulation the plan names, and the sub-pixel transposed convolution built on it.

`conv2d` asks a planner (`conv_plan.py`) for the layer's plan and runs it;
where the plan is lax throughout it traces the plain `lax` convolution, with
no custom VJP at all.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp

from glcic_jax.nets.conv_formulations import (
    conv2d_im2col,
    conv2d_valid_taps,
    conv2d_xla_kernel,
    weight_grad_banded,
    weight_grad_output_taps,
    weight_grad_taps,
)
from glcic_jax.nets.conv_plan import ConvPlan, ConvPlanner
from glcic_jax.nets.reference import conv2d_reference
from glcic_jax.nets.winograd import conv2d_winograd, weight_grad_winograd


def _formulation(name: str, plan: ConvPlan):
    """The convolution `name` computes, as a function of (x, kernel), at the plan's geometry."""
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


def conv2d(x, kernel, *, planner: ConvPlanner, stride=1, dilation=1, padding=0):
    """Convolution (NHWC, HWIO kernel, symmetric padding) as `planner` plans it for this layer."""
    plan = planner(kernel.shape, x.shape[1], stride, dilation, padding)
    if plan == ConvPlan(stride, dilation, padding):
        return conv2d_reference(x, kernel, stride=stride, dilation=dilation, padding=padding)
    return conv2d_planned(x, kernel, plan)


# Per axis: output 2m + r = sum_j x[m + r - 1 + j] * w[_TAP[r][j]].
_TAP = ((3, 1), (2, 0))


def conv_transpose_4x4_subpixel(x, kernel, *, planner: ConvPlanner):
    """`reference.conv_transpose_4x4_reference` as a 2x2 convolution and depth-to-space.

    lax's 4x4 stride-2 transposed convolution multiplies the zeros it inserts
    between input pixels, and its backward pass ran at 6-8 GFLOP/s on XLA:CPU;
    here each of the four output phases is one 2x2 convolution (side by side as
    4 x Cout channels, computed as `planner` plans it): the same sums, no zero
    taps.
    """
    batch, h, w, _ = x.shape
    cout = kernel.shape[-1]
    tap = jnp.asarray(_TAP)
    # sub[r1, r2, j1, j2, c, o] = kernel[_TAP[r1][j1], _TAP[r2][j2], c, o]
    sub = kernel[tap[:, None, :, None], tap[None, :, None, :]]
    sub = sub.transpose(2, 3, 4, 0, 1, 5).reshape(2, 2, -1, 4 * cout)
    y = conv2d(x, sub, planner=planner, padding=1)  # (B, h+1, w+1, 4*cout)
    y = y.reshape(batch, h + 1, w + 1, 2, 2, cout)
    rows = []
    for r1 in range(2):
        cols = [y[:, r1 : r1 + h, r2 : r2 + w, r1, r2] for r2 in range(2)]
        rows.append(jnp.stack(cols, axis=3))  # (B, h, w, 2, cout)
    out = jnp.stack(rows, axis=2)  # (B, h, 2, w, 2, cout)
    return out.reshape(batch, 2 * h, 2 * w, cout)

"""The layer formulations the ablation benchmark times: each speed optimisation switched off alone.

A formulation variant is written "FIELD=CHOICE" ("conv=no_winograd",
"transposed=lax", "batch_norm=two_pass") and changes that one field of the
backend's default `Formulations`; "all_lax" and "cpu_plan" replace all three.
Every variant computes the same function (tests/test_layers.py proves each
formulation equal to plain lax); only speed differs. The convolution
variants are planners: the CPU's `plan_conv` with one of its optimisations
turned off, the earlier im2col rule, or lax throughout. None of this is used
in training or inference; experiments/bench_ablation.py wires it to flags.
"""

import dataclasses
import functools

from glcic_jax.nets.conv_plan import ConvPlan, lax_plan, plan_conv
from glcic_jax.nets.formulations import CPU_FORMULATIONS, PLAIN_FORMULATIONS, Formulations

# The earlier rule for im2col, before per-part plans: strided convolutions on
# maps under this size (and every strided 3x3) took im2col for all three parts.
_EARLIER_IM2COL_MAX_MAP = 128


def im2col_throughout(kernel_shape, map_size: int, stride=1, dilation=1, padding=None):
    """The earlier plan, kept to measure the per-part one against: im2col for the output
    and both gradients of every strided 3x3 convolution, of strided ones on maps under
    128 px and of 2x2 ones, lax for the rest."""
    kernel_size = kernel_shape[0]
    if padding is None:
        padding = (kernel_size // 2) * dilation
    plan = ConvPlan(stride, dilation, padding)
    if kernel_size == 2 or (
        stride > 1 and dilation == 1 and (kernel_size == 3 or map_size < _EARLIER_IM2COL_MAX_MAP)
    ):
        return dataclasses.replace(
            plan, forward="im2col", input_grad="im2col", weight_grad="im2col"
        )
    return plan


# "conv=NAME": the planner each name stands for.
CONV_PLANNERS = {
    "planned": plan_conv,
    "unbanded": functools.partial(plan_conv, bands=False),
    "no_valid_taps": functools.partial(plan_conv, valid_taps=False),
    "no_output_taps": functools.partial(plan_conv, output_taps=False),
    "no_xla_kernels": functools.partial(plan_conv, xla_kernels=False),
    "no_winograd": functools.partial(plan_conv, winograd=False),
    "im2col": im2col_throughout,
    "lax": lax_plan,
}
# Variants that replace all three choices.
WHOLE_VARIANTS = {"all_lax": PLAIN_FORMULATIONS, "cpu_plan": CPU_FORMULATIONS}


def formulations_for(variant: str, default: Formulations) -> Formulations:
    """The formulations `variant` times: `default` with the variant's choice in place.

    Raises:
      ValueError: `variant` names no formulation variant; the message lists them.
    """
    if variant in WHOLE_VARIANTS:
        return WHOLE_VARIANTS[variant]
    field, _, choice = variant.partition("=")
    if field == "conv":
        if choice not in CONV_PLANNERS:
            raise ValueError(
                f"unknown formulation conv={choice!r}; choose from {sorted(CONV_PLANNERS)}"
            )
        return dataclasses.replace(default, conv=CONV_PLANNERS[choice])
    if field in ("transposed", "batch_norm"):
        return dataclasses.replace(default, **{field: choice})  # Formulations checks the name
    raise ValueError(
        f"unknown formulation variant {variant!r}: write conv=, transposed= or batch_norm=, "
        f"or one of {sorted(WHOLE_VARIANTS)}"
    )

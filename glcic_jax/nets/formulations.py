"""Which exact formulation the layers compute with: the choice, and the backend's default.

The network file (`models.py`) reads like the paper: it asks for "a 3x3
convolution with stride 2" or "a 4x4 transposed convolution". A
`Formulations` says how each is computed. The plain `lax` forms are
mathematically the same, but on XLA:CPU some run 10-40x slower, so the CPU
gets exact rewrites:

* Convolutions: a planner (`conv_plan.plan_conv`) picks, for each layer's
  output, input gradient and weight gradient on its own, lax, im2col, per-tap
  matmuls, lax in bands of output rows, only the taps that read inside the
  map, XLA's own kernel instead of YNNPACK's, or Winograd's F(2x2, 3x3) and
  F(2x2, 2x2); `planned_conv.conv2d_planned` is the custom VJP that runs
  the plan.
* 4x4 stride-2 transposed convolutions: the sub-pixel form, one 2x2
  convolution to 4 x Cout channels and depth-to-space (lax's backward ran at
  6-8 GFLOP/s).
* BatchNorm: one-pass shifted statistics, normalisation folded into one scale
  and one shift per channel.

Other backends keep the plain operations, which their libraries (cuDNN) run
well: on an H100 the CPU rewrites made inference 2.2x slower and phase 1 took
minutes to compile. `default_formulations` is the one place that decides by
backend. Parameters keep the ordinary layouts (HWIO kernels, per-channel
scale and bias), so checkpoints do not depend on the formulation or the
backend; tests/test_layers.py proves each formulation equal to the plain
operation, in outputs and in both gradients.
"""

import dataclasses

import jax

from glcic_jax.nets.batch_norm import batch_norm_folded, batch_norm_two_pass
from glcic_jax.nets.conv_plan import ConvPlanner, lax_plan, plan_conv
from glcic_jax.nets.planned_conv import conv2d, conv_transpose_4x4_subpixel
from glcic_jax.nets.reference import conv_transpose_4x4_reference

TRANSPOSED_CHOICES = ("subpixel", "lax")
BATCH_NORM_CHOICES = ("folded", "two_pass")


@dataclasses.dataclass(frozen=True)
class Formulations:
    """How the layers compute convolutions, 4x4 transposed convolutions and BatchNorm.

    Every choice computes the same function; only speed and compile time differ.

    Attributes:
      conv: the planner that picks each convolution's formulations
        (`conv_plan.plan_conv`, or `conv_plan.lax_plan` for plain lax).
      transposed: "subpixel" (a planned 2x2 convolution and depth-to-space) or
        "lax" (lax's lhs-dilated convolution).
      batch_norm: "folded" (one pass, one scale and shift) or "two_pass".
    """

    conv: ConvPlanner
    transposed: str
    batch_norm: str

    def __post_init__(self):
        if not callable(self.conv):
            raise ValueError(f"formulation conv={self.conv!r} is not a convolution planner")
        if self.transposed not in TRANSPOSED_CHOICES:
            raise ValueError(
                f"unknown formulation transposed={self.transposed!r}; "
                f"choose from {TRANSPOSED_CHOICES}"
            )
        if self.batch_norm not in BATCH_NORM_CHOICES:
            raise ValueError(
                f"unknown formulation batch_norm={self.batch_norm!r}; "
                f"choose from {BATCH_NORM_CHOICES}"
            )

    def conv2d(self, x, kernel, *, stride=1, dilation=1, padding=0):
        """Convolution (NHWC, HWIO kernel, symmetric padding)."""
        return conv2d(
            x, kernel, planner=self.conv, stride=stride, dilation=dilation, padding=padding
        )

    def conv_transpose_4x4(self, x, kernel):
        """torch's ConvTranspose2d(k=4, s=2, p=1): kernel[t1, t2, c, o] = weight[c, o, t1, t2]."""
        if self.transposed == "lax":
            return conv_transpose_4x4_reference(x, kernel)
        return conv_transpose_4x4_subpixel(x, kernel, planner=self.conv)

    def batch_norm_train(self, x, scale, bias, eps):
        """Training-mode BatchNorm over all axes but the last: (y, batch mean, batch variance)."""
        if self.batch_norm == "two_pass":
            return batch_norm_two_pass(x, scale, bias, eps)
        return batch_norm_folded(x, scale, bias, eps)


# The formulations measured fastest on XLA:CPU.
CPU_FORMULATIONS = Formulations(conv=plan_conv, transposed="subpixel", batch_norm="folded")
# The plain operations, for backends whose libraries run them well.
PLAIN_FORMULATIONS = Formulations(conv=lax_plan, transposed="lax", batch_norm="two_pass")


def default_formulations(backend: str | None = None) -> Formulations:
    """The formulations training and inference use on `backend` (default: JAX's default backend).

    The CPU gets its measured rewrites; every other backend the plain
    operations. Layers built without explicit formulations call this when
    they are traced, so one set of networks (and checkpoints) serves every
    backend.
    """
    if backend is None:
        backend = jax.default_backend()
    return CPU_FORMULATIONS if backend == "cpu" else PLAIN_FORMULATIONS


# Up to this image size, inference (forward passes only) on CPU compiles its
# convolutions with XLA's own (Eigen) kernels instead of YNNPACK's: measured
# 4-11% faster at 64 and 128 px, 3-6% slower at 256 px (docs/performance.md).
# Training keeps YNNPACK: its backward convolutions are much faster there
# (phase 1 at 64 px: 19% slower without).
_EIGEN_CONV_MAX_SIZE = 128
EIGEN_CONV_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}


def inference_compiler_options(image_size: int) -> dict:
    """XLA options for the completion network's forward pass on `image_size` images here."""
    if jax.default_backend() == "cpu" and image_size <= _EIGEN_CONV_MAX_SIZE:
        return dict(EIGEN_CONV_OPTIONS)
    return {}

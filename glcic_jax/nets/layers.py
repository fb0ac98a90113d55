"""The layers the paper's networks are built from: convolution, 4x4 transposed conv, BatchNorm.

Each holds its parameters in the ordinary layouts (HWIO kernels,
per-channel scale and bias) and computes with the `Formulations` it was
given, or, given none, with the backend's default (`default_formulations`),
decided when the layer is traced. Which formulations exist and why is
`formulations.py`'s story; here is only what the networks see.
"""

import jax.numpy as jnp
from flax import nnx
from jax import lax

from glcic_jax.nets.formulations import Formulations, default_formulations


def _chosen(formulations: Formulations | None) -> Formulations:
    """A layer's formulations: its own, else the default of the backend being traced for."""
    return default_formulations() if formulations is None else formulations


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
        formulations: Formulations | None = None,
        rngs: nnx.Rngs,
    ):
        init = nnx.initializers.lecun_normal()
        self.kernel = nnx.Param(init(rngs.params(), (kernel_size, kernel_size, cin, cout)))
        self.bias = nnx.Param(jnp.zeros((cout,))) if use_bias else None
        self.stride = stride
        self.dilation = dilation
        self.padding = (kernel_size // 2) * dilation
        self.formulations = formulations

    def __call__(self, x):
        kernel = self.kernel[...].astype(x.dtype)
        y = _chosen(self.formulations).conv2d(
            x, kernel, stride=self.stride, dilation=self.dilation, padding=self.padding
        )
        if self.bias is not None:
            y = y + self.bias[...].astype(x.dtype)
        return y


class ConvTranspose4x4(nnx.Module):
    """The paper's 4x4 stride-2 "deconvolution" that doubles the map size."""

    def __init__(
        self,
        cin: int,
        cout: int,
        *,
        use_bias: bool = True,
        formulations: Formulations | None = None,
        rngs: nnx.Rngs,
    ):
        init = nnx.initializers.lecun_normal()
        self.kernel = nnx.Param(init(rngs.params(), (4, 4, cin, cout)))
        self.bias = nnx.Param(jnp.zeros((cout,))) if use_bias else None
        self.formulations = formulations

    def __call__(self, x):
        kernel = self.kernel[...].astype(x.dtype)
        y = _chosen(self.formulations).conv_transpose_4x4(x, kernel)
        if self.bias is not None:
            y = y + self.bias[...].astype(x.dtype)
        return y


class BatchNorm(nnx.Module):
    """BatchNorm over N, H, W with running statistics for evaluation.

    `momentum` is the running average's decay (torch's default 0.1 update is
    0.9 here), so short CPU runs get usable eval-mode statistics.
    """

    def __init__(
        self,
        features: int,
        *,
        momentum: float = 0.9,
        eps: float = 1e-5,
        formulations: Formulations | None = None,
    ):
        self.scale = nnx.Param(jnp.ones((features,)))
        self.bias = nnx.Param(jnp.zeros((features,)))
        self.mean = nnx.BatchStat(jnp.zeros((features,)))
        self.var = nnx.BatchStat(jnp.ones((features,)))
        self.momentum = momentum
        self.eps = eps
        self.formulations = formulations

    def __call__(self, x, *, train: bool):
        scale = self.scale[...]
        bias = self.bias[...]
        if train:
            y, mean, var = _chosen(self.formulations).batch_norm_train(
                x.astype(jnp.float32), scale, bias, self.eps
            )
            m = self.momentum
            self.mean[...] = m * self.mean[...] + (1 - m) * lax.stop_gradient(mean)
            self.var[...] = m * self.var[...] + (1 - m) * lax.stop_gradient(var)
            return y.astype(x.dtype)
        mult = scale * lax.rsqrt(self.var[...] + self.eps)
        shift = bias - self.mean[...] * mult
        return x * mult.astype(x.dtype) + shift.astype(x.dtype)

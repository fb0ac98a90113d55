"""Training-mode BatchNorm's statistics and normalisation, in two exact forms.

`batch_norm_two_pass` is BatchNorm as usually written (mean, then variance,
then normalise), which other backends run as it is. `batch_norm_folded`
computes both statistics in one pass and folds the normalisation into one
scale and one shift per channel: fewer passes over the activations on the
CPU. One-pass statistics lose precision in float32 when the mean is large
against the spread (E[x^2] - E[x]^2 cancels); subtracting one sample per
channel first keeps them as exact as two passes. Both return
(y, batch mean, batch variance).
"""

import jax.numpy as jnp
from jax import lax


def batch_norm_two_pass(x, scale, bias, eps):
    """Training-mode BatchNorm as usually written: mean, then variance, then normalise."""
    axes = tuple(range(x.ndim - 1))
    mean = jnp.mean(x, axis=axes)
    var = jnp.mean(jnp.square(x - mean), axis=axes)
    return (x - mean) * lax.rsqrt(var + eps) * scale + bias, mean, var


def batch_norm_folded(x, scale, bias, eps):
    """Training-mode BatchNorm with one-pass, shifted statistics and a folded scale and shift."""
    axes = tuple(range(x.ndim - 1))
    # One sample per channel as the shift keeps E[x^2] - E[x]^2 exact in fp32.
    shift = lax.stop_gradient(x[(0,) * (x.ndim - 1)])
    xs = x - shift
    m1 = jnp.mean(xs, axis=axes)
    var = jnp.maximum(jnp.mean(jnp.square(xs), axis=axes) - jnp.square(m1), 0.0)
    mean = m1 + shift
    mult = scale * lax.rsqrt(var + eps)
    return x * mult + (bias - mean * mult), mean, var

"""The fast formulations in layers.py equal the plain lax operations: outputs and both gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glcic_jax import layers


def _grads(fn, x, w):
    """Output, input gradient and weight gradient under a fixed random cotangent."""

    @jax.jit
    def run(x, w):
        y, vjp = jax.vjp(fn, x, w)
        dx, dw = vjp(jax.random.normal(jax.random.key(2), y.shape))
        return y, dx, dw

    return run(x, w)


def _assert_same(fast, reference, x, w):
    fast_out, ref_out = jax.device_get((_grads(fast, x, w), _grads(reference, x, w)))
    for got, want, name in zip(fast_out, ref_out, ("out", "dx", "dw")):
        assert got.shape == want.shape, name
        scale = float(np.max(np.abs(want))) + 1e-12
        np.testing.assert_allclose(got / scale, want / scale, atol=2e-5, err_msg=name)


def _random(shape, seed):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


@pytest.mark.parametrize(
    "size,cin,cout,k,stride,padding",
    [
        (16, 3, 8, 3, 2, 1),
        (17, 4, 6, 3, 2, 1),
        (16, 3, 8, 5, 2, 2),
        (8, 16, 32, 5, 2, 2),
        (5, 8, 8, 5, 2, 2),
    ],
)
def test_im2col_conv_equals_lax(size, cin, cout, k, stride, padding):
    x, w = _random((2, size, size, cin), 0), _random((k, k, cin, cout), 1)
    _assert_same(
        lambda x, w: layers.conv2d_im2col(x, w, stride=stride, padding=padding),
        lambda x, w: layers.conv2d_reference(x, w, stride=stride, padding=padding),
        x,
        w,
    )


@pytest.mark.parametrize("size,cin,cout", [(4, 3, 5), (8, 16, 8), (7, 2, 3)])
def test_subpixel_transposed_conv_equals_lax(size, cin, cout):
    x, w = _random((2, size, size, cin), 0), _random((4, 4, cin, cout), 1)
    _assert_same(layers.conv_transpose_4x4_subpixel, layers.conv_transpose_4x4_reference, x, w)
    assert layers.conv_transpose_4x4_subpixel(x, w).shape == (2, 2 * size, 2 * size, cout)


def test_transposed_conv_matches_torch_definition():
    """torch ConvTranspose2d(k=4, s=2, p=1): y[i] = sum_t x[m] w[t] with i = 2m - 1 + t."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 3, 3, 2)).astype(np.float32)
    w = rng.normal(size=(4, 4, 2, 3)).astype(np.float32)
    want = np.zeros((1, 6, 6, 3), np.float32)
    for m1 in range(3):
        for m2 in range(3):
            for t1 in range(4):
                for t2 in range(4):
                    i1, i2 = 2 * m1 - 1 + t1, 2 * m2 - 1 + t2
                    if 0 <= i1 < 6 and 0 <= i2 < 6:
                        want[0, i1, i2] += x[0, m1, m2] @ w[t1, t2]
    np.testing.assert_allclose(layers.conv_transpose_4x4_subpixel(x, w), want, atol=1e-5)
    np.testing.assert_allclose(layers.conv_transpose_4x4_reference(x, w), want, atol=1e-5)


def test_conv2d_dispatch_follows_perf_facts():
    assert layers.use_im2col(3, 256, 2, 1)
    assert layers.use_im2col(5, 8, 2, 1)
    assert not layers.use_im2col(5, 256, 2, 1)
    assert not layers.use_im2col(3, 64, 1, 4)


def test_folded_batch_norm_equals_two_pass():
    x = _random((4, 6, 6, 5), 3) * 3.0 + 100.0  # a large mean is where one-pass sums fail
    scale, bias = _random((5,), 4), _random((5,), 5)

    def two_pass(x, scale):
        mean = jnp.mean(x, axis=(0, 1, 2))
        var = jnp.mean(jnp.square(x - mean), axis=(0, 1, 2))
        return (x - mean) / jnp.sqrt(var + 1e-5) * scale + bias

    def folded(x, scale):
        return layers.batch_norm_train(x, scale, bias, 1e-5)[0]

    _assert_same(folded, two_pass, x, scale)
    _, mean, var = layers.batch_norm_train(x, scale, bias, 1e-5)
    np.testing.assert_allclose(mean, jnp.mean(x, axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(var, jnp.var(x, axis=(0, 1, 2)), rtol=1e-4)

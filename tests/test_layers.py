"""The fast formulations in glcic_jax.nets equal the plain lax operations: outputs and both
gradients; the layers compute with the formulations they are given, else the backend's."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from glcic_jax.nets import (
    batch_norm,
    conv_formulations,
    conv_plan,
    layers,
    planned_conv,
    reference,
    winograd,
)
from glcic_jax.nets.formulations import (
    CPU_FORMULATIONS,
    PLAIN_FORMULATIONS,
    Formulations,
    default_formulations,
)


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


def _sweep(cases, keep):
    """`cases` with all but those at the indices `keep` marked slow.

    The kept cases cover each formulation's edge cases in the default run;
    the whole sweep (for a change to the kernels) runs with --runslow.
    """
    return [
        case if i in keep else pytest.param(*(case if isinstance(case, tuple) else (case,)),
                                            marks=pytest.mark.slow)
        for i, case in enumerate(cases)
    ]  # fmt: skip


@pytest.mark.parametrize(
    "size,cin,cout,k,stride,padding",
    _sweep(
        [
            (16, 3, 8, 3, 2, 1),
            (17, 4, 6, 3, 2, 1),
            (16, 3, 8, 5, 2, 2),
            (8, 16, 32, 5, 2, 2),
            (5, 8, 8, 5, 2, 2),
        ],
        keep=(0,),
    ),
)
def test_im2col_conv_equals_lax(size, cin, cout, k, stride, padding):
    x, w = _random((2, size, size, cin), 0), _random((k, k, cin, cout), 1)
    _assert_same(
        lambda x, w: conv_formulations.conv2d_im2col(x, w, stride=stride, padding=padding),
        lambda x, w: reference.conv2d_reference(x, w, stride=stride, padding=padding),
        x,
        w,
    )


# The sub-pixel form with its 2x2 convolution planned as on the CPU.
_subpixel = functools.partial(planned_conv.conv_transpose_4x4_subpixel, planner=conv_plan.plan_conv)


@pytest.mark.parametrize(
    "size,cin,cout", _sweep([(4, 3, 5), (8, 16, 8), (7, 2, 3), (6, 128, 32)], keep=(2,))
)
def test_subpixel_transposed_conv_equals_lax(size, cin, cout):
    """The last case is wide enough for the Winograd plan (128 -> 4 x 32 channels)."""
    x, w = _random((2, size, size, cin), 0), _random((4, 4, cin, cout), 1)
    _assert_same(_subpixel, reference.conv_transpose_4x4_reference, x, w)
    assert _subpixel(x, w).shape == (2, 2 * size, 2 * size, cout)


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
    np.testing.assert_allclose(_subpixel(x, w), want, atol=1e-5)
    np.testing.assert_allclose(reference.conv_transpose_4x4_reference(x, w), want, atol=1e-5)


@pytest.mark.parametrize(
    "forward,input_grad,weight_grad",
    _sweep([("lax", "im2col", "taps"), ("im2col", "lax", "im2col"), ("lax", "lax", "lax"),
            ("im2col", "im2col", "taps")], keep=(1, 3)),
)  # fmt: skip
@pytest.mark.parametrize(
    "size,cin,cout,k,stride,padding",
    _sweep([(16, 3, 8, 3, 2, 1), (9, 4, 6, 5, 2, 2), (6, 5, 7, 2, 1, 1)], keep=(1,)),
)
def test_planned_conv_equals_lax(
    forward, input_grad, weight_grad, size, cin, cout, k, stride, padding
):
    """Every mix of formulations for output, input gradient and weight gradient."""
    plan = conv_plan.ConvPlan(stride, 1, padding, forward, input_grad, weight_grad)
    x, w = _random((2, size, size, cin), 0), _random((k, k, cin, cout), 1)
    _assert_same(
        lambda x, w: planned_conv.conv2d_planned(x, w, plan),
        lambda x, w: reference.conv2d_reference(x, w, stride=stride, padding=padding),
        x,
        w,
    )


@pytest.mark.parametrize("dilation", _sweep([1, 2, 4], keep=(2,)))
def test_weight_grad_taps_equals_lax_dilated(dilation):
    x, w = _random((2, 12, 12, 3), 0), _random((3, 3, 3, 4), 1)
    plan = conv_plan.ConvPlan(1, dilation, dilation, weight_grad="taps")
    _assert_same(
        lambda x, w: planned_conv.conv2d_planned(x, w, plan),
        lambda x, w: reference.conv2d_reference(x, w, dilation=dilation, padding=dilation),
        x,
        w,
    )


@pytest.mark.parametrize(
    "size,dilation", _sweep([(16, 16), (16, 8), (9, 4), (12, 4), (5, 2), (7, 7)], keep=(5,))
)
def test_valid_taps_conv_equals_lax(size, dilation):
    """Dilated convolutions computed region by region with only in-map taps."""
    plan = conv_plan.ConvPlan(1, dilation, dilation, "valid_taps", "valid_taps", "valid_taps")
    x, w = _random((2, size, size, 3), 0), _random((3, 3, 3, 4), 1)
    _assert_same(
        lambda x, w: planned_conv.conv2d_planned(x, w, plan),
        lambda x, w: reference.conv2d_reference(x, w, dilation=dilation, padding=dilation),
        x,
        w,
    )


def test_valid_taps_on_a_rectangular_map_and_only_for_same_size_convolutions():
    plan = conv_plan.ConvPlan(1, 8, 8, "valid_taps", "valid_taps", "valid_taps")
    x, w = _random((2, 16, 9, 3), 0), _random((3, 3, 3, 4), 1)
    _assert_same(
        lambda x, w: planned_conv.conv2d_planned(x, w, plan),
        lambda x, w: reference.conv2d_reference(x, w, dilation=8, padding=8),
        x,
        w,
    )
    with pytest.raises(ValueError, match="odd kernel"):
        conv_formulations.conv2d_valid_taps(x, w, dilation=8, padding=4)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 16, 33, 64])
@pytest.mark.parametrize("dilation", [1, 2, 4, 8, 16])
def test_tap_segments_cover_the_map_and_keep_every_in_map_tap(size, dilation):
    k, padding = 3, dilation
    segments = conv_formulations.tap_segments(size, k, dilation, padding)
    assert segments[0][0] == 0 and segments[-1][1] == size
    assert all(a[1] == b[0] for a, b in zip(segments, segments[1:]))
    for start, stop, first, last in segments:
        for o in range(start, stop):
            for tap in range(k):
                inside = 0 <= o - padding + tap * dilation < size
                assert not inside or first <= tap <= last, (o, tap)
    assert conv_formulations.tap_segments(16, 3, 16, 16) == [(0, 16, 1, 1)]  # only the centre tap
    assert conv_formulations.valid_tap_fraction(16, 3, 16, 16) == pytest.approx(1 / 9)


@pytest.mark.parametrize(
    "size,k,dilation,padding",
    _sweep([(12, 3, 1, 1), (12, 3, 2, 2), (8, 5, 1, 2), (6, 2, 1, 1), (9, 3, 3, 3)], keep=(3,)),
)
def test_output_taps_weight_grad_equals_lax(size, k, dilation, padding):
    """Including a 2x2 kernel whose output is one pixel larger than its input."""
    plan = conv_plan.ConvPlan(1, dilation, padding, weight_grad="output_taps")
    x, w = _random((2, size, size, 5), 0), _random((k, k, 5, 3), 1)
    _assert_same(
        lambda x, w: planned_conv.conv2d_planned(x, w, plan),
        lambda x, w: reference.conv2d_reference(x, w, dilation=dilation, padding=padding),
        x,
        w,
    )


@pytest.mark.parametrize(
    "size,k,stride,dilation,padding",
    _sweep(
        [(12, 3, 1, 1, 1), (12, 5, 1, 2, 4), (13, 3, 2, 1, 1), (9, 2, 1, 1, 1), (10, 3, 1, 1, 0)],
        keep=(1,),
    ),
)
def test_xla_kernel_conv_equals_lax(size, k, stride, dilation, padding):
    """Output (strided, dilated, "valid", and a 2x2 kernel whose output is already taller)."""
    x, w = _random((2, size, size, 3), 0), _random((k, k, 3, 4), 1)
    geometry = dict(stride=stride, dilation=dilation, padding=padding)
    _assert_same(
        lambda x, w: conv_formulations.conv2d_xla_kernel(x, w, **geometry),
        lambda x, w: reference.conv2d_reference(x, w, **geometry),
        x,
        w,
    )


@pytest.mark.parametrize("k,dilation", _sweep([(3, 1), (3, 4), (5, 1)], keep=(1,)))
def test_xla_kernel_input_grad_equals_lax(k, dilation):
    """The plan's input gradient: the flipped-kernel convolution, by XLA's own kernel."""
    padding = (k // 2) * dilation
    plan = conv_plan.ConvPlan(1, dilation, padding, "xla_kernel", "xla_kernel", "lax")
    x, w = _random((2, 14, 11, 5), 0), _random((k, k, 5, 6), 1)
    _assert_same(
        lambda x, w: planned_conv.conv2d_planned(x, w, plan),
        lambda x, w: reference.conv2d_reference(x, w, dilation=dilation, padding=padding),
        x,
        w,
    )


@pytest.mark.parametrize(
    "height,width,k,dilation,padding",
    _sweep(
        [
            (8, 8, 3, 1, 1),
            (8, 12, 3, 2, 2),
            (16, 16, 3, 4, 4),
            (16, 16, 3, 8, 8),
            (7, 9, 3, 1, 1),
            (10, 6, 3, 2, 2),
            (9, 9, 3, 1, 0),
            (8, 8, 2, 1, 1),  # the sub-pixel form's 2x2 convolution: output one taller
            (7, 10, 2, 1, 1),
            (9, 9, 2, 1, 0),  # its transpose
        ],
        keep=(1, 9),
    ),
)
def test_winograd_conv_equals_lax(height, width, k, dilation, padding):
    """Output and both gradients; rectangular maps, dilations, sides that do not tile."""
    plan = conv_plan.ConvPlan(1, dilation, padding, "winograd", "winograd", "winograd")
    x, w = _random((2, height, width, 5), 0), _random((k, k, 5, 6), 1)
    _assert_same(
        lambda x, w: planned_conv.conv2d_planned(x, w, plan),
        lambda x, w: reference.conv2d_reference(x, w, dilation=dilation, padding=padding),
        x,
        w,
    )


def test_winograd_at_the_network_width_and_in_bfloat16():
    """256 channels (the sums the transforms reorder are longest); bfloat16 stays
    about as close to float32 as lax's own bfloat16 convolution."""
    x, w = _random((2, 16, 16, 256), 0), _random((3, 3, 256, 256), 1) / 48.0
    _assert_same(
        lambda x, w: winograd.conv2d_winograd(x, w, dilation=2, padding=2),
        lambda x, w: reference.conv2d_reference(x, w, dilation=2, padding=2),
        x,
        w,
    )
    exact = reference.conv2d_reference(x, w, padding=1)
    bf16 = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
    scale = float(jnp.max(jnp.abs(exact)))
    lax_err = float(jnp.max(jnp.abs(reference.conv2d_reference(*bf16, padding=1) - exact))) / scale
    wino = winograd.conv2d_winograd(*bf16, padding=1)
    assert wino.dtype == jnp.bfloat16
    wino_err = float(jnp.max(jnp.abs(wino - exact))) / scale
    assert wino_err < 3e-2 and wino_err <= 3 * lax_err


def test_winograd_weight_grad_at_the_network_width_and_in_bfloat16():
    """256 channels summed over every block of a 16x16 map; bfloat16 inputs sum
    in float32 and stay about as close as lax's own bfloat16 weight gradient."""
    x, dy = _random((2, 16, 16, 256), 0), _random((2, 16, 16, 256), 1)
    w = jnp.zeros((3, 3, 256, 256))

    def lax_grad(x, dy):
        conv = functools.partial(reference.conv2d_reference, dilation=2, padding=2)
        return jax.vjp(lambda w: conv(x, w), w.astype(x.dtype))[1](dy)[0].astype(jnp.float32)

    exact = lax_grad(x, dy)
    wino = winograd.weight_grad_winograd(x, dy, kernel_size=3, dilation=2, padding=2)
    np.testing.assert_allclose(wino, exact, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(exact))))
    bf16 = x.astype(jnp.bfloat16), dy.astype(jnp.bfloat16)
    scale = float(jnp.max(jnp.abs(exact)))
    lax_err = float(jnp.max(jnp.abs(lax_grad(*bf16) - exact))) / scale
    wino = winograd.weight_grad_winograd(*bf16, kernel_size=3, dilation=2, padding=2)
    assert wino.dtype == jnp.float32
    wino_err = float(jnp.max(jnp.abs(wino - exact))) / scale
    assert wino_err < 3e-2 and wino_err <= 3 * lax_err


@pytest.mark.parametrize("k,dilation,padding", [(3, 1, 1), (3, 2, 2), (2, 1, 0)])
def test_winograd_transposed_kernel_is_the_flipped_swapped_kernel(k, dilation, padding):
    x, w = _random((2, 9, 8, 6), 0), _random((k, k, 5, 6), 1)
    flipped = jnp.flip(w, (0, 1)).swapaxes(2, 3)
    np.testing.assert_allclose(
        winograd.conv2d_winograd(x, w, dilation=dilation, padding=padding, transpose_kernel=True),
        reference.conv2d_reference(x, flipped, dilation=dilation, padding=padding),
        atol=1e-5,
    )


def test_winograd_rejects_what_it_does_not_compute():
    x = _random((1, 8, 8, 2), 0)
    with pytest.raises(ValueError, match="3x3 and 2x2 kernels"):
        winograd.conv2d_winograd(x, _random((5, 5, 2, 2), 1), padding=2)


def test_xla_kernel_conv_leaves_ynnpack():
    """The mechanism the plan relies on, with the pinned jax: XLA:CPU gives YNNPACK a
    plain convolution but not one whose output is taller than its input."""
    if jax.default_backend() != "cpu":
        pytest.skip("a choice of XLA:CPU kernels")
    x, w = _random((2, 16, 16, 32), 0), _random((3, 3, 32, 32), 1)

    def library_calls(fn):  # instructions only: the text also names this test's frames
        return len(re.findall(r"%ynn_fusion\S* = ", jax.jit(fn).lower(x, w).compile().as_text()))

    assert library_calls(lambda x, w: reference.conv2d_reference(x, w, padding=1)) == 1
    assert library_calls(lambda x, w: conv_formulations.conv2d_xla_kernel(x, w, padding=1)) == 0


def test_conv2d_plans_follow_measurements():
    def parts(plan):
        return plan.forward, plan.input_grad, plan.weight_grad

    assert parts(conv_plan.plan_conv((3, 3, 256, 256), 16, 1, 4)) == ("winograd",) * 3
    assert parts(conv_plan.plan_conv((3, 3, 256, 256), 64, 1, 8)) == ("winograd",) * 3
    assert parts(conv_plan.plan_conv((3, 3, 128, 128), 32)) == ("winograd",) * 3
    assert parts(conv_plan.plan_conv((3, 3, 256, 256), 12, 1, 4))[:2] == ("lax", "lax")  # 12 % 8
    assert parts(conv_plan.plan_conv((3, 3, 64, 128), 32))[:2] == ("lax", "lax")  # 64 channels in
    assert parts(conv_plan.plan_conv((3, 3, 32, 3), 256)) == ("lax", "lax", "output_taps")
    assert parts(conv_plan.plan_conv((3, 3, 256, 256), 16, 1, 16)) == ("valid_taps",) * 3
    assert parts(conv_plan.plan_conv((3, 3, 256, 256), 16, 1, 8)) == ("valid_taps",) * 3
    assert parts(conv_plan.plan_conv((3, 3, 256, 256), 64, 1, 16)) == ("winograd",) * 3
    assert parts(conv_plan.plan_conv((5, 5, 256, 512), 8, 2)) == ("im2col",) * 3
    assert parts(conv_plan.plan_conv((3, 3, 128, 256), 128, 2)) == ("lax", "im2col", "taps")
    assert parts(conv_plan.plan_conv((5, 5, 64, 128), 128, 2)) == ("lax", "im2col", "banded")
    assert parts(conv_plan.plan_conv((2, 2, 128, 256), 64, padding=1)) == ("winograd",) * 3
    assert parts(conv_plan.plan_conv((2, 2, 64, 256), 64, padding=1)) == ("lax", "im2col", "taps")
    assert parts(conv_plan.plan_conv((3, 3, 64, 32), 64)) == ("xla_kernel", "xla_kernel", "lax")
    assert parts(conv_plan.plan_conv((3, 3, 64, 32), 256)) == ("lax", "xla_kernel", "banded")
    assert parts(conv_plan.plan_conv((3, 3, 64, 64), 64))[:2] == ("lax", "lax")  # wider: YNNPACK
    # Each optimisation can be switched off on its own, to measure it.
    assert parts(conv_plan.plan_conv((3, 3, 256, 256), 16, 1, 16, valid_taps=False))[0] == "lax"
    assert parts(conv_plan.plan_conv((3, 3, 32, 3), 256, output_taps=False)) == ("lax",) * 3
    unbanded = conv_plan.plan_conv((3, 3, 128, 64), 128, bands=False)
    assert parts(unbanded) == ("lax", "lax", "lax")
    assert conv_plan.plan_conv((3, 3, 128, 64), 128).weight_grad == "banded"
    no_winograd = conv_plan.plan_conv((3, 3, 256, 256), 64, winograd=False)
    assert parts(no_winograd) == ("lax", "lax", "banded")
    no_winograd = conv_plan.plan_conv((2, 2, 128, 256), 64, padding=1, winograd=False)
    assert parts(no_winograd) == ("lax", "im2col", "taps")
    assert parts(conv_plan.plan_conv((3, 3, 64, 32), 64, xla_kernels=False)) == ("lax",) * 3
    wide = conv_plan.plan_conv((3, 3, 64, 32), 256)  # few channels: bigger bands
    assert wide.band_pixels > conv_plan.plan_conv((3, 3, 256, 256), 64).band_pixels


@pytest.mark.parametrize(
    "size,k,stride,dilation,band_pixels",
    _sweep([(12, 3, 1, 1, 20), (12, 3, 1, 2, 30), (13, 5, 2, 1, 7), (9, 3, 2, 1, 1000)], keep=(2,)),
)
def test_banded_weight_grad_equals_lax(size, k, stride, dilation, band_pixels):
    """Bands of a few rows, a ragged last band, strides and dilations, one band per sample."""
    padding = (k // 2) * dilation
    plan = conv_plan.ConvPlan(
        stride, dilation, padding, weight_grad="banded", band_pixels=band_pixels
    )
    x, w = _random((3, size, size, 4), 0), _random((k, k, 4, 5), 1)
    _assert_same(
        lambda x, w: planned_conv.conv2d_planned(x, w, plan),
        lambda x, w: reference.conv2d_reference(
            x, w, stride=stride, dilation=dilation, padding=padding
        ),
        x,
        w,
    )


def test_conv2d_under_jit_and_grad_matches_lax_for_each_plan():
    """The dispatching conv2d itself, for shapes that take each branch."""
    for size, k, stride in [(8, 5, 2), (40, 3, 2), (40, 5, 2), (16, 3, 1)]:
        x, w = _random((2, size, size, 3), 0), _random((k, k, 3, 4), 1)
        _assert_same(
            lambda x, w: planned_conv.conv2d(
                x, w, planner=conv_plan.plan_conv, stride=stride, padding=k // 2
            ),
            lambda x, w: reference.conv2d_reference(x, w, stride=stride, padding=k // 2),
            x,
            w,
        )


def test_folded_batch_norm_equals_two_pass():
    x = _random((4, 6, 6, 5), 3) * 3.0 + 100.0  # a large mean is where one-pass sums fail
    scale, bias = _random((5,), 4), _random((5,), 5)

    def two_pass(x, scale):
        return batch_norm.batch_norm_two_pass(x, scale, bias, 1e-5)[0]

    def folded(x, scale):
        return batch_norm.batch_norm_folded(x, scale, bias, 1e-5)[0]

    _assert_same(folded, two_pass, x, scale)
    _, mean, var = batch_norm.batch_norm_folded(x, scale, bias, 1e-5)
    np.testing.assert_allclose(mean, jnp.mean(x, axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(var, jnp.var(x, axis=(0, 1, 2)), rtol=1e-4)


def _jaxpr(fn, *args) -> str:
    return str(jax.make_jaxpr(fn)(*args))


def _traced(module, x, **kwargs) -> str:
    """The jaxpr of an NNX layer applied to x (its parameters as inputs)."""
    graphdef, state = nnx.split(module)
    return _jaxpr(lambda state, x: nnx.merge(graphdef, state)(x, **kwargs), state, x)


def test_formulations_default_by_backend_and_reject_unknown_names():
    assert default_formulations("cpu") == Formulations(
        conv=conv_plan.plan_conv, transposed="subpixel", batch_norm="folded"
    )
    assert default_formulations("cpu") == CPU_FORMULATIONS
    for backend in ("gpu", "tpu"):
        assert default_formulations(backend) == Formulations(
            conv=conv_plan.lax_plan, transposed="lax", batch_norm="two_pass"
        )
    assert default_formulations() == default_formulations(jax.default_backend())
    with pytest.raises(ValueError, match="unknown formulation transposed='fft'"):
        Formulations(conv=conv_plan.plan_conv, transposed="fft", batch_norm="folded")
    with pytest.raises(ValueError, match="unknown formulation batch_norm='one_pass'"):
        Formulations(conv=conv_plan.plan_conv, transposed="lax", batch_norm="one_pass")
    with pytest.raises(ValueError, match="not a convolution planner"):
        Formulations(conv="planned", transposed="lax", batch_norm="two_pass")
    # The plain planner keeps lax for every part of every layer.
    for shape, size, stride, dilation in [((3, 3, 256, 256), 16, 1, 16), ((5, 5, 3, 64), 64, 2, 1)]:
        plain = conv_plan.lax_plan(shape, size, stride, dilation)
        assert (plain.forward, plain.input_grad, plain.weight_grad) == ("lax",) * 3


def test_layers_trace_the_formulations_they_are_given_over_the_default():
    """On the CPU: a layer built with the plain formulations traces plain lax, one built
    without traces the CPU's rewrites (a planned convolution is a custom VJP)."""
    if jax.default_backend() != "cpu":
        pytest.skip("compares against the CPU's default")
    x = jnp.ones((1, 8, 8, 4))
    rngs = nnx.Rngs(0)
    plain = _traced(layers.Conv(4, 4, 3, stride=2, formulations=PLAIN_FORMULATIONS, rngs=rngs), x)
    assert "conv_general_dilated" in plain and "custom_vjp" not in plain
    assert "custom_vjp" in _traced(layers.Conv(4, 4, 3, stride=2, rngs=rngs), x)
    lax_transposed = layers.ConvTranspose4x4(4, 4, formulations=PLAIN_FORMULATIONS, rngs=rngs)
    assert "lhs_dilation=(2, 2)" in _traced(lax_transposed, x)
    assert "lhs_dilation=(2, 2)" not in _traced(layers.ConvTranspose4x4(4, 4, rngs=rngs), x)
    # Both stop the gradient into the two running statistics; the folded form also
    # at the sample per channel that it subtracts as its shift.
    two_pass = layers.BatchNorm(4, formulations=PLAIN_FORMULATIONS)
    assert _traced(two_pass, x, train=True).count("stop_gradient") == 2
    assert _traced(layers.BatchNorm(4), x, train=True).count("stop_gradient") == 3


def test_other_backends_trace_the_plain_operations(monkeypatch):
    x = jnp.ones((1, 8, 8, 4))
    rngs = nnx.Rngs(0)
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert default_formulations() == PLAIN_FORMULATIONS
    # The default is decided when a layer is traced, not when it is built.
    conv = layers.Conv(4, 4, 3, stride=2, rngs=rngs)
    jaxpr = _traced(conv, x)
    assert "conv_general_dilated" in jaxpr and "custom_vjp" not in jaxpr
    assert "lhs_dilation=(2, 2)" in _traced(layers.ConvTranspose4x4(4, 4, rngs=rngs), x)
    explicit = layers.Conv(4, 4, 3, stride=2, formulations=CPU_FORMULATIONS, rngs=rngs)
    assert "custom_vjp" in _traced(explicit, x)


def test_banded_weight_grad_in_bfloat16_sums_pieces_in_float32():
    """Mixed precision: 12 bfloat16 pieces summed stay as close to float32 as one lax call."""
    plan = conv_plan.ConvPlan(1, 1, 1, weight_grad="banded", band_pixels=16)
    x, w = _random((3, 16, 16, 8), 0), _random((3, 3, 8, 8), 1)
    dy = _random((3, 16, 16, 8), 2)

    def weight_grad(fn, dtype):
        _, vjp = jax.vjp(lambda w: fn(x.astype(dtype), w.astype(dtype)), w)
        return vjp(dy.astype(dtype))[0].astype(jnp.float32)

    exact = weight_grad(lambda x, w: reference.conv2d_reference(x, w, padding=1), jnp.float32)
    lax_bf16 = weight_grad(lambda x, w: reference.conv2d_reference(x, w, padding=1), jnp.bfloat16)
    banded_bf16 = weight_grad(lambda x, w: planned_conv.conv2d_planned(x, w, plan), jnp.bfloat16)
    scale = float(jnp.max(jnp.abs(exact)))
    assert banded_bf16.dtype == jnp.float32
    banded_err = float(jnp.max(jnp.abs(banded_bf16 - exact))) / scale
    lax_err = float(jnp.max(jnp.abs(lax_bf16 - exact))) / scale
    assert banded_err < 2e-2 and banded_err <= 2 * lax_err + 1e-3

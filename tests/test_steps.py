"""Each training phase's pure step lowers its own loss on a fixed batch."""

import functools
import re

import jax
import numpy as np
import pytest

from glcic_jax import config_upgrade
from glcic_jax.dataset import folders
from glcic_jax.nets import formulations, hole_filling
from glcic_jax.training import configs, steps


@pytest.fixture(scope="module")
def fixed_batch(faces_dir):
    files = folders.list_images(faces_dir, "train")[:8]
    return np.stack([folders.load_image(f, 32) for f in files])


@pytest.fixture(scope="module")
def setup():
    config = configs.get_config("tiny")
    config.batch_size = 8
    nets = steps.build_networks(config)
    return config, nets, steps.jit_steps(nets)


def _run(setup, batch, phase, n, mean_pixel):
    config, nets, jitted = setup
    state = steps.init_state(config, nets, mean_pixel)
    history = []
    for _ in range(n):
        state, metrics = jitted[phase](state, batch)
        history.append(jax.device_get(metrics))
    return state, history


def test_completion_step_lowers_mse(setup, fixed_batch):
    mean_pixel = fixed_batch.reshape(-1, 3).mean(0) / 255
    _, h = _run(setup, fixed_batch, 1, 30, mean_pixel)
    first, last = np.mean([m["g_mse"] for m in h[:3]]), np.mean([m["g_mse"] for m in h[-3:]])
    assert last < 0.7 * first, (first, last)


def test_discriminator_step_lowers_its_loss_and_leaves_g_alone(setup, fixed_batch):
    config, nets, _ = setup
    mean_pixel = fixed_batch.reshape(-1, 3).mean(0) / 255
    before = steps.init_state(config, nets, mean_pixel)
    state, h = _run(setup, fixed_batch, 2, 30, mean_pixel)
    first, last = np.mean([m["d_loss"] for m in h[:3]]), np.mean([m["d_loss"] for m in h[-3:]])
    assert last < 0.8 * first, (first, last)
    for a, b in zip(jax.tree_util.tree_leaves(before.gen), jax.tree_util.tree_leaves(state.gen)):
        np.testing.assert_array_equal(a, b)


def test_joint_step_trains_both(setup, fixed_batch):
    mean_pixel = fixed_batch.reshape(-1, 3).mean(0) / 255
    state, h = _run(setup, fixed_batch, 3, 30, mean_pixel)
    assert int(state.step) == 30
    for key in ("g_mse", "d_loss"):
        first, last = np.mean([m[key] for m in h[:3]]), np.mean([m[key] for m in h[-3:]])
        assert last < 0.8 * first, (key, first, last)
    assert all(np.isfinite(m["g_adv"]) for m in h)


def test_phase_schedule():
    config = configs.get_config("tiny")  # Tc=10, Td=5
    assert [configs.phase_of(s, config) for s in (0, 9, 10, 14, 15, 39)] == [1, 1, 2, 2, 3, 3]


def test_inference_compiles_small_images_with_other_conv_kernels_same_result(setup):
    """Up to 128 px, CPU inference uses XLA's own convolutions (faster there); same output."""
    if jax.default_backend() != "cpu":
        pytest.skip("a choice of XLA:CPU kernels")
    assert formulations.inference_compiler_options(64) and formulations.inference_compiler_options(
        128
    )
    assert formulations.inference_compiler_options(256) == {}
    config, nets, _ = setup
    state = steps.init_state(config, nets, np.full(3, 0.5))
    rng = np.random.default_rng(0)
    size = config.image_size
    images = rng.uniform(size=(2, size, size, 3)).astype(np.float32)
    hole = np.zeros((2, size, size, 1), np.float32)
    hole[:, size // 2 :, size // 4 : 3 * size // 4] = 1
    weights = (state.gen, state.gen_stats, state.mean_pixel)
    chosen = hole_filling.jit_complete(nets.gen_def, nets.compute_dtype, size)
    plain = jax.jit(functools.partial(hole_filling.complete, nets.gen_def, nets.compute_dtype))

    def library_calls(fn):  # instructions only: the text also names this test's frames
        text = fn.lower(*weights, images, hole).compile().as_text()
        return len(re.findall(r"%ynn_fusion\S* = ", text))

    assert library_calls(chosen) < library_calls(plain)  # the convolutions left YNNPACK
    chosen, plain = chosen(*weights, images, hole), plain(*weights, images, hole)
    np.testing.assert_allclose(chosen, plain, atol=1e-5)
    assert not np.allclose(
        chosen[hole[..., 0] > 0], images[hole[..., 0] > 0]
    )  # the hole was filled


def test_local_patch_sets_the_local_discriminators_input():
    config = configs.get_config("tiny")  # 32px
    assert steps.build_networks(config).patch_size == 20  # 160 on the 256 canvas
    config.local_patch = 128
    nets = steps.build_networks(config)
    assert nets.patch_size == 16
    state = jax.eval_shape(lambda: steps.init_state(config, nets, np.full(3, 0.5)))
    batch = np.zeros((config.batch_size, 32, 32, 3), np.uint8)
    jax.eval_shape(functools.partial(steps.PHASE_STEPS[2], nets=nets), state, batch)  # patches fit
    saved = config.to_dict()
    del saved["local_patch"]  # a config saved before the field: the 160 it used
    assert steps.local_patch_size(config_upgrade.upgrade(saved)) == 20
    config.local_patch = 300
    with pytest.raises(configs.ConfigError, match="local_patch"):
        configs.validate(config)

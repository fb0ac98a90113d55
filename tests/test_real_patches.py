"""Where the local discriminator's real patches are cut: the fake ones' boxes, or anywhere."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glcic_jax import config_upgrade, holes
from glcic_jax.training import checkpoint, configs, steps


def _nets(real_patches: str, mask: str = "random"):
    config = configs.get_config("tiny")
    config.mask = mask
    config.real_patches = real_patches
    return config, steps.build_networks(config)


def _batch(config, nets, step: int = 7):
    """A state at `step` whose networks are one number (see Recording), and noise images."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (config.batch_size, config.image_size, config.image_size, 3))
    disc = {"w": jnp.zeros(())}
    state = steps.TrainState(
        step=jnp.int32(step), gen={}, gen_stats={}, disc=disc, disc_stats={}, gen_opt=(),
        disc_opt=nets.disc_tx.init(disc), mean_pixel=jnp.full(3, 0.5),
    )  # fmt: skip
    return state, images.astype(np.uint8)


def _discriminated_origins(nets, state, batch):
    """The patch origins each discriminator call of one phase-2 step saw, in call order.

    The networks are stood in for (identity completion, constant logits):
    the step's own wiring of holes to patches runs, in a second, not jitted.
    """
    seen = []

    class Recording(type(nets)):
        def generate(self, params, stats, x, *, train):
            return x[..., :3], stats  # the input has the mask as a 4th channel

        def discriminate(self, params, stats, images, origins, *, train):
            seen.append(np.asarray(origins))
            return jnp.zeros(images.shape[0]) + params["w"], stats

    recording = Recording(**{f.name: getattr(nets, f.name) for f in dataclasses.fields(nets)})
    steps.discriminator_step(state, batch, nets=recording)
    return seen


def test_hole_real_patches_are_cut_at_the_fake_patches_boxes():
    config, nets = _nets("hole")
    assert nets.real_patches == "hole" == configs.base_config().real_patches
    state, batch = _batch(config, nets)
    fake, real = _discriminated_origins(nets, state, batch)
    assert len(set(map(tuple, fake))) > 1  # random holes: the boxes differ per image
    np.testing.assert_array_equal(real, fake)


def test_uniform_real_patches_draw_what_the_code_before_drew():
    config, nets = _nets("uniform")
    state, batch = _batch(config, nets, step=7)
    fake, real = _discriminated_origins(nets, state, batch)
    # The stream before `real_patches`: (holes, real patches) split from (seed, step).
    step_rng = jax.random.fold_in(jax.random.fold_in(jax.random.key(config.seed), 0x9A7C), 7)
    hole_rng, real_rng = jax.random.split(step_rng)
    n, size = config.batch_size, config.image_size
    np.testing.assert_array_equal(
        real, holes.random_patch_origins(real_rng, n, size, nets.patch_size)
    )
    _, boxes = holes.sample_holes(hole_rng, config.mask, n, size)
    np.testing.assert_array_equal(fake, holes.hole_patch_origins(boxes, size, nets.patch_size))
    assert not np.array_equal(real, fake)


def test_the_holes_do_not_depend_on_real_patches():
    config, nets = _nets("hole")
    state, batch = _batch(config, nets)
    uniform = dataclasses.replace(nets, real_patches="uniform")
    for a, b in zip(
        steps._draw(state, nets, batch, None), steps._draw(state, uniform, batch, None)
    ):
        if a.dtype != np.int32:  # all but the real origins
            np.testing.assert_array_equal(a, b)


def test_a_checkpoint_from_before_the_field_resumes_as_uniform_only():
    config = configs.get_config("tiny")
    saved = config.to_dict()
    del saved["real_patches"]  # written before the field existed
    config.real_patches = "uniform"
    checkpoint.check_compatible(saved, config)
    config.real_patches = "hole"
    with pytest.raises(
        checkpoint.ConfigMismatch, match="real_patches='uniform' in the checkpoint but 'hole' now"
    ):
        checkpoint.check_compatible(saved, config)
    assert steps.build_networks(config_upgrade.upgrade(saved)).real_patches == "uniform"
    # Other trainers' fields and defaults are theirs: no legacy value is mixed in.
    checkpoint.check_compatible({}, {"depth": 3}, fields=("depth",), defaults={"depth": 3})


def test_resuming_under_the_other_value_is_refused():
    config = configs.get_config("tiny")
    saved = config.to_dict()  # real_patches="hole"
    config.real_patches = "uniform"
    with pytest.raises(checkpoint.ConfigMismatch, match="real_patches='hole'"):
        checkpoint.check_compatible(saved, config)


def test_validate_rejects_an_unknown_value():
    config = configs.get_config("tiny")
    configs.validate(config)
    config.real_patches = "centre"
    with pytest.raises(configs.ConfigError, match="real_patches must be one of hole, uniform"):
        configs.validate(config)

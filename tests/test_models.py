"""The networks have the paper's shapes and parameter counts, at any width and size."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from glcic_jax import holes
from glcic_jax.nets import factory, models
from glcic_jax.nets.models import num_params
from glcic_jax.training import configs, steps


def _paper_completion_params(w=64):
    """Table 1 by hand: conv weights (no bias: BatchNorm follows) + BN scale/shift, + last conv."""
    layers = [  # (kernel, cin, cout)
        (5, 4, w), (3, w, 2 * w), (3, 2 * w, 2 * w), (3, 2 * w, 4 * w), (3, 4 * w, 4 * w),
        (3, 4 * w, 4 * w), (3, 4 * w, 4 * w), (3, 4 * w, 4 * w), (3, 4 * w, 4 * w),
        (3, 4 * w, 4 * w), (3, 4 * w, 4 * w), (3, 4 * w, 4 * w), (4, 4 * w, 2 * w),
        (3, 2 * w, 2 * w), (4, 2 * w, w), (3, w, w // 2),
    ]  # fmt: skip
    n = sum(k * k * cin * cout + 2 * cout for k, cin, cout in layers)
    return n + 3 * 3 * (w // 2) * 3 + 3


def _paper_discriminator_params(image=256, patch=160, w=64):
    def branch(size, channels):
        n, cin = 0, 3
        for cout in channels:
            n += 25 * cin * cout + 2 * cout
            cin, size = cout, (size + 1) // 2
        return n + size * size * cin * 1024 + 1024

    widths = [w, 2 * w, 4 * w, 8 * w, 8 * w, 8 * w]
    return branch(image, widths) + branch(patch, widths[:5]) + 2048 + 1


def test_paper_size_networks_match_the_tables():
    config = configs.get_config("paper")
    nets = steps.build_networks(config)
    state = jax.eval_shape(lambda: steps.init_state(config, nets, np.zeros(3)))
    assert num_params(state.gen) == _paper_completion_params()
    assert num_params(state.disc) == _paper_discriminator_params()
    _, gen_alone, stats_alone = factory.abstract_completion_network(config)  # completion's
    assert jax.tree.structure(gen_alone) == jax.tree.structure(state.gen)
    assert jax.tree.structure(stats_alone) == jax.tree.structure(state.gen_stats)
    images = jax.ShapeDtypeStruct((2, 256, 256, 3), jnp.float32)
    inputs = jax.ShapeDtypeStruct((2, 256, 256, 4), jnp.float32)
    origins = jax.ShapeDtypeStruct((2, 2), jnp.int32)
    out, _ = jax.eval_shape(
        lambda s, x: nets.generate(s.gen, s.gen_stats, x, train=False), state, inputs
    )
    assert out.shape == (2, 256, 256, 3)
    logits, _ = jax.eval_shape(
        lambda s, x, o: nets.discriminate(s.disc, s.disc_stats, x, o, train=False),
        state, images, origins,
    )  # fmt: skip
    assert logits.shape == (2,)


@pytest.mark.parametrize(
    "size,depth", [(256, 6), (160, 5), (128, 5), (64, 4), (40, 3), (32, 3), (20, 2)]
)
def test_discriminator_depth_follows_input_size(size, depth):
    assert models.discriminator_depth(size) == depth


def test_small_config_runs_forward_in_range():
    config = configs.get_config("tiny")
    gen = models.CompletionNetwork(config.width, rngs=nnx.Rngs(0))
    disc = models.ContextDiscriminator(32, holes.patch_size(32), config.d_width, rngs=nnx.Rngs(0))

    @nnx.jit  # one compiled call instead of op-by-op dispatch
    def forward(gen, disc, x):
        y = gen(x, train=True)
        return y, disc(y, y[:, :20, :20], train=False)

    y, logits = forward(gen, disc, jax.random.uniform(jax.random.key(0), (2, 32, 32, 4)))
    assert y.shape == (2, 32, 32, 3) and logits.shape == (2,)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_completion_network_alone_starts_from_the_training_states_weights():
    """The factory draws the completion network first, so a seed gives it the same weights alone."""
    config = configs.get_config("tiny")
    config.seed = 3
    nets = steps.build_networks(config)
    state = steps.init_state(config, nets, np.zeros(3))
    gen = factory.completion_network(config, nnx.Rngs(config.seed))
    _, params, stats = nnx.split(gen, nnx.Param, nnx.BatchStat)
    for alone, trained in ((params, state.gen), (stats, state.gen_stats)):
        assert jax.tree.structure(alone) == jax.tree.structure(trained)
        for a, b in zip(jax.tree.leaves(alone), jax.tree.leaves(trained)):
            np.testing.assert_array_equal(a, b)
    disc = factory.discriminators(config, holes.patch_size(32), nnx.Rngs(0))
    assert num_params(nnx.state(disc, nnx.Param)) == num_params(state.disc)

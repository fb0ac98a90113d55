"""Completion reads a model from any source without the training code, and reads it exactly."""

import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import nnx

from glcic_jax import runs
from glcic_jax.completion import inference, model_io
from glcic_jax.nets import factory

REPO = pathlib.Path(__file__).resolve().parents[1]

# Loads a training run and a model file exported from it, completes an image
# with each, then lists the training modules that got imported.
_NO_TRAINING_SCRIPT = """
import sys
import numpy as np
from glcic_jax.completion import inference, model_io

run, path = sys.argv[1], sys.argv[2]
model_io.export_checkpoint(run, 10, path)
assert inference.run_steps(run) == [5, 10] and inference.load_config(run).mask == "mouth"
images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), np.uint8)
for completer in (inference.Completer.load(run), inference.Completer.load(path)):
    holes = completer.regime_holes(2)
    assert np.isfinite(completer.complete(images, holes)).all()
print([m for m in sys.modules if m == "glcic_jax.training" or m.startswith("glcic_jax.training.")])
"""


def _assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_completion_never_imports_training(tiny_runs, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [
        sys.executable,
        "-c",
        _NO_TRAINING_SCRIPT,
        str(tiny_runs["mouth"]),
        str(tmp_path / "m.npz"),
    ]
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_run_weights_equal_the_training_states(tiny_runs):
    """The partial read gives exactly the full state's completion network, mean pixel and output."""
    from glcic_jax.nets import hole_filling
    from glcic_jax.training import checkpoint, steps

    run = tiny_runs["mouth"]
    config, gen, gen_stats, mean_pixel, step = model_io.read_run_weights(run, 5)
    assert step == 5
    nets = steps.build_networks(config)
    abstract = jax.eval_shape(lambda: steps.init_state(config, nets, np.zeros(3)))
    ckpts = checkpoint.Checkpoints(run, read_only=True)
    try:
        state = ckpts.restore(checkpoint.abstract_like(abstract), 5)
    finally:
        ckpts.close()
    _assert_trees_equal(gen, state.gen)
    _assert_trees_equal(gen_stats, state.gen_stats)
    _assert_trees_equal(mean_pixel, state.mean_pixel)

    completer = inference.Completer.load(run, 5)
    images = np.random.default_rng(1).uniform(size=(3, 32, 32, 3)).astype(np.float32)
    holes = completer.regime_holes(3)
    training_samples = hole_filling.jit_complete(
        nets.gen_def, nets.compute_dtype, config.image_size
    )(state.gen, state.gen_stats, state.mean_pixel, images, inference.as_hole_masks(holes, 3, 32))
    np.testing.assert_array_equal(completer.complete(images, holes), np.asarray(training_samples))


def test_resolve_tells_the_three_kinds_apart(tiny_runs, tmp_path):
    run, folder = tiny_runs["random"], tmp_path / "models"
    for step in (5, 10):
        model_io.export_checkpoint(run, step, folder / model_io.step_file_name(step))
    latest = model_io.resolve(run)
    assert (latest.kind, latest.path, latest.step, latest.steps) == (model_io.RUN, run, 10, (5, 10))
    assert latest.config.mask == "random"
    assert model_io.resolve(run, 5).step == 5
    in_folder = model_io.resolve(folder, 5)
    assert (in_folder.kind, in_folder.step, in_folder.steps) == (model_io.MODEL_FOLDER, 5, (5, 10))
    assert in_folder.path == folder / model_io.step_file_name(5)
    one_file = model_io.resolve(in_folder.path)
    assert (one_file.kind, one_file.step, one_file.steps) == (model_io.MODEL_FILE, 5, (5,))
    assert one_file.config.to_dict() == latest.config.to_dict()
    with pytest.raises(runs.CheckpointError, match="no checkpoint at step 7"):
        model_io.resolve(run, 7)


def _fresh_model_file(path, step: int):
    """A model file of untrained tiny weights: a source without any training."""
    config = {"image_size": 32, "width": 8, "d_width": 8, "bn_momentum": 0.9}
    config.update(compute_dtype="float32", mask="mouth", seed=0)
    gen = factory.completion_network(config, nnx.Rngs(0))
    _, params, stats = nnx.split(gen, nnx.Param, nnx.BatchStat)
    model_io.save(path, config, params, stats, np.full(3, 0.5), step)


def test_sources_that_hold_no_such_model_raise_one_line_errors(tmp_path):
    with pytest.raises(runs.CheckpointError, match="run folder .* does not exist"):
        inference.run_steps(tmp_path / "nope")
    with pytest.raises(runs.CheckpointError, match="no checkpoints in"):
        inference.Completer.load(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(runs.CheckpointError, match=f"no checkpoints in {tmp_path}$"):
        inference.load_config(tmp_path)
    with pytest.raises(model_io.ModelFileError, match="model file .* does not exist"):
        inference.Completer.load(tmp_path / "none.npz")

    folder = tmp_path / "models"
    _fresh_model_file(folder / model_io.step_file_name(3), 3)
    assert inference.run_steps(folder) == [3]
    assert inference.Completer.load(folder).step == 3
    with pytest.raises(runs.CheckpointError, match=r"no model file for step 4 in .*: have \[3\]"):
        inference.load_config(folder, 4)
    with pytest.raises(runs.CheckpointError, match="holds step 3, not 4"):
        inference.Completer.load(folder / model_io.step_file_name(3), 4)

"""Model files: exact float32 round trip, bfloat16 storage, and loading a run three ways."""

import numpy as np
import pytest

from glcic_jax import runs
from glcic_jax.completion import inference, model_io


def _leaves_max_diff(a, b) -> float:
    import jax

    return max(
        jax.tree.leaves(jax.tree.map(lambda x, y: float(np.abs(np.asarray(x) - y).max()), a, b))
    )


def test_float32_model_file_reproduces_the_checkpoint(tiny_runs, tmp_path, faces_dir):
    run = tiny_runs["mouth"]
    path = tmp_path / "m.npz"
    model_io.export_checkpoint(run, 10, path)
    from_ckpt = inference.Completer.from_workdir(run, 10)
    from_file = inference.Completer.load(path)
    assert from_file.step == 10 and from_file.config.mask == "mouth"
    assert _leaves_max_diff(from_ckpt._weights[0], from_file._weights[0]) == 0.0
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), np.uint8)
    holes = np.asarray(from_file.regime_holes(3))
    np.testing.assert_array_equal(
        from_ckpt.complete(images, holes), from_file.complete(images, holes)
    )


def test_bfloat16_storage_halves_the_weights_and_rounds_them(tiny_runs, tmp_path):
    run = tiny_runs["mouth"]
    full = model_io.export_checkpoint(run, 10, tmp_path / "f32.npz")
    half = model_io.export_checkpoint(run, 10, tmp_path / "bf16.npz", storage="bfloat16")
    assert half < 0.6 * full
    _, g32, s32, _, _ = model_io.load(tmp_path / "f32.npz")
    _, g16, s16, _, _ = model_io.load(tmp_path / "bf16.npz")
    assert 0 < _leaves_max_diff(g32, g16) < 0.01  # bfloat16 keeps 8 bits of mantissa
    assert _leaves_max_diff(s32, s16) == 0.0  # statistics stay float32


def test_model_folder_lists_and_loads_steps(tiny_runs, tmp_path):
    folder = tmp_path / "models"
    for step in (5, 10):
        model_io.export_checkpoint(
            tiny_runs["random"], step, folder / model_io.step_file_name(step)
        )
    assert inference.run_steps(folder) == [5, 10]
    assert inference.run_steps(folder / model_io.step_file_name(5)) == [5]
    assert inference.Completer.load(folder).step == 10
    assert inference.Completer.load(folder, 5).step == 5
    assert inference.load_config(folder).mask == "random"
    with pytest.raises(runs.CheckpointError, match="no model file for step 7"):
        inference.Completer.load(folder, 7)


def test_broken_and_foreign_files_raise_one_line_errors(tmp_path):
    with pytest.raises(model_io.ModelFileError, match="does not exist"):
        model_io.load(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(model_io.ModelFileError, match="not a readable model file"):
        model_io.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(model_io.ModelFileError, match="not a readable model file"):
        model_io.load(tmp_path / "other.npz")

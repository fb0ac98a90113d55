"""What a damaged checkpoint, a half-written log or a bad flag does to a run: never a traceback."""

import json
import os
import pathlib
import shutil
import subprocess
import sys
from unittest import mock

import jax
import numpy as np
import pytest

from glcic_jax.training import checkpoint, configs, data, steps, train, writer

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _largest_array_file(step_dir: pathlib.Path) -> pathlib.Path:
    return max((step_dir / "state").rglob("ocdbt.process_0/d/*"), key=lambda p: p.stat().st_size)


def _truncate(step_dir):
    path = _largest_array_file(step_dir)
    os.truncate(path, path.stat().st_size // 2)


def _overwrite_eight_bytes(step_dir):
    path = _largest_array_file(step_dir)
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)
        f.write(b"\xa5" * 8)


def _empty(step_dir):
    for child in step_dir.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


DAMAGE = {
    "truncated data file": _truncate,
    "deleted data file": lambda d: _largest_array_file(d).unlink(),
    "eight bytes overwritten": _overwrite_eight_bytes,
    "metadata missing": lambda d: shutil.rmtree(d / "meta"),
    "iterator state missing": lambda d: shutil.rmtree(d / "data"),
    "empty step folder": _empty,
}


def _restore_setup(workdir, config):
    record = json.loads((workdir / train.DATA_FILES).read_text())
    nets = steps.build_networks(config)
    mean_pixel = np.asarray(record["mean_pixel"], np.float32)
    abstract = jax.eval_shape(lambda: steps.init_state(config, nets, mean_pixel))

    def iterator():
        return data.training_batches(
            record["files"], size=config.image_size, batch_size=config.batch_size, seed=config.seed
        )

    return checkpoint.abstract_like(abstract), iterator


@pytest.fixture(scope="module")
def clean_step_5(tiny_runs, tiny_run_config):
    """The tiny mouth run's state and next batch at step 5, restored from its intact checkpoint."""
    config = tiny_run_config("mouth")
    abstract, iterator = _restore_setup(tiny_runs["mouth"], config)
    ckpts = checkpoint.Checkpoints(tiny_runs["mouth"], read_only=True)
    it = iterator()
    state = ckpts.restore(abstract, 5, it)
    ckpts.close()
    return jax.device_get(state), next(it)


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(
    damage, tiny_runs, tiny_run_config, clean_step_5, tmp_path, caplog
):
    config = tiny_run_config("mouth")
    workdir = tmp_path / "run"
    shutil.copytree(tiny_runs["mouth"], workdir)
    DAMAGE[damage](checkpoint.checkpoint_dir(workdir) / "10")
    abstract, iterator = _restore_setup(workdir, config)
    ckpts = checkpoint.Checkpoints(workdir)
    it = iterator()
    try:
        step, state, _ = ckpts.restore_latest_intact(abstract, it, config)
        assert ckpts.steps() == [5]  # the damaged one is set aside, out of Orbax's sight
    finally:
        ckpts.close()
    assert step == 5
    assert "checkpoint at step 10 is unusable" in caplog.text
    assert list(checkpoint.checkpoint_dir(workdir).glob("unusable-10-*"))
    want_state, want_batch = clean_step_5
    jax.tree_util.tree_map(np.testing.assert_array_equal, jax.device_get(state), want_state)
    np.testing.assert_array_equal(next(it), want_batch)  # the data stream resumes there too


def test_resume_past_a_corrupt_checkpoint_is_bit_identical(tiny_runs, tiny_run_config, tmp_path):
    """Eight flipped bytes are caught on restore; training again from step 5 gives step 10 exactly."""
    config = tiny_run_config("mouth")
    workdir = tmp_path / "run"
    shutil.copytree(tiny_runs["mouth"], workdir)
    _overwrite_eight_bytes(checkpoint.checkpoint_dir(workdir) / "10")
    assert train.train_and_evaluate(config, workdir, _faces(tiny_runs), resume=True) == 10
    abstract, _ = _restore_setup(workdir, config)
    states = []
    for run in (tiny_runs["mouth"], workdir):
        ckpts = checkpoint.Checkpoints(run, read_only=True)
        states.append(jax.device_get(ckpts.restore(abstract, 10)))
        ckpts.close()
    jax.tree_util.tree_map(np.testing.assert_array_equal, *states)
    logged = [json.loads(line)["step"] for line in (workdir / "metrics.jsonl").open()]
    assert logged == sorted(set(logged))  # each step once


def _faces(tiny_runs):
    return json.loads((tiny_runs["mouth"] / train.DATA_FILES).read_text())["data_dir"]


def test_a_half_written_log_line_is_dropped_on_resume(tmp_path):
    log = tmp_path / writer.METRICS_FILE
    log.write_text('{"step": 2, "g_mse": 0.1}\n{"step": 4, "g_mse": 0.09}\n{"step": 6, "g_m')
    writer.prepare_log(tmp_path, resume_from=4)
    assert [json.loads(line)["step"] for line in log.open()] == [2, 4]
    writer.prepare_log(tmp_path, resume_from=2)
    assert [json.loads(line)["step"] for line in log.open()] == [2]


def test_a_fresh_start_does_not_append_to_an_abandoned_log(tmp_path):
    log = tmp_path / writer.METRICS_FILE
    log.write_text('{"step": 2, "g_mse": 0.1}\n')
    writer.prepare_log(tmp_path, resume_from=None)
    assert not log.exists()
    assert (tmp_path / writer.ABANDONED_METRICS_FILE).read_text() == '{"step": 2, "g_mse": 0.1}\n'


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("seed", -1, "seed must be an integer in 0..2147483647, not -1"),
        ("seed", 99999999999, "seed must be an integer in 0..2147483647"),
        ("decode_threads", -2, "decode_threads must be >= 1, not -2"),
        ("total_steps", 0, "total_steps must be >= 1, not 0"),
    ],
)
def test_bad_config_values_are_refused(field, value, message):
    config = configs.get_config("tiny")
    config[field] = value
    with pytest.raises(configs.ConfigError, match=message.replace(".", r"\.")):
        configs.validate(config)


def test_a_workdir_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "run"
    path.write_text("")
    with pytest.raises(configs.ConfigError, match="is a file, not a folder"):
        train.train_and_evaluate(configs.get_config("tiny"), path, tmp_path)


def test_a_read_only_workdir_is_refused(tmp_path):
    # Root ignores permission bits, so the read-only file system is simulated.
    erofs = OSError(30, "Read-only file system")
    with mock.patch.object(pathlib.Path, "touch", side_effect=erofs):
        with pytest.raises(configs.ConfigError, match="cannot write to --workdir .*: Read-only"):
            train.train_and_evaluate(configs.get_config("tiny"), tmp_path / "run", tmp_path)


def test_a_negative_seed_stops_the_launcher_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "launch.py", "--mask=mouth", "--config=tiny", "--seed=-1",
         f"--data_dir={tmp_path}", f"--workdir={tmp_path / 'w'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2
    assert "seed must be an integer in 0..2147483647, not -1" in result.stderr
    assert "Traceback" not in result.stderr

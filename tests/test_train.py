"""The training system end to end: chunked resume, kill -9, launcher errors, the completion API."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from glcic_jax.completion.inference import Completer
from glcic_jax.training import checkpoint, train

ROOT = pathlib.Path(__file__).resolve().parents[1]


def launch(*args, timeout=600, **kwargs):
    return subprocess.run(
        [sys.executable, str(ROOT / "launch.py"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kwargs,
    )  # fmt: skip


@pytest.fixture(scope="module")
def straight_run(tiny_runs):
    return tiny_runs["mouth"]


def test_resume_in_chunks_is_bit_identical(
    straight_run, tmp_path, faces_dir, tiny_run_config, run_state
):
    config = tiny_run_config("mouth")
    config.steps_per_run = 5
    assert train.train_and_evaluate(config, tmp_path, faces_dir) == 5
    assert train.train_and_evaluate(config, tmp_path, faces_dir, resume=True) == 10
    a, b = run_state(straight_run), run_state(tmp_path)
    leaves_a, leaves_b = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(leaves_a) == len(leaves_b) > 50
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(x, y)
    logged = [json.loads(line)["step"] for line in open(tmp_path / "metrics.jsonl")]
    assert logged == [2, 4, 5, 6, 8, 10]  # a chunk's last step is logged too


def test_run_writes_logs_samples_and_metrics(straight_run):
    records = [json.loads(line) for line in open(straight_run / "metrics.jsonl")]
    assert [r["phase"] for r in records] == [1, 1, 2, 3, 3]
    for r in records:
        assert r["images_per_sec"] > 0 and r["g_mse"] > 0
    assert "d_loss" in records[-1] and "g_adv" in records[-1]
    assert list((straight_run / "samples").glob("samples_*.png"))
    assert list((straight_run / "tensorboard").glob("events.out.tfevents.*"))
    record = json.loads((straight_run / "data_files.json").read_text())
    assert len(record["files"]) == 480 and len(record["mean_pixel"]) == 3


def test_completer_fills_only_the_hole(straight_run, faces_dir):
    from glcic_jax.dataset import folders

    completer = Completer.from_workdir(straight_run, batch_size=4)
    assert completer.step == 10
    files = folders.list_images(faces_dir, "test")[:5]  # not a multiple of the batch
    images = np.stack([folders.load_image(f, 32) for f in files])
    holes = completer.regime_holes(5)
    out = completer.complete(images, holes)
    assert out.shape == (5, 32, 32, 3) and out.dtype == np.float32
    outside = holes[..., 0] < 0.5
    np.testing.assert_array_equal(out[outside], images[outside] / np.float32(255))
    assert np.abs(out[~outside] - images[~outside] / 255).mean() > 0.01
    blended = completer.complete(images, holes, postprocess_blend=True)
    np.testing.assert_allclose(blended[outside], images[outside] / 255, atol=1e-6)
    with pytest.raises(ValueError, match="images must be"):
        completer.complete(images[:, :16], holes)


def test_launcher_chunks_reach_step_40(tmp_path, faces_dir):
    """The core issue's done-when, for the mouth regime (random: test_launcher_random)."""
    _two_chunks(tmp_path, faces_dir, "mouth")


@pytest.mark.slow
def test_launcher_random(tmp_path, faces_dir):
    _two_chunks(tmp_path, faces_dir, "random")


def _two_chunks(workdir, faces_dir, mask):
    common = [f"--mask={mask}", "--config=tiny", f"--data_dir={faces_dir}", f"--workdir={workdir}"]
    first = launch(*common, "--steps_per_run=20")
    assert first.returncode == 0, first.stderr[-3000:]
    second = launch(*common, "--steps_per_run=20", "--resume")
    assert second.returncode == 0, second.stderr[-3000:]
    # The resumed chunk loads its compiled steps (here from the suite's cache folder,
    # which $JAX_COMPILATION_CACHE_DIR names; a user's run: WORKDIR/compile_cache).
    said = [line for line in second.stdout.splitlines() if line.startswith("compile cache: ")]
    assert len(said) == 1 and int(said[0].split()[2]) >= 1 and " 0 compiled afresh" in said[0]
    steps_logged = [json.loads(line)["step"] for line in open(workdir / "metrics.jsonl")]
    assert steps_logged[-1] == 40 and steps_logged == sorted(steps_logged)
    assert checkpoint.Checkpoints(workdir, read_only=True).latest_step() == 40


def test_kill_9_leaves_a_resumable_workdir(tmp_path, faces_dir):
    """Killed at random moments (saving every 2nd step, logging every step), the run resumes.

    The resumed log holds each step once although the kill often lands
    between a logged step and the next save.
    """
    common = [
        "--mask=mouth", "--config=tiny", f"--data_dir={faces_dir}", f"--workdir={tmp_path}",
        "--config.checkpoint_every=2", "--config.log_every=1", "--config.total_steps=10000",
    ]  # fmt: skip
    ckpt_dir = tmp_path / "checkpoints"
    rng = np.random.default_rng(0)
    for attempt in range(2):
        before = checkpoint.Checkpoints(tmp_path).latest_step() if attempt else None
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "launch.py"), *common] + (["--resume"] if attempt else []),
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.time() + 300
        while time.time() < deadline:
            done = [p for p in ckpt_dir.glob("*") if p.name.isdigit()] if ckpt_dir.exists() else []
            if len(done) >= (before or 0) + 3:
                break
            time.sleep(0.2)
        time.sleep(rng.uniform(0, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    resumed = launch(*common, "--resume", "--steps_per_run=2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not list(ckpt_dir.glob(f"*{checkpoint.TMP_DIR_SUFFIX}*"))
    logged = [json.loads(line)["step"] for line in open(tmp_path / "metrics.jsonl")]
    assert logged == sorted(set(logged)), "steps logged twice after the resume"


def test_sigterm_saves_before_exit(tmp_path, faces_dir):
    common = [
        "--mask=mouth", "--config=tiny", f"--data_dir={faces_dir}", f"--workdir={tmp_path}",
        "--config.total_steps=100000", "--config.checkpoint_every=100000",
    ]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "launch.py"), *common],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    metrics = tmp_path / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (metrics.exists() and metrics.stat().st_size):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert "SIGTERM received" in err
    step = checkpoint.Checkpoints(tmp_path, read_only=True).latest_step()
    assert step is not None and step >= 5


@pytest.mark.parametrize(
    "args,message",
    [
        (["--mask=square"], "value should be one of"),
        (["--mask=mouth", "--config=huge"], "unknown --config=huge"),
        (["--mask=mouth", "--config=tiny", "--config.widht=4"], "did you mean width"),
        (["--mask=mouth", "--config=tiny", "--config.batch_size=0"], "batch_size must be >= 1"),
        (["--mask=mouth", "--config=tiny", "--config.image_size=512"], "larger than the paper"),
        (["--mask=mouth", "--config=tiny", "--data_dir=/nonexistent"], "does not exist"),
        (["--mask=mouth", "--config=tiny", "--resume"], "--resume: no checkpoint"),
    ],
)
def test_bad_flags_fail_with_one_line(args, message, tmp_path):
    result = launch(*args, f"--workdir={tmp_path / 'w'}", timeout=120)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_resume_with_another_config_is_refused(straight_run, faces_dir):
    result = launch(
        "--mask=random", "--config=tiny", f"--data_dir={faces_dir}", f"--workdir={straight_run}",
        "--resume", "--config.phase1_steps=4", "--config.phase2_steps=2", timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "mask='mouth' in the checkpoint but 'random' now" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_four_devices_train_like_one(
    tmp_path, faces_dir, tiny_run_config, run_state, assert_networks_close
):
    """Data-parallel over 4 forced CPU devices = 1 device, for the same global batch."""
    config = tiny_run_config()
    config.total_steps = 6
    script = (
        "import json, sys; import ml_collections; from glcic_jax.training import train;"
        "c = ml_collections.ConfigDict(json.loads(sys.argv[3]));"
        "train.train_and_evaluate(c, sys.argv[1], sys.argv[2])"
    )
    for n in (1, 4):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}")
        result = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / str(n)), str(faces_dir), config.to_json()],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
    for a, b in zip(*(open(tmp_path / n / "metrics.jsonl") for n in "14")):
        a, b = json.loads(a), json.loads(b)
        for key in ("g_mse", "d_loss", "g_adv"):
            if key in a:
                np.testing.assert_allclose(a[key], b[key], rtol=5e-3, err_msg=key)
    one, four = run_state(tmp_path / "1"), run_state(tmp_path / "4")
    assert_networks_close(one, four, run_state(tmp_path / "1", initial=True))


def test_overlay_regime_trains_and_samples(tmp_path, faces_dir, shared_data, tiny_run_config):
    config = tiny_run_config("overlay")
    config.phase1_steps, config.total_steps, config.overlay_bank = 2, 2, 16
    assert train.train_and_evaluate(config, tmp_path, faces_dir) == 2
    completer = Completer.from_workdir(tmp_path)
    holes = completer.regime_holes(3)
    assert holes.shape == (3, 32, 32, 1) and 0.05 < holes.mean() < 0.6
    assert list((tmp_path / "samples").glob("*.png"))


def test_second_writer_on_a_workdir_is_refused(tmp_path):
    first = checkpoint.Checkpoints(tmp_path)
    with pytest.raises(checkpoint.CheckpointError, match="another run is using"):
        checkpoint.Checkpoints(tmp_path)
    checkpoint.Checkpoints(tmp_path, read_only=True).close()  # readers are welcome
    first.close()
    checkpoint.Checkpoints(tmp_path).close()

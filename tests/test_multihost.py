"""Several processes, one run: a shared workdir, checkpoints and resume, a stop signal to one.

Two launch.py processes on this machine talk over Gloo on loopback, as the
hosts of a cluster would over the network.
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest

from glcic_jax.training import checkpoint

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = [
    "--mask=mouth", "--config=tiny", "--config.phase1_steps=3", "--config.phase2_steps=1",
    "--config.checkpoint_every=2", "--config.log_every=1",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args, env=None):
    return subprocess.Popen(
        [sys.executable, str(ROOT / "launch.py"), *args], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _two_processes(workdir, faces_dir, *args):
    port = _free_port()
    common = [*TINY, f"--data_dir={faces_dir}", f"--workdir={workdir}", *args,
              f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2"]  # fmt: skip
    return [_start([*common, f"--process_id={i}"]) for i in range(2)]


def _training_pair(workdir, faces_dir):
    """Two processes of one long run, returned once it has logged three steps."""
    procs = _two_processes(workdir, faces_dir, "--config.total_steps=100000")
    log = workdir / "metrics.jsonl"
    deadline = time.monotonic() + 600
    while not (log.exists() and len(log.read_text().splitlines()) >= 3):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(1)
    return procs


def _finish(procs, timeout=900):
    outs = [p.communicate(timeout=timeout) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    return [err for _, err in outs]


@pytest.mark.slow
def test_two_processes_train_and_resume_like_one_with_two_devices(
    tmp_path, faces_dir, run_state, assert_networks_close
):
    shared = tmp_path / "shared"
    _finish(_two_processes(shared, faces_dir, "--config.total_steps=6", "--steps_per_run=4"))
    assert checkpoint.Checkpoints(shared, read_only=True).steps() == [2, 4]
    _finish(_two_processes(shared, faces_dir, "--config.total_steps=6", "--resume"))

    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    one = _start([*TINY, "--config.total_steps=6", f"--data_dir={faces_dir}",
                  f"--workdir={tmp_path / 'one'}"], env)  # fmt: skip
    _finish([one])
    start = run_state(tmp_path / "one", initial=True)
    assert_networks_close(run_state(shared, 6), run_state(tmp_path / "one", 6), start)


@pytest.mark.slow
def test_a_stop_signal_to_one_process_stops_both_at_the_same_step(tmp_path, faces_dir):
    workdir = tmp_path / "run"
    procs = _training_pair(workdir, faces_dir)
    log = workdir / "metrics.jsonl"
    procs[1].send_signal(signal.SIGTERM)
    errs = _finish(procs, timeout=600)
    assert "SIGTERM received: saving step" in errs[1]
    assert "another process was asked to stop: saving step" in errs[0]
    saved = [int(e.split("saving step ")[1].split()[0]) for e in errs]
    assert saved[0] == saved[1]
    assert checkpoint.Checkpoints(workdir, read_only=True).latest_step() == saved[0]
    assert json.loads(log.read_text().splitlines()[-1])["step"] == saved[0]


@pytest.mark.slow
def test_a_second_run_on_a_shared_workdir_is_refused(tmp_path, faces_dir):
    workdir = tmp_path / "run"
    procs = _two_processes(workdir, faces_dir, "--config.total_steps=100000")
    try:
        deadline = time.monotonic() + 600
        while not (workdir / "metrics.jsonl").exists():
            assert time.monotonic() < deadline
            time.sleep(1)
        second = _start([*TINY, f"--data_dir={faces_dir}", f"--workdir={workdir}", "--resume"])
        _, err = second.communicate(timeout=300)
        assert second.returncode == 2 and "another run is using" in err
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        _finish(procs, timeout=600)


@pytest.mark.slow
def test_a_process_killed_stops_the_other_quickly_with_one_line(tmp_path, faces_dir):
    """kill -9 of process 1: process 0 says which process went and how to go on, and exits."""
    workdir = tmp_path / "run"
    procs = _training_pair(workdir, faces_dir)
    procs[1].kill()
    killed = time.monotonic()
    _, err = procs[0].communicate(timeout=120)
    procs[1].communicate()
    assert procs[0].returncode == 1
    assert time.monotonic() - killed < 60  # JAX alone: a traceback, then an abort after ~100 s
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "process 1 of this 2-process run stopped" in lines[0], err[-3000:]
    assert "--resume" in lines[0] and "Traceback" not in err
    _finish(_two_processes(workdir, faces_dir, "--config.total_steps=6", "--resume"))

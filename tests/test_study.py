"""experiments/study.py: three regimes trained in resumed chunks, then a three-model comparison."""

import os
import subprocess
import sys

import pytest

from glcic_jax import runs
from glcic_jax.evaluation import tables

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_study_trains_three_regimes_in_chunks_and_compares(faces_dir, tmp_path):
    run_dir, out = tmp_path / "runs", tmp_path / "report"
    command = [
        sys.executable, os.path.join(ROOT, "experiments", "study.py"), "--config=tiny",
        f"--data_dir={faces_dir}", f"--runs={run_dir}", f"--out={out}", "--chunk=25",
        "--num_images=8",
    ]  # fmt: skip
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    for regime in ("mouth", "random", "random_mouthsize"):
        with runs.RunReader(run_dir / regime) as run:
            assert run.latest_step() == 40  # the tiny preset's total, reached in two chunks
        assert "chunk from step 25" in result.stdout.split(f"{regime}: chunk from step 0")[1]
    diffs = tables.read_csv(out / "differences.csv")
    assert {d["a"] for d in diffs} == {"mouth-trained", "random_mouthsize-trained"}
    # A finished study is not retrained.
    again = subprocess.run(command + ["--train_only"], capture_output=True, text=True, env=env)
    assert again.returncode == 0 and again.stdout.count("already at step 40") == 3

"""The prepared GPU run (experiments/gpu_check.py) and its schedule arithmetic, on the CPU."""

import json
import pathlib
import subprocess
import sys

import pytest

from glcic_jax.perf import schedule_estimate
from glcic_jax.training import configs

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_a_schedule_is_each_phases_steps_times_its_step_plus_its_compile():
    seed = configs.get_config("seed")  # 90k completion, 10k discriminator, joint to 480k
    assert schedule_estimate.phase_steps(seed) == {"1": 90_000, "2": 10_000, "3": 380_000}
    got = schedule_estimate.schedule_seconds(seed, {"1": 100.0, "2": 50.0, "3": 200.0}, {"1": 60.0})
    assert got == pytest.approx({"1": 9060.0, "2": 500.0, "3": 76_000.0, "total": 85_560.0})
    missing = schedule_estimate.schedule_seconds(seed, {"1": 100.0})
    assert missing["2"] is None and missing["total"] is None
    assert schedule_estimate.hours(None) == "not measured"
    assert schedule_estimate.hours(85_560.0) == "23.8 h"
    short = {"phase1_steps": 90, "phase2_steps": 10, "total_steps": 50}
    assert schedule_estimate.phase_steps(short) == {"1": 50, "2": 0, "3": 0}
    assert schedule_estimate.schedule_seconds(short, {"1": 10.0})["total"] == pytest.approx(0.5)


def test_the_script_on_a_tiny_config_writes_its_table_and_records(tmp_path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "gpu_check.py"), f"--out={tmp_path}",
         "--config=tiny", "--image_size=32", "--presets=tiny", "--dtypes=bfloat16,float32",
         "--phases=infer", "--steps=1", "--warmup=1", "--budget_s=1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    (record,) = [json.loads(line) for line in open(tmp_path / "gpu_check.jsonl")]
    assert (record["preset"], record["dtype"], record["phase"]) == ("tiny", "bfloat16", "infer")
    assert record["step_ms_median"] > 0 and record["compile_s"] > 0
    table = (tmp_path / "gpu_check.md").read_text()
    assert "| tiny (4) | bfloat16 | infer |" in table
    assert (
        "| tiny | bfloat16 | not measured | not measured | not measured | not measured |" in table
    )
    # The first measurement took longer than the 1 s budget: the second was not started.
    assert "budget spent: tiny float32 not measured" in run.stderr

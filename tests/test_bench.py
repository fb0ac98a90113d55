"""The throughput benchmark runs on a tiny config and prints JSON lines with the agreed keys."""

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _script(name, *flags, timeout=600):
    """Run experiments/NAME with these flags."""
    return subprocess.run(
        [sys.executable, str(ROOT / "experiments" / name), *flags],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _records(result):
    """The JSON lines a successful run printed."""
    assert result.returncode == 0, result.stderr[-2000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_bench_train_prints_parseable_lines():
    result = _script(
        "bench_train.py", "--config=tiny", "--image_size=32", "--batch_size=2",
        "--phases=2,infer", "--steps=2", "--warmup=1",
    )  # fmt: skip
    records = _records(result)
    assert [r["phase"] for r in records] == ["2", "infer"]
    for r in records:
        for key in ("image_size", "batch_size", "img_per_sec", "step_ms_median", "peak_rss_mb"):
            assert r[key] > 0, key
        assert r["step_ms_min"] <= r["step_ms_median"] <= r["step_ms_max"]
        assert r["local_patch"] == 128  # the reference's, half the image side
        assert r["allocator"] in ("jemalloc", "glibc")
    assert "img/s" in result.stdout


def test_bench_ablation_times_each_variant_against_fast():
    records = _records(
        _script(
            "bench_ablation.py", "--config=tiny", "--image_size=32", "--batch_size=2",
            "--phase=3", "--rounds=2", "--variants=fast,all_lax,glibc_allocator,no_allocator",
        )
    )  # fmt: skip
    assert [r["variant"] for r in records] == ["fast", "all_lax", "glibc_allocator", "no_allocator"]
    assert records[0]["time_vs_fast"] == 1.0
    fast, all_lax, glibc, none = (r["allocator"] for r in records)
    assert fast == all_lax and fast in ("jemalloc", "glibc") and (glibc, none) == ("glibc", "none")
    for r in records:
        assert r["step_ms_min"] <= r["step_ms_median"] <= r["step_ms_max"]


def test_bench_ablation_times_inference_with_ynnpack_convolutions():
    records = _records(
        _script(
            "bench_ablation.py", "--config=tiny", "--image_size=32", "--batch_size=2",
            "--phase=infer", "--rounds=2", "--variants=fast,ynnpack_convs,xla_convs",
        )
    )  # fmt: skip
    assert [r["variant"] for r in records] == ["fast", "ynnpack_convs", "xla_convs"]


def test_bench_ablation_names_a_bad_variant_without_a_traceback():
    result = _script("bench_ablation.py", "--variants=conv=fft", timeout=120)
    assert result.returncode != 0
    assert "conv" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "script,flag,message",
    [
        ("bench_train.py", "--image_size=30", "multiple of 4"),
        ("bench_train.py", "--phases=1,5", "unknown ['5']"),
        ("bench_train.py", "--config=huge", "unknown preset"),
        ("bench_ablation.py", "--image_size=30", "multiple of 4"),
    ],
)
def test_bench_scripts_reject_bad_settings_before_compiling(script, flag, message):
    result = _script(script, "--config=tiny", flag, timeout=120)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr


def test_bench_train_rejects_a_folder_that_is_not_the_reference(tmp_path):
    result = _script(
        "bench_train.py", f"--reference_dir={tmp_path}", f"--reference_python={sys.executable}",
        timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "not a GLCIC-PyTorch checkout" in result.stderr and "Traceback" not in result.stderr


_STEPPER = """
import sys, time
from glcic_jax.perf import step_protocol
name, log = sys.argv[1], sys.argv[2]
def step():
    with open(log, "a") as f:
        f.write(name + "\\n")
    if name == "dies":
        raise SystemExit("worker gave up")
step_protocol.serve(step, warmup=0, summary=lambda times: {"name": name, "steps": len(times)})
"""


def _stepper(name, log):
    return [sys.executable, "-c", _STEPPER, name, str(log)], None


def test_workers_take_turns_and_a_dead_worker_is_reported(tmp_path):
    from glcic_jax.perf import step_protocol

    log = tmp_path / "log"
    summaries = step_protocol.take_turns([_stepper("ours", log), _stepper("ref", log)], steps=4)
    assert summaries == [{"name": "ours", "steps": 4}, {"name": "ref", "steps": 4}]
    # Each turn is one untimed step, then the timed one; who goes first alternates.
    first_ours, first_ref = ["ours"] * 2 + ["ref"] * 2, ["ref"] * 2 + ["ours"] * 2
    assert log.read_text().split() == (first_ours + first_ref) * 2

    with pytest.raises(RuntimeError, match="worker gave up"):
        step_protocol.take_turns([_stepper("dies", tmp_path / "log2")], steps=2)

"""The throughput benchmark runs on a tiny config and prints JSON lines with the agreed keys."""

import dataclasses
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


@pytest.mark.slow  # a training phase compiled in a subprocess; test_gpu_check runs this script
def test_bench_train_prints_parseable_lines():
    # One training phase; inference runs through this script in test_gpu_check.py.
    result = _script(
        "bench_train.py", "--config=tiny", "--image_size=32", "--batch_size=2",
        "--phases=2", "--steps=2", "--warmup=1",
    )  # fmt: skip
    records = _records(result)
    assert [r["phase"] for r in records] == ["2"]
    for r in records:
        for key in ("image_size", "batch_size", "img_per_sec", "step_ms_median", "peak_rss_mb"):
            assert r[key] > 0, key
        assert r["step_ms_min"] <= r["step_ms_median"] <= r["step_ms_max"]
        assert r["local_patch"] == 128  # the reference's, half the image side
        assert r["allocator"] in ("jemalloc", "glibc")
    assert "img/s" in result.stdout


@pytest.mark.slow  # each variant compiled in turn: 73 s in a suite run under load; inference below stays
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


def test_ablation_variants_change_one_choice_of_the_default():
    from glcic_jax.nets.conv_plan import plan_conv
    from glcic_jax.nets.formulations import CPU_FORMULATIONS, PLAIN_FORMULATIONS
    from glcic_jax.perf import ablation

    for default in (CPU_FORMULATIONS, PLAIN_FORMULATIONS):
        for name, planner in ablation.CONV_PLANNERS.items():
            want = dataclasses.replace(default, conv=planner)
            assert ablation.formulations_for(f"conv={name}", default) == want
        want = dataclasses.replace(default, transposed="lax")
        assert ablation.formulations_for("transposed=lax", default) == want
        want = dataclasses.replace(default, batch_norm="two_pass")
        assert ablation.formulations_for("batch_norm=two_pass", default) == want
        assert ablation.formulations_for("all_lax", default) == PLAIN_FORMULATIONS
        assert ablation.formulations_for("cpu_plan", default) == CPU_FORMULATIONS
    for variant, message in [
        ("conv=fft", "unknown formulation conv='fft'"),
        ("transposed=fft", "unknown formulation transposed='fft'"),
        ("batch_norm=one_pass", "unknown formulation batch_norm='one_pass'"),
        ("fast", "unknown formulation variant 'fast'"),
    ]:
        with pytest.raises(ValueError, match=message):
            ablation.formulations_for(variant, CPU_FORMULATIONS)

    def parts(plan):
        return plan.forward, plan.input_grad, plan.weight_grad

    # Each convolution variant turns off what it names, on a layer where the CPU's plan uses it.
    layers = {  # variant: ((kernel shape, map size, stride, dilation, padding), its plan)
        "unbanded": (((3, 3, 128, 64), 128, 1, 1, 1), ("lax", "lax", "lax")),
        "no_valid_taps": (((3, 3, 256, 256), 16, 1, 16, 16), ("lax", "lax", "lax")),
        "no_output_taps": (((3, 3, 32, 3), 256, 1, 1, 1), ("lax", "lax", "lax")),
        "no_xla_kernels": (((3, 3, 64, 32), 64, 1, 1, 1), ("lax", "lax", "lax")),
        "no_winograd": (((3, 3, 256, 256), 64, 1, 1, 1), ("lax", "lax", "banded")),
        "im2col": (((3, 3, 128, 256), 128, 2, 1, 1), ("im2col",) * 3),
        "lax": (((5, 5, 64, 128), 128, 2, 1, 2), ("lax",) * 3),
    }
    for name, (layer, plan) in layers.items():
        assert parts(ablation.CONV_PLANNERS[name](*layer)) == plan, name
        assert parts(plan_conv(*layer)) != plan, name
    # The earlier im2col rule: strided convolutions on maps under 128 px, every
    # strided 3x3 and every 2x2 convolution im2col throughout, the rest lax.
    assert parts(ablation.im2col_throughout((5, 5, 64, 128), 64, 2, 1, 2)) == ("im2col",) * 3
    assert parts(ablation.im2col_throughout((5, 5, 64, 128), 128, 2, 1, 2)) == ("lax",) * 3
    assert parts(ablation.im2col_throughout((2, 2, 64, 256), 64, 1, 1, 1)) == ("im2col",) * 3
    assert parts(ablation.im2col_throughout((3, 3, 256, 256), 16, 1, 2, 2)) == ("lax",) * 3


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

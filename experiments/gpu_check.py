r"""One prepared run for a borrowed GPU: every phase at 256 px in float32 and bfloat16, and the schedules' time.

  python experiments/gpu_check.py --out=DIR                      # seed and paper presets, 256 px
  python experiments/gpu_check.py --out=DIR --budget_s=480       # start no measurement after 8 minutes
  python experiments/gpu_check.py --out=DIR --config=tiny --image_size=32 --presets=tiny \
      --phases=infer --steps=1 --warmup=1                        # the CPU check of the script itself

For each preset's batch size and optimizer (`seed`: the study's 480k steps of
batch 16; `paper`: 500k of batch 96) and each compute dtype, it runs
experiments/bench_train.py (each phase in its own process: compile time,
median step, peak device memory) and estimates how long the preset's whole
schedule takes (glcic_jax/perf/schedule_estimate.py). Writes DIR/gpu_check.md
(the table docs/gpu.md takes) and DIR/gpu_check.jsonl (bench_train's
records, with preset and dtype), after every measurement, so a run cut off
by the lease keeps what it measured. Measures and asserts nothing else.
"""

import json
import pathlib
import subprocess
import sys
import time

from absl import app, flags

from glcic_jax.perf import benchmark, schedule_estimate

_OUT = flags.DEFINE_string("out", None, "Output folder.", required=True)
_PRESETS = flags.DEFINE_list("presets", ["seed", "paper"], "Schedules to estimate (their batch).")
_DTYPES = flags.DEFINE_list("dtypes", ["float32", "bfloat16"], "Compute dtypes to measure.")
_PHASES = flags.DEFINE_list("phases", list(benchmark.PHASES), "Phases to time.")
_CONFIG = flags.DEFINE_string("config", "paper", "Preset of the networks' widths.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 256, "Image side.", lower_bound=32)
_STEPS = flags.DEFINE_integer("steps", 5, "Timed steps per phase.", lower_bound=1)
_WARMUP = flags.DEFINE_integer(
    "warmup", 2, "Untimed steps first (the first compiles).", lower_bound=1
)
_BUDGET = flags.DEFINE_integer(
    "budget_s", 0, "Start no measurement after this many seconds (0: no limit).", lower_bound=0
)
HERE = pathlib.Path(__file__).resolve().parent


def _measure(preset_config, dtype: str) -> list[dict]:
    """bench_train.py's records for one preset's batch and optimizer in one dtype."""
    command = [
        sys.executable, str(HERE / "bench_train.py"), f"--config={_CONFIG.value}",
        f"--image_size={_IMAGE_SIZE.value}", f"--batch_size={preset_config.batch_size}",
        f"--optimizer={preset_config.optimizer}", f"--compute_dtype={dtype}",
        f"--local_patch={preset_config.local_patch}", f"--phases={','.join(_PHASES.value)}",
        f"--steps={_STEPS.value}", f"--warmup={_WARMUP.value}",
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True)
    records = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    if run.returncode != 0:
        print(
            f"preset {preset_config.preset} {dtype}: {run.stderr.strip()[-300:]}", file=sys.stderr
        )
    return records


def _table(measured: list[dict], schedules: dict) -> str:
    lines = [
        f"{_IMAGE_SIZE.value} px, networks of the `{_CONFIG.value}` preset.",
        "",
        "| preset (batch) | dtype | phase | step ms | img/s | compile s | peak device MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in measured:
        device = r.get("peak_device_mb")
        lines.append(
            f"| {r['preset']} ({r['batch_size']}) | {r['dtype']} | {r['phase']} |"
            f" {r['step_ms_median']:.1f} | {r['img_per_sec']:.1f} | {r['compile_s']:.1f} |"
            f" {'' if device is None else f'{device:.0f}'} |"
        )
    lines += [
        "",
        "| preset | dtype | phase 1 | phase 2 | phase 3 | whole schedule |",
        "|---|---|---|---|---|---|",
    ]
    for (preset, dtype), seconds in schedules.items():
        cells = " | ".join(schedule_estimate.hours(seconds[k]) for k in ("1", "2", "3", "total"))
        lines.append(f"| {preset} | {dtype} | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments: {' '.join(argv[1:])}")
    from glcic_jax.training import configs

    unknown = sorted(set(_PHASES.value) - set(benchmark.PHASES))
    if unknown:
        sys.exit(f"error: --phases: unknown {unknown}; choose from {list(benchmark.PHASES)}")
    try:
        presets = {name: configs.get_config(name) for name in _PRESETS.value}
    except (configs.ConfigError, KeyError, ValueError) as e:
        sys.exit(f"error: --presets: {e}")
    out = pathlib.Path(_OUT.value)
    out.mkdir(parents=True, exist_ok=True)
    started, measured, schedules = time.monotonic(), [], {}
    for name, preset_config in presets.items():
        for dtype in _DTYPES.value:
            if _BUDGET.value and time.monotonic() - started > _BUDGET.value:
                print(f"budget spent: {name} {dtype} not measured", file=sys.stderr)
                continue
            records = [dict(r, preset=name, dtype=dtype) for r in _measure(preset_config, dtype)]
            measured += records
            step_ms = {r["phase"]: r["step_ms_median"] for r in records}
            compile_s = {r["phase"]: r["compile_s"] for r in records}
            schedules[(name, dtype)] = schedule_estimate.schedule_seconds(
                preset_config, step_ms, compile_s
            )
            # Written after every measurement: a lease that ends keeps what was measured.
            with open(out / "gpu_check.jsonl", "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in measured)
            (out / "gpu_check.md").write_text(_table(measured, schedules))
            print(f"{name} {dtype}: {len(records)} phases measured", flush=True)
    print((out / "gpu_check.md").read_text() if measured else "nothing measured")


if __name__ == "__main__":
    app.run(main)

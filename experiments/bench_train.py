"""Throughput of each training phase and of inference; optionally beside the PyTorch reference.

  python experiments/bench_train.py --image_size=64 --batch_size=8
  python experiments/bench_train.py --image_size=256 --batch_size=4 \
      --reference_dir=/path/to/GLCIC-PyTorch --reference_python=/path/to/venv/bin/python

Each phase runs in its own subprocess (so peak memory is per phase), with the
allocator of launch.py (the reference gets the glibc settings of
glcic_jax/perf/allocator.py); with a
reference, its process and ours each
warm up, then take turns, alternating who goes first, each turn one untimed
and one timed step (step_protocol.py), so both see the same machine load.
Prints one human-readable line and one
JSON line (`phase`, `image_size`, `batch_size`, `img_per_sec`,
`step_ms_median`, spread, `compile_s`, `gflops_per_sec`, `allocator`, `peak_rss_mb` and
what it is made of: `peak_rss_after_compile_mb`, `xla_temp_mb`, `xla_args_mb`; and
with a reference `ref_img_per_sec` and `ratio` = ours / reference). It
measures and asserts nothing.

Our networks are set up as the reference's: Adam for both, the local patch
half the image side (`--local_patch=128` on the 256 canvas; training's
default, 160, holds the mouth box: time it with `--local_patch=160`) and the
random holes that patch holds.
"""

import json
import os
import pathlib
import resource
import sys

from absl import app, flags

from glcic_jax.perf import step_protocol

flags.DEFINE_string("config", "paper", "Preset for widths and optimizer (paper: full width).")
flags.DEFINE_integer("image_size", 64, "Image side.")
flags.DEFINE_integer("batch_size", 8, "Batch size.")
flags.DEFINE_list("phases", ["1", "2", "3", "infer"], "Phases to time.")
flags.DEFINE_integer("steps", 5, "Timed steps per phase (after warm-up).")
flags.DEFINE_integer("warmup", 2, "Untimed steps first (the first one compiles).")
flags.DEFINE_string("optimizer", "adam", "Optimizer for both nets (the reference uses Adam here).")
flags.DEFINE_string("compute_dtype", "float32", "float32 or bfloat16 compute.")
flags.DEFINE_integer(
    "local_patch", 128, "Local patch on the 256 canvas: 128 is the reference's; training uses 160."
)
flags.DEFINE_string("reference_dir", None, "otenim/GLCIC-PyTorch checkout, to time beside ours.")
flags.DEFINE_string("reference_python", None, "Python of a venv with torch, for the reference.")
flags.DEFINE_string("worker", None, "Internal: time this one phase in this process.")
FLAGS = flags.FLAGS
HERE = pathlib.Path(__file__).resolve().parent


def _config():
    from glcic_jax.perf import benchmark

    return benchmark.bench_config(
        FLAGS.config,
        FLAGS.image_size,
        FLAGS.batch_size,
        FLAGS.compute_dtype,
        FLAGS.optimizer,
        FLAGS.local_patch,
    )


def serve_phase(phase: str) -> None:
    """Worker: compile the phase, warm up, then time steps as the parent asks."""
    from glcic_jax.perf import allocator

    in_effect = allocator.setup()  # first: it may re-execute this worker under jemalloc
    import jax

    from glcic_jax.perf import benchmark

    config = _config()
    workload = benchmark.compile_phase(config, phase)
    run = workload.run
    flops = benchmark.flops_per_run(workload.compiled)
    rss_after_compile = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    memory = workload.compiled.memory_analysis()

    def summary(times):
        stats = step_protocol.step_summary(times, config.batch_size)
        return dict(
            phase=phase,
            image_size=config.image_size,
            batch_size=config.batch_size,
            local_patch=config.local_patch,
            **stats,
            compile_s=workload.compile_s,
            gflops_per_sec=flops / stats["step_ms_median"] / 1e6,
            peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            # What the peak is made of: the process after compiling, and XLA's own
            # plan for one run (temporary buffers; arguments, i.e. the state).
            peak_rss_after_compile_mb=rss_after_compile,
            xla_temp_mb=memory.temp_size_in_bytes / 2**20 if memory else 0.0,
            xla_args_mb=memory.argument_size_in_bytes / 2**20 if memory else 0.0,
            device=jax.devices()[0].device_kind,
            compute_dtype=FLAGS.compute_dtype,
            allocator=allocator.name(in_effect),
            **_accelerator_peak_mb(jax.devices()[0]),
        )

    step_protocol.serve(lambda: jax.block_until_ready(run()), FLAGS.warmup, summary)


def _accelerator_peak_mb(device) -> dict:
    """Peak accelerator memory where the backend reports it (GPU); empty on CPU."""
    stats = device.memory_stats() if device.platform != "cpu" else None
    if not stats or "peak_bytes_in_use" not in stats:
        return {}
    return {"peak_device_mb": stats["peak_bytes_in_use"] / 2**20}


def _reference_path() -> str:
    """The reference's folder (its `models`) and this project (the turn protocol)."""
    return os.pathsep.join([str(FLAGS.reference_dir), str(HERE.parent)])


def main(argv):
    del argv
    if FLAGS.worker:
        serve_phase(FLAGS.worker)
        return
    if bool(FLAGS.reference_dir) != bool(FLAGS.reference_python):
        raise app.UsageError("--reference_dir and --reference_python go together")
    if FLAGS.steps < 1:
        raise app.UsageError("--steps must be at least 1")
    if FLAGS.reference_dir and not (pathlib.Path(FLAGS.reference_dir) / "models.py").is_file():
        raise app.UsageError(
            f"{FLAGS.reference_dir} has no models.py: not a GLCIC-PyTorch checkout"
        )
    if FLAGS.reference_python and not os.access(FLAGS.reference_python, os.X_OK):
        raise app.UsageError(f"--reference_python {FLAGS.reference_python} is not an executable")

    from glcic_jax.perf import allocator, benchmark  # the reference gets the glibc settings
    from glcic_jax.training import configs

    try:
        _config()
    except configs.ConfigError as e:
        raise app.UsageError(str(e)) from None
    unknown = sorted(set(FLAGS.phases) - set(benchmark.PHASES))
    if unknown:
        raise app.UsageError(f"--phases: unknown {unknown}; choose from {list(benchmark.PHASES)}")

    common = [
        f"--image_size={FLAGS.image_size}",
        f"--batch_size={FLAGS.batch_size}",
        f"--warmup={FLAGS.warmup}",
    ]
    for phase in FLAGS.phases:
        commands = [
            ([sys.executable, __file__, f"--worker={phase}", f"--config={FLAGS.config}",
              f"--optimizer={FLAGS.optimizer}", f"--compute_dtype={FLAGS.compute_dtype}",
              f"--local_patch={FLAGS.local_patch}", *common],
             None)
        ]  # fmt: skip
        if FLAGS.reference_dir:
            commands.append(
                ([FLAGS.reference_python, str(HERE / "reference_timer.py"),
                  f"--reference_dir={FLAGS.reference_dir}", f"--phase={phase}", *common],
                 {**os.environ, **allocator.environment(), "PYTHONPATH": _reference_path()})
            )  # fmt: skip
        try:
            ours, *reference = step_protocol.take_turns(commands, FLAGS.steps)
        except RuntimeError as e:  # a worker died; its stderr's tail is in the message
            sys.exit(f"error: phase {phase}: {e}")
        line = (
            f"phase {phase:>5} {FLAGS.image_size}px b{FLAGS.batch_size}: "
            f"{ours['img_per_sec']:7.2f} img/s, step {ours['step_ms_median']:8.1f} ms "
            f"({ours['step_ms_min']:.1f}..{ours['step_ms_max']:.1f}), compile {ours['compile_s']:.1f} s, "
            f"{ours['gflops_per_sec']:.0f} GFLOP/s, peak {ours['peak_rss_mb']:.0f} MB"
        )
        if "peak_device_mb" in ours:
            line += f" (device {ours['peak_device_mb']:.0f} MB, {ours['device']})"
        if reference:
            (ref,) = reference
            ours["ref_img_per_sec"] = ref["img_per_sec"]
            ours["ref_step_ms_median"] = ref["step_ms_median"]
            ours["ref_peak_rss_mb"] = ref["peak_rss_mb"]
            ours["ratio"] = ours["img_per_sec"] / ref["img_per_sec"]
            line += (
                f" | reference {ref['img_per_sec']:7.2f} img/s, peak {ref['peak_rss_mb']:.0f} MB"
                f" | ratio {ours['ratio']:.2f}"
            )
        print(line, flush=True)
        print(json.dumps(ours), flush=True)


if __name__ == "__main__":
    app.run(main)

"""Each speed optimisation's measured effect: one phase timed under each layer formulation.

  python experiments/bench_ablation.py --image_size=256 --batch_size=1 --phase=1

Every variant is compiled in one process and the variants' steps are timed
in turns (round-robin), so they see the same machine load. The variants
change how layers are computed, never what they compute (the formulation
variants are glcic_jax/perf/ablation.py's; tests/test_layers.py proves each
formulation equal):

  fast          what training uses (on a CPU cpu_plan, elsewhere all_lax)
  cpu_plan      the CPU's formulations on any backend (to measure them on a GPU)
  conv=unbanded lax's own weight gradient where training uses bands of rows
  conv=no_valid_taps  dilated convolutions over all taps, also those that read
                only padding (dilation 8 and 16 on 16 px maps)
  conv=no_output_taps lax's weight gradient for the 3-channel output layer
  conv=no_xla_kernels YNNPACK's kernels also for the output and input gradient
                of stride-1 convolutions to 4-32 channels
  conv=no_winograd  no Winograd for the output and input gradient of 3x3 and
                2x2 (sub-pixel) convolutions between 128+ channels
  conv=im2col   the earlier rule: im2col for strided 3x3 convs and strided convs
                on maps under 128 px, output and both gradients alike
  conv=lax      plain lax convolutions
  transposed=lax  lax's transposed convolution instead of the sub-pixel form
  batch_norm=two_pass  mean, then variance, then normalise (unfolded)
  all_lax       all three plain
  glibc_allocator  "fast" in a second process with glibc's malloc and the
                allocator settings of glcic_jax/perf/allocator.py instead of
                jemalloc (the fallback without libjemalloc2)
  no_allocator  "fast" in a second process with the C library's defaults
  ynnpack_convs inference (--phase=infer) with YNNPACK's convolutions at every
                size (the fast step uses XLA's own up to 128 px)
  xla_convs     inference with XLA's own convolutions at every size

Prints one line and one JSON line per variant: median and spread of the
step time, the ratio to "fast" and (JSON) the allocator that ran it. It
measures and asserts nothing.
"""

import json
import os
import statistics
import sys
import time

from absl import app, flags

from glcic_jax.perf import step_protocol
from glcic_jax.perf.allocator import KINDS, PRELOAD_VARIABLES  # jax-free

flags.DEFINE_string("config", "paper", "Preset for widths (paper: full width).")
flags.DEFINE_integer("image_size", 64, "Image side.")
flags.DEFINE_integer("batch_size", 8, "Batch size.")
flags.DEFINE_enum("phase", "1", ["1", "2", "3", "infer"], "Phase to time.")
flags.DEFINE_integer("rounds", 5, "Timed steps per variant (after one warm-up round).")
flags.DEFINE_list(
    "variants",
    ["fast", "conv=unbanded", "conv=no_valid_taps", "conv=no_output_taps", "conv=no_xla_kernels",
     "conv=no_winograd", "conv=im2col", "conv=lax",
     "transposed=lax", "batch_norm=two_pass", "all_lax", "glibc_allocator", "no_allocator"],
    "Variants to time.",
)  # fmt: skip
flags.DEFINE_enum("allocator", "jemalloc", KINDS, "Internal: this process's allocator.")
flags.DEFINE_bool("worker", False, "Internal: time the in-process variants and print JSON.")
FLAGS = flags.FLAGS

# "fast" in a second process with another allocator (glcic_jax/perf/allocator.py).
ALLOCATOR_VARIANTS = {"glibc_allocator": "glibc", "no_allocator": "none"}
# Inference compiled with XLA options other than the ones steps.py picks.
INFERENCE_VARIANTS = ("ynnpack_convs", "xla_convs")


def _formulations(variant: str, default):
    """The layer formulations `variant` times, None for training's own (the backend's default)."""
    from glcic_jax.perf import ablation

    if variant in ("fast", *ALLOCATOR_VARIANTS, *INFERENCE_VARIANTS):
        return None
    try:
        return ablation.formulations_for(variant, default)
    except ValueError as e:
        others = ", ".join(("fast", *ALLOCATOR_VARIANTS, *INFERENCE_VARIANTS))
        hint = "" if "=" in variant else f" (the other variants: {others})"
        raise app.UsageError(f"variant {variant!r}: {e}{hint}") from None


def time_variants(variants: list[str]) -> dict:
    """Worker: step times per variant, and the allocator in effect."""
    from glcic_jax.perf import allocator

    in_effect = allocator.setup(FLAGS.allocator)  # first: it may re-execute this worker
    import jax

    from glcic_jax.nets.formulations import EIGEN_CONV_OPTIONS, default_formulations
    from glcic_jax.perf import benchmark

    config = benchmark.bench_config(FLAGS.config, FLAGS.image_size, FLAGS.batch_size)
    runs = {}
    for variant in variants:
        options = {"ynnpack_convs": {}, "xla_convs": EIGEN_CONV_OPTIONS}.get(variant)
        formulations = _formulations(variant, default_formulations())
        runs[variant] = benchmark.compile_phase(config, FLAGS.phase, options, formulations).run
        jax.block_until_ready(runs[variant]())  # warm-up
    times = {variant: [] for variant in variants}
    for _ in range(FLAGS.rounds):
        for variant, run in runs.items():
            t = time.perf_counter()
            jax.block_until_ready(run())
            times[variant].append(1e3 * (time.perf_counter() - t))
    return {"times": times, "allocator": allocator.name(in_effect)}


def _worker_times(variants: list[str], allocator: str) -> tuple[dict, str]:
    """Step times per variant and the allocator that ran them."""
    cmd = [
        sys.executable, __file__, "--worker", f"--allocator={allocator}",
        f"--variants={','.join(variants)}", f"--config={FLAGS.config}",
        f"--image_size={FLAGS.image_size}", f"--batch_size={FLAGS.batch_size}",
        f"--phase={FLAGS.phase}", f"--rounds={FLAGS.rounds}",
    ]  # fmt: skip
    # A preload of the parent's would hold in a glibc or no-setting worker.
    unset = PRELOAD_VARIABLES if allocator != "jemalloc" else ()
    env = {k: v for k, v in os.environ.items() if k not in unset}
    out = step_protocol.run_once(cmd, env)
    return out["times"], out["allocator"]


def main(argv):
    del argv
    if FLAGS.worker:
        print(json.dumps(time_variants(FLAGS.variants)))
        return
    from glcic_jax.nets.formulations import CPU_FORMULATIONS
    from glcic_jax.perf import benchmark
    from glcic_jax.training import configs

    try:
        benchmark.bench_config(FLAGS.config, FLAGS.image_size, FLAGS.batch_size)
    except configs.ConfigError as e:
        raise app.UsageError(str(e)) from None
    for variant in FLAGS.variants:
        # A bad name fails here, before any compiling. Any default will do to
        # check a name; asking for the backend's would start it in this process.
        _formulations(variant, CPU_FORMULATIONS)
    for variant in set(INFERENCE_VARIANTS) & set(FLAGS.variants):
        if FLAGS.phase != "infer":
            raise app.UsageError(f"variant {variant} is about inference: use --phase=infer")
    in_process = [v for v in FLAGS.variants if v not in ALLOCATOR_VARIANTS]
    if "fast" not in in_process:
        in_process.insert(0, "fast")
    try:
        times, in_effect = _worker_times(in_process, allocator="jemalloc")
        allocators = dict.fromkeys(times, in_effect)
        for variant, kind in ALLOCATOR_VARIANTS.items():
            if variant in FLAGS.variants:
                worker_times, allocators[variant] = _worker_times(["fast"], allocator=kind)
                times[variant] = worker_times["fast"]
    except RuntimeError as e:  # a worker died; its stderr's tail is in the message
        sys.exit(f"error: {e}")
    fast = statistics.median(times["fast"])
    for variant in [v for v in FLAGS.variants if v in times] or ["fast"]:
        med = statistics.median(times[variant])
        row = dict(
            variant=variant,
            phase=FLAGS.phase,
            image_size=FLAGS.image_size,
            batch_size=FLAGS.batch_size,
            step_ms_median=med,
            step_ms_min=min(times[variant]),
            step_ms_max=max(times[variant]),
            time_vs_fast=med / fast,
            allocator=allocators[variant],
        )
        print(
            f"{variant:20s} phase {FLAGS.phase} {FLAGS.image_size}px b{FLAGS.batch_size}: "
            f"step {med:8.1f} ms ({row['step_ms_min']:.1f}..{row['step_ms_max']:.1f}), "
            f"{row['time_vs_fast']:.2f}x the fast step's time",
            flush=True,
        )
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    app.run(main)

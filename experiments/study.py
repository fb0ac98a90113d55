"""The study's experiment end to end: three hole regimes, same preset, seed and budget, then the comparison.

  python experiments/study.py --data_dir=data/celeba10k-aligned --runs=runs/study \
      --out=docs/results [--config=cpu64] [--chunk=1500] [--num_images=500] \
      [--real_patches=hole]

Trains `mouth` (the study's fixed box), `random` (the study's random holes)
and `random_mouthsize` (the control: the mouth box's size at random
positions) with launch.py, each in chunks of --chunk steps resumed from the
last checkpoint (as the study ran 80k-step chunks), the three side by side;
a run already at its last step is left as it is, and an interrupted one
continues where its last checkpoint left it. Then runs compare.py on the
three runs' common checkpoints and writes its report into --out. Runs
trained before --real_patches existed cut their real patches uniformly: they
continue only under --real_patches=uniform.
"""

import pathlib
import subprocess
import sys

from absl import app, flags, logging

ROOT = pathlib.Path(__file__).resolve().parents[1]
REGIMES = ("mouth", "random", "random_mouthsize")

_DATA_DIR = flags.DEFINE_string("data_dir", None, "Prepared data folder (train/ and test/).")
_RUNS = flags.DEFINE_string("runs", "runs/study", "Folder of the three training runs.")
_OUT = flags.DEFINE_string("out", "docs/results", "Report folder.")
_CONFIG = flags.DEFINE_string("config", "cpu64", "Preset of all three runs.")
_CHUNK = flags.DEFINE_integer("chunk", 1500, "Steps per launch.py run before it is resumed.")
_NUM_IMAGES = flags.DEFINE_integer("num_images", 500, "Test images in the comparison.")
_SEQUENTIAL = flags.DEFINE_bool(
    "sequential", False, "Train one regime after another (default: side by side)."
)
_TRAIN_ONLY = flags.DEFINE_bool("train_only", False, "Stop after training.")
_REAL_PATCHES = flags.DEFINE_enum(
    "real_patches",
    "hole",
    ["hole", "uniform"],
    "Where the local discriminator's real patches are cut: at the fake ones' hole-centred boxes,"
    " or uniformly at random (the study's results so far).",
)
flags.mark_flag_as_required("data_dir")


def _progress(workdir: pathlib.Path) -> int | None:
    """The run's latest checkpoint step, None when it has none."""
    from glcic_jax import runs

    if not runs.checkpoint_dir(workdir).is_dir():
        return None
    with runs.RunReader(workdir) as run:
        return run.latest_step()


def _chunk_command(regime: str, workdir: pathlib.Path, resume: bool) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "launch.py"),
        f"--mask={regime}",
        f"--config={_CONFIG.value}",
        f"--data_dir={_DATA_DIR.value}",
        f"--workdir={workdir}",
        f"--config.steps_per_run={_CHUNK.value}",
        f"--config.real_patches={_REAL_PATCHES.value}",
        *(["--resume"] if resume else []),
    ]


def train_regimes(total_steps: int) -> None:
    """Run chunks until every regime's run is at total_steps; chunks of different runs overlap."""
    runs = {r: pathlib.Path(_RUNS.value) / r for r in REGIMES}
    active: dict[str, subprocess.Popen] = {}
    pending = list(REGIMES)
    while pending or active:
        while pending and (not active or not _SEQUENTIAL.value):
            regime = pending.pop(0)
            step = _progress(runs[regime])
            if step is not None and step >= total_steps:
                print(f"{regime}: already at step {step}")
                continue
            print(f"{regime}: chunk from step {step or 0}", flush=True)
            active[regime] = subprocess.Popen(
                _chunk_command(regime, runs[regime], resume=step is not None),
                stdout=subprocess.DEVNULL,
                stderr=open(runs[regime].with_suffix(".log"), "a"),
            )
        if not active:
            break
        regime, proc = _wait_any(active)
        if proc.returncode != 0:
            for other in active.values():  # SIGTERM: each saves a checkpoint and stops
                other.terminate()
                other.wait()
            sys.exit(
                f"error: {regime} stopped with code {proc.returncode} (see {runs[regime]}.log)"
            )
        pending.append(regime)


def _wait_any(active: dict) -> tuple[str, subprocess.Popen]:
    import time

    while True:
        for regime, proc in list(active.items()):
            if proc.poll() is not None:
                del active[regime]
                return regime, proc
        time.sleep(2)


def main(argv):
    del argv
    logging.set_verbosity(logging.ERROR)
    from glcic_jax.training import configs

    try:
        config = configs.get_config(_CONFIG.value)
    except configs.ConfigError as e:
        sys.exit(f"error: {e}")
    if not pathlib.Path(_DATA_DIR.value).is_dir():
        sys.exit(
            f"error: data folder {_DATA_DIR.value} does not exist (build it with: python "
            "experiments/prepare_data.py --source=PHOTOS --out=DIR --min_face=0)"
        )
    pathlib.Path(_RUNS.value).mkdir(parents=True, exist_ok=True)
    train_regimes(config.total_steps)
    if _TRAIN_ONLY.value:
        return
    runs = {r: pathlib.Path(_RUNS.value) / r for r in REGIMES}
    command = [
        sys.executable,
        str(ROOT / "experiments" / "compare.py"),
        *(f"--{r}={runs[r]}" for r in REGIMES),
        f"--data_dir={_DATA_DIR.value}",
        f"--out={_OUT.value}",
        f"--num_images={_NUM_IMAGES.value}",
    ]
    print(" ".join(command[1:]), flush=True)
    sys.exit(subprocess.run(command).returncode)


if __name__ == "__main__":
    app.run(main)

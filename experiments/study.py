"""The study over seeds: three hole regimes x several seeds, scored on several populations.

  python experiments/study.py --data_dir=data/celeba10k-aligned \
      --populations=celeba=data/celeba10k-aligned,lfw=data/lfw-aligned \
      --runs=runs/study --out=reports/study [--seeds=3] [--config=cpu64] \
      [--chunk=1500] [--num_images=500] [--parallel=3] [--real_patches=hole] \
      [--budget_s=S] [--train_only | --score_only]

Trains `mouth` (the study's fixed box), `random` (the study's random holes)
and `random_mouthsize` (the control: the mouth box's size at random
positions) with launch.py, seed k of every regime in RUNS/seed<k>/<regime>,
each in chunks of --chunk steps resumed from the last checkpoint (as the
study ran 80k-step chunks), --parallel runs at a time. A run already at the
end of its schedule is left as it is, an interrupted one continues from its
last checkpoint, so the whole study is this one command run again until it
finishes.

Then scores every run on the mouth box of each population's test split
(PSNR, SSIM, L1, LPIPS in the hole, the study's feature distance) at the
checkpoints nearest --fractions of the runs' last common step, one CSV per
run in OUT/scores/ (reused on a rerun only for the same steps and faces), and writes
OUT/report.md, statistics.csv and curves.png (glcic_jax.evaluation.seed_report):
intervals over seeds and faces, the size share per metric, the sign test per
pair, and which claims hold across seeds. With --compare_report, compare.py
also writes its report (baselines, grids) for seed 0 into OUT/seed0.
"""

import os
import pathlib
import shlex
import subprocess
import sys
import time

from absl import app, flags, logging

ROOT = pathlib.Path(__file__).resolve().parents[1]
REGIMES = ("mouth", "random", "random_mouthsize")

_DATA_DIR = flags.DEFINE_string("data_dir", None, "Prepared training data (train/ and test/).")
_POPULATIONS = flags.DEFINE_list(
    "populations",
    None,
    "NAME=DIR of prepared data folders whose test/ faces score every run (default: the"
    " --data_dir's test split, named after its folder).",
)
_PEOPLE = flags.DEFINE_list(
    "people",
    ["lfw"],
    "Populations whose file names are LFW's (Person_Name_0001): a person's photos are resampled"
    " together.",
)
_RUNS = flags.DEFINE_string("runs", "runs/study", "Folder of the training runs.")
_OUT = flags.DEFINE_string("out", "reports/study", "Report folder.")
_CONFIG = flags.DEFINE_string("config", "cpu64", "Preset of every run.")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Training seeds per regime (0, 1, ...).")
_CHUNK = flags.DEFINE_integer("chunk", 1500, "Steps per launch.py run before it is resumed.")
_PARALLEL = flags.DEFINE_integer("parallel", 3, "Runs trained at a time.")
_NUM_IMAGES = flags.DEFINE_integer("num_images", 500, "First N test faces of each population.")
_FRACTIONS = flags.DEFINE_list(
    "fractions",
    ["0.333", "0.667", "1"],
    "Compare at the checkpoints nearest these fractions of the schedule.",
)
_RESAMPLES = flags.DEFINE_integer("resamples", 10_000, "Bootstrap resamples per interval.")
_BUDGET = flags.DEFINE_float(
    "budget_s",
    0,
    "Seconds of training (0: no limit): no round of chunks starts that would end later.",
)
_LAUNCH_FLAGS = flags.DEFINE_list(
    "launch_flags",
    [],
    "More launch.py flags for every run, e.g. --config.compute_dtype=bfloat16,--config.checkpoint_every=500.",
)
_TRAIN_ONLY = flags.DEFINE_bool("train_only", False, "Stop after training.")
_SCORE_ONLY = flags.DEFINE_bool(
    "score_only",
    False,
    "Train nothing: score the runs at their last common step as they are (while they train"
    " elsewhere, or stopped early).",
)
_COMPARE_REPORT = flags.DEFINE_bool(
    "compare_report", False, "Also compare.py's report (baselines, grids) of seed 0 in OUT/seed0."
)
_REAL_PATCHES = flags.DEFINE_enum(
    "real_patches",
    "hole",
    ["hole", "uniform"],
    "Where the local discriminator's real patches are cut: at the fake ones' hole-centred boxes,"
    " or uniformly at random (the study's first results).",
)
flags.mark_flag_as_required("data_dir")


class StudyUsageError(Exception):
    """A flag or folder the study cannot use: one line, exit 2."""


def run_dirs() -> dict[tuple[str, int], pathlib.Path]:
    """(regime, seed) -> its workdir."""
    root = pathlib.Path(_RUNS.value)
    return {(r, s): root / f"seed{s}" / r for s in range(_SEEDS.value) for r in REGIMES}


def _progress(workdir: pathlib.Path) -> tuple[int | None, int | None]:
    """(latest checkpoint step, the run's own total steps), (None, None) without checkpoints."""
    from glcic_jax import runs
    from glcic_jax.completion import inference

    if not runs.checkpoint_dir(workdir).is_dir():
        return None, None
    with runs.RunReader(workdir) as run:
        step = run.latest_step()
    if step is None:
        return None, None
    return step, int(inference.load_config(workdir, step).total_steps)


def _chunk_command(
    regime: str, seed: int, workdir: pathlib.Path, resume: bool, steps: int
) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "launch.py"),
        f"--mask={regime}",
        f"--config={_CONFIG.value}",
        f"--data_dir={_DATA_DIR.value}",
        f"--workdir={workdir}",
        f"--seed={seed}",
        f"--steps_per_run={steps}",
        f"--config.real_patches={_REAL_PATCHES.value}",
        *_LAUNCH_FLAGS.value,
        *(["--resume"] if resume else []),
    ]


def train_runs(preset_total: int) -> None:
    """Run chunks until every run is at the end of its schedule, --parallel at a time.

    Chunks go in rounds that bring every run behind the next common chunk
    boundary to it (round_plan), so an interrupted study comes back to equal
    steps before any run goes further; with --budget_s, no round starts that
    the last one's duration says would not end within the budget.
    """
    dirs = run_dirs()
    start, last_round, before = time.monotonic(), 0.0, None
    while True:
        todo = []
        for key, workdir in dirs.items():
            step, total = _progress(workdir)
            if step is not None and step >= total:
                print(f"{key[0]} seed {key[1]}: done (step {step})", flush=True)
            else:
                todo.append((key, step, total))
        if not todo:
            return
        if before is not None and all(before[key] == step for key, step, _ in todo):
            sys.exit(
                "error: a round of chunks ended with no run further on (see the runs' .log files)"
            )
        before = {key: step for key, step, _ in todo}
        elapsed = time.monotonic() - start
        if _BUDGET.value and elapsed + last_round > _BUDGET.value:
            print(f"budget: {elapsed:.0f} s used, a round takes {last_round:.0f} s: training stops")
            return
        round_start = time.monotonic()
        _train_round(round_plan(todo, _CHUNK.value, preset_total), preset_total)
        last_round = time.monotonic() - round_start


def round_plan(todo: list, chunk: int, preset_total: int) -> list:
    """[(key, step, total, steps to train)] of the runs in `todo` [(key, step, total)]
    behind the next chunk boundary any of them reaches: each is trained to it."""
    target = min(((step or 0) // chunk + 1) * chunk for _, step, _ in todo)
    plan = []
    for key, step, total in todo:
        end = min(target, total or preset_total)
        if (step or 0) < end:
            plan.append((key, step, total, end - (step or 0)))
    return plan


def _train_round(todo: list, preset_total: int) -> None:
    """One chunk of each run in `todo` [(key, step, total, steps)], --parallel at a time."""
    dirs = run_dirs()
    active: dict = {}
    pending = list(todo)
    while pending or active:
        while pending and len(active) < _PARALLEL.value:
            key, step, total, steps = pending.pop(0)
            print(
                f"{key[0]} seed {key[1]}: steps {step or 0} to {(step or 0) + steps}"
                f" of {total or preset_total}",
                flush=True,
            )
            dirs[key].parent.mkdir(parents=True, exist_ok=True)
            active[key] = subprocess.Popen(
                _chunk_command(*key, dirs[key], resume=step is not None, steps=steps),
                stdout=subprocess.DEVNULL,
                stderr=open(dirs[key].with_suffix(".log"), "a"),
            )
        key, proc = _wait_any(active)
        if proc.returncode != 0:
            for other in active.values():  # SIGTERM: each saves a checkpoint and stops
                other.terminate()
                other.wait()
            sys.exit(
                f"error: {key[0]} seed {key[1]} stopped with code {proc.returncode}"
                f" (see {dirs[key]}.log)"
            )


def _wait_any(active: dict):
    while True:
        for key, proc in list(active.items()):
            if proc.poll() is not None:
                del active[key]
                return key, proc
        time.sleep(2)


def populations() -> dict[str, pathlib.Path]:
    """NAME -> data folder, from --populations (checked)."""
    items = _POPULATIONS.value or [f"{pathlib.Path(_DATA_DIR.value).name}={_DATA_DIR.value}"]
    out = {}
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise StudyUsageError(f"--populations takes NAME=DIR items, not {item!r}")
        if not (pathlib.Path(folder) / "test").is_dir():
            raise StudyUsageError(f"population {name}: {folder}/test does not exist")
        out[name] = pathlib.Path(folder)
    return out


def fractions() -> list[float]:
    """--fractions, checked."""
    try:
        values = [float(f) for f in _FRACTIONS.value]
    except ValueError:
        raise StudyUsageError(f"--fractions must be numbers, not {','.join(_FRACTIONS.value)}")
    if not values or not all(0 < f <= 1 for f in values):
        raise StudyUsageError("--fractions must be in (0, 1]")
    return values


def compared_steps(steps: list[int]) -> list[int]:
    """The checkpoints nearest --fractions of the runs' last common step."""
    last = steps[-1]
    return sorted({min(steps, key=lambda s: abs(s - f * last)) for f in fractions()})


def score_all(pops: dict, steps: list[int]) -> list[dict]:
    """Every run's rows on every population at `steps`, from OUT/scores/ where already there."""
    from tqdm import tqdm

    from glcic_jax.completion import inference
    from glcic_jax.evaluation import evalset, study_scores, tables

    dirs = run_dirs()
    size = inference.load_config(dirs["mouth", 0], steps[-1]).image_size
    rows = []
    with tqdm(total=len(pops) * len(dirs) * len(steps), desc="scoring", unit="ckpt") as bar:
        for name, folder in pops.items():
            eval_set = evalset.build_eval_set(folder, size, "mouth", _NUM_IMAGES.value)
            expected = [(step, pathlib.Path(f).name) for step in steps for f in eval_set.files]
            for (regime, seed), workdir in dirs.items():
                path = pathlib.Path(_OUT.value) / "scores" / name / f"seed{seed}_{regime}.csv"
                old = tables.read_csv(path) if path.is_file() else []
                if [(r["step"], str(r["image"])) for r in old] == expected:  # same steps and faces
                    rows += old
                    bar.update(len(steps))
                    continue
                keys = dict(population=name, seed=seed, regime=regime)
                new = study_scores.score_run(
                    workdir,
                    eval_set,
                    steps,
                    keys,
                    progress=bar.update,
                    by_person=name in _PEOPLE.value,
                )
                partial = path.with_suffix(".partial")  # a kill never leaves a short CSV in place
                tables.write_csv(partial, new)
                os.replace(partial, path)
                rows += new
    return rows


def report(pops: dict, rows: list[dict], steps: list[int], config) -> pathlib.Path:
    from glcic_jax.evaluation import seed_report, seed_study, study_scores

    scores = seed_study.collect(rows)
    analyses = {}
    for name in pops:
        analyses[name] = {step: {} for step in steps}
        for step in steps:
            for m in study_scores.METRICS:
                try:
                    analyses[name][step][m] = seed_study.analyse_step(
                        scores[name], step, m, _RESAMPLES.value, share_only=step != steps[-1]
                    )
                except seed_study.StudyError as e:
                    print(f"note: {name}: {e}: left out of the report")
    setup = [
        f"Preset `{_CONFIG.value}` ({config.image_size} px, {config.total_steps:,} steps,"
        f" batch {config.batch_size}), real patches `{_REAL_PATCHES.value}`; seeds"
        f" 0..{_SEEDS.value - 1} of each regime, trained on {_DATA_DIR.value}. Scored on the mouth"
        f" box of the first {_NUM_IMAGES.value} test faces of: "
        + ", ".join(f"{n} (`{f}`)" for n, f in pops.items())
        + f". Steps compared: {', '.join(f'{s:,}' for s in steps)}. LPIPS (AlexNet) of the hole's"
        f" box scaled to {study_scores.LPIPS_SIDE} px. People: "
        + (
            ", ".join(n for n in pops if n in _PEOPLE.value)
            + " photos are grouped by the person LFW's file names name (a person's photos are"
            " resampled together); elsewhere each photo counts as its own person."
            if any(n in _PEOPLE.value for n in pops)
            else "each photo counts as its own person."
        )
    ]
    command = "python " + " ".join(
        shlex.quote(a) for a in [f"experiments/{pathlib.Path(sys.argv[0]).name}", *sys.argv[1:]]
    )
    return seed_report.write_report(_OUT.value, scores, analyses, setup, command)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.ERROR)
    from glcic_jax import runs
    from glcic_jax.dataset import folders
    from glcic_jax.evaluation import comparison, seed_study
    from glcic_jax.training import configs

    try:
        config = configs.get_config(_CONFIG.value)
        if not _BUDGET.value >= 0:
            raise StudyUsageError(f"--budget_s must be >= 0, not {_BUDGET.value}")
        for flag, low in (
            (_SEEDS, 1),
            (_CHUNK, 1),
            (_PARALLEL, 1),
            (_NUM_IMAGES, 1),
            (_RESAMPLES, 100),
        ):
            if flag.value < low:
                raise StudyUsageError(f"--{flag.name} must be >= {low}, not {flag.value}")
        if not pathlib.Path(_DATA_DIR.value).is_dir():
            raise StudyUsageError(
                f"data folder {_DATA_DIR.value} does not exist (build it with: python "
                "experiments/prepare_data.py --source=PHOTOS --out=DIR --min_face=0)"
            )
        if _TRAIN_ONLY.value and _SCORE_ONLY.value:
            raise StudyUsageError("--train_only and --score_only exclude each other")
        pops = populations()
        fractions()
    except (configs.ConfigError, StudyUsageError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    pathlib.Path(_RUNS.value).mkdir(parents=True, exist_ok=True)
    if not _SCORE_ONLY.value:
        train_runs(config.total_steps)
    if _TRAIN_ONLY.value:
        return
    try:
        labels = {f"{r} seed {s}": str(w) for (r, s), w in run_dirs().items()}
        steps = compared_steps(comparison.common_steps(labels))
        rows = score_all(pops, steps)
        path = report(pops, rows, steps, config)
    except (runs.CheckpointError, seed_study.StudyError, StudyUsageError, folders.DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {path}")
    if _COMPARE_REPORT.value:
        dirs = run_dirs()
        command = [
            sys.executable,
            str(ROOT / "experiments" / "compare.py"),
            *(f"--{r}={dirs[r, 0]}" for r in REGIMES),
            f"--data_dir={_DATA_DIR.value}",
            f"--out={pathlib.Path(_OUT.value) / 'seed0'}",
            f"--num_images={_NUM_IMAGES.value}",
        ]
        sys.exit(subprocess.run(command).returncode)


if __name__ == "__main__":
    app.run(main)

"""Evaluate every checkpoint of a training run on the test split, beside the baselines.

  python experiments/evaluate.py --workdir=runs/mouth-cpu64 \
      --data_dir=data/celeba10k-aligned --mask=mouth [--steps=500,4000] [--num_images=500]

Writes into WORKDIR/eval/ (or --out):
  metrics.csv        one row per hole set x checkpoint step x method (the model,
                     mean fill, Telea, Navier-Stokes): every metric's mean, 95%
                     bootstrap interval (ci_low, ci_high) and n finite values
  per_image.csv      every metric of every image, for paired comparisons
  <mask>_<metric>.png  each metric against the training step (the study's figure)
  <mask>_grid.png    original | masked | this model | Telea at the last step

Re-running with the other --mask (or other steps) adds to the CSVs and
replaces rows it re-evaluates. Wiring only: the work is in
glcic_jax.evaluation (evalset, sweep, scoring, summaries, tables, figures).
"""

import pathlib
import sys

from absl import app, flags, logging

from glcic_jax import holes
from glcic_jax.evaluation import evalset, figures, metrics, scoring, summaries, sweep, tables

_WORKDIR = flags.DEFINE_string("workdir", None, "Training run folder (has checkpoints/).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Data folder with the test split.")
_MASK = flags.DEFINE_enum("mask", None, holes.BOX_REGIMES, "Hole set to evaluate on.")
_STEPS = flags.DEFINE_list("steps", None, "Checkpoint steps (default: all).")
_NUM_IMAGES = flags.DEFINE_integer("num_images", None, "First N test images (default: all).")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Images per jitted model call.")
_GRID = flags.DEFINE_integer("grid_images", 8, "Rows of the result grid.")
_OUT = flags.DEFINE_string("out", None, "Output folder (default: WORKDIR/eval).")
flags.mark_flags_as_required(["workdir", "data_dir", "mask"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from tqdm import tqdm

    from glcic_jax import runs
    from glcic_jax.completion import inference
    from glcic_jax.dataset import folders

    # Orbax warns on every read-only open; the progress bar says what matters.
    logging.set_verbosity(logging.ERROR)
    try:
        requested = [int(s) for s in _STEPS.value or []]
    except ValueError:
        _fail(f"--steps must be integers, got {','.join(_STEPS.value)}")
    try:
        steps = sweep.checkpoint_steps(_WORKDIR.value, requested)
        config = inference.load_config(_WORKDIR.value, steps[-1])
        if config.framing != "canvas":
            _fail(
                f"{_WORKDIR.value} frames faces by the {config.framing!r}; the hole sets are boxes"
                " on the study's canvas (score it with experiments/eval_pasted_masks.py)"
            )
        eval_set = evalset.build_eval_set(
            _DATA_DIR.value, config.image_size, _MASK.value, _NUM_IMAGES.value
        )
    except (runs.CheckpointError, folders.DataError) as e:
        _fail(str(e))
    label = f"{config.mask}-trained"
    out = pathlib.Path(_OUT.value or pathlib.Path(_WORKDIR.value) / "eval")
    print(f"{label} model, steps {steps}; {eval_set.describe()}")

    with tqdm(total=len(steps), desc="checkpoints", unit="ckpt") as bar:
        model = sweep.sweep_checkpoints(
            _WORKDIR.value, eval_set, steps, label, _BATCH.value, progress=bar.update
        )
    completed = scoring.run_baselines(eval_set, model.mean_pixel)
    base_scores = {m: scoring.score(eval_set, c) for m, c in completed.items()}

    summary, per_image = [], []
    for step in steps:
        scores = {label: model.per_image[step], **base_scores}
        for method, per in scores.items():
            keys = dict(hole_set=_MASK.value, step=step, method=method)
            summary.append(summaries.summary_row(per, **keys))
            per_image += summaries.per_image_rows(per, eval_set, **keys)
    _merge_into(out / "metrics.csv", summary, ("hole_set", "step", "method"))
    _merge_into(out / "per_image.csv", per_image, ("hole_set", "step", "method", "image"))

    rows = [r for r in tables.read_csv(out / "metrics.csv") if r["hole_set"] == _MASK.value]
    for metric in metrics.REPORTED_METRICS:
        title = f"{metric}: {label} on {_MASK.value} holes, {len(eval_set)} images"
        figures.plot_metric(rows, metric, out / f"{_MASK.value}_{metric}.png", title)
    last = steps[-1]
    figures.result_grid(
        eval_set,
        {f"{label} @{last}": model.completed[last], "telea": completed["telea"]},
        out / f"{_MASK.value}_grid.png",
        _GRID.value,
    )
    _print_table(summary, last)
    print(f"wrote {out}/metrics.csv, per_image.csv and {_MASK.value}_*.png")


def _merge_into(path: pathlib.Path, rows, key_fields):
    old = tables.read_csv(path) if path.exists() else []
    tables.write_csv(path, tables.merge_rows(old, rows, key_fields))


def _print_table(summary, step):
    shown = ("psnr_hole", "ssim_hole", "l1_hole", "feature_distance")
    print(f"\nstep {step}: mean (95% interval)")
    print("| method | " + " | ".join(shown) + " |")
    for r in (r for r in summary if r["step"] == step):
        cells = [
            f"{r[k + '_mean']:.3f} ({r[k + '_ci_low']:.3f}..{r[k + '_ci_high']:.3f})" for k in shown
        ]
        print(f"| {r['method']} | " + " | ".join(cells) + " |")


def _fail(message: str):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    app.run(main)

"""The study's question in one command: mouth-trained vs random-trained, per image.

  python experiments/compare.py --random=runs/random-cpu64 --mouth=runs/mouth-cpu64 \
      --data_dir=data/celeba10k-aligned --out=reports/cpu64 [--num_images=500] \
      [--random_mouthsize=runs/random_mouthsize-cpu64]

With --random_mouthsize the size-matched control (mouth-box-sized holes at
random positions) is a third model, compared with each of the other two.
Runs are training workdirs or folders of exported model files.

On the mouth hole (the study's question) and on random holes (the reverse
one), scores both models at every common checkpoint step and the baselines
on the same images and holes, then compares the models per image (bootstrap
interval of the mean difference, sign test). Writes into --out:
  report.md          readable on its own: setup, metrics, tables, figures
  summary.csv        hole set x step x method: mean, 95% interval, n
  differences.csv    hole set x step x pair x metric: paired difference, test
  per_image.csv      every metric of every image
  <hole set>_panel.png, <hole set>_<metric>.png, <hole set>_grid.png

Wiring only: the work is in glcic_jax.evaluation (comparison, evalset, tables, figures).
"""

import pathlib
import sys

from absl import app, flags, logging

from glcic_jax.evaluation import evalset, metrics, paired, tables

# Models in comparison order: each later one is compared with each earlier one
# (mouth - random first). A further model is one more entry and its flag.
MODELS = {
    "random": flags.DEFINE_string("random", None, "Run trained on random holes."),
    "mouth": flags.DEFINE_string("mouth", None, "Run trained on the mouth hole."),
    "random_mouthsize": flags.DEFINE_string(
        "random_mouthsize", None, "Run trained on mouth-box-sized holes at random positions."
    ),
}
REQUIRED = ("random", "mouth")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Data folder with the test split.")
_OUT = flags.DEFINE_string("out", None, "Report folder.")
_NUM_IMAGES = flags.DEFINE_integer("num_images", None, "First N test images (default: all).")
_STEPS = flags.DEFINE_list("steps", None, "Checkpoint steps (default: all common ones).")
_HOLE_SETS = flags.DEFINE_list("hole_sets", ["mouth", "random"], "Hole sets to compare on.")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Images per jitted model call.")
_GRID = flags.DEFINE_integer("grid_images", 8, "Rows of the result grids.")
flags.mark_flags_as_required(["data_dir", "out", *REQUIRED])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from tqdm import tqdm

    from glcic_jax import runs
    from glcic_jax.completion import inference
    from glcic_jax.dataset import folders
    from glcic_jax.evaluation import comparison, figures

    logging.set_verbosity(logging.ERROR)  # Orbax warns on every read-only open
    workdirs = {f"{name}-trained": flag.value for name, flag in MODELS.items() if flag.value}
    bad = [h for h in _HOLE_SETS.value if h not in evalset.HOLE_SETS]
    if bad:
        _fail(f"unknown --hole_sets {bad}; choose from {list(evalset.HOLE_SETS)}")
    try:
        requested = [int(s) for s in _STEPS.value or []]
    except ValueError:
        _fail(f"--steps must be integers, got {','.join(_STEPS.value)}")
    try:
        steps = comparison.common_steps(workdirs, requested)
        sizes = {inference.load_config(w, steps[-1]).image_size for w in workdirs.values()}
        if len(sizes) > 1:
            _fail(f"the runs have different image sizes {sorted(sizes)}")
        size = sizes.pop()
        eval_sets = [
            evalset.build_eval_set(_DATA_DIR.value, size, h, _NUM_IMAGES.value)
            for h in _HOLE_SETS.value
        ]
    except (runs.CheckpointError, folders.DataError) as e:
        _fail(str(e))
    print(f"{' vs '.join(workdirs)} at steps {steps}")

    out = pathlib.Path(_OUT.value)
    results, figure_files = [], {}
    total = len(steps) * len(workdirs) * len(eval_sets)
    with tqdm(total=total, desc="checkpoints", unit="ckpt") as bar:
        for eval_set in eval_sets:
            bar.write(eval_set.describe())
            results.append(
                comparison.compare_on_hole_set(
                    workdirs, eval_set, steps, _BATCH.value, progress=bar.update
                )
            )
    for r in results:
        hs = r.eval_set.hole_set
        title = f"{hs} holes, {len(r.eval_set)} test images"
        for metric in metrics.REPORTED_METRICS:
            figures.plot_metric(r.summary, metric, out / f"{hs}_{metric}.png", title)
        figure_files[hs, "panel"] = f"{hs}_panel.png"
        figures.plot_metrics_panel(
            r.summary, metrics.REPORTED_METRICS, out / figure_files[hs, "panel"], title
        )
        figure_files[hs, "grid"] = f"{hs}_grid.png"
        columns = {label: r.completed[label] for label in r.labels} | {
            "telea": r.completed["telea"]
        }
        figures.result_grid(
            r.eval_set, columns, out / figure_files[hs, "grid"], _GRID.value, f"step {steps[-1]}"
        )
    tables.write_csv(out / "summary.csv", [row for r in results for row in r.summary])
    tables.write_csv(out / "differences.csv", [row for r in results for row in r.diffs])
    tables.write_csv(out / "per_image.csv", [row for r in results for row in r.per_image])
    report = comparison.write_report(out, results, workdirs, figure_files)
    for r in results:
        a, b = paired.comparison_pairs(r.labels)[0]
        print(f"{r.eval_set.hole_set} holes: {comparison.headline(r, a, b)}")
    print(f"wrote {report}")


def _fail(message: str):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    app.run(main)

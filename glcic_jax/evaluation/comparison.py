"""Compare trained models per image on one fixed evaluation set, and write the report.

The study's question is "on the mouth hole, does the model trained on the
mouth hole beat the one trained on random holes?"; the reverse question asks
the same on random holes. :func:`compare_on_hole_set` answers one hole set
for any number of models (a later size-matched control is a third one): each
model is scored at every common checkpoint step, the baselines once, and
every pair of models (:func:`paired.comparison_pairs`) is compared per
image. :func:`write_report` turns the results into a self-contained
``report.md``.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from glcic_jax import holes, runs
from glcic_jax.evaluation import baselines, metrics, paired, scoring, stats, summaries, sweep
from glcic_jax.evaluation.evalset import EvalSet


@dataclasses.dataclass
class HoleSetResult:
    """Everything measured on one hole set.

    Attributes:
      eval_set: the images and holes.
      steps: the checkpoint steps compared.
      labels: the models, in comparison order (see `comparison_pairs`).
      mean_pixel: the mean-fill baseline's pixel (the first model's).
      summary: `summaries.summary_row`s, one per step x method.
      per_image: `summaries.per_image_rows`, one per step x method x image.
      diffs: one row per step x pair x metric (`diff_rows`).
      completed: method -> completions at the last step (models and baselines).
    """

    eval_set: EvalSet
    steps: list
    labels: list
    mean_pixel: np.ndarray
    summary: list
    per_image: list
    diffs: list
    completed: dict


def common_steps(workdirs: Mapping[str, str], requested: Sequence[int] | None = None) -> list:
    """Checkpoint steps every workdir has (or `requested`, checked in each).

    Raises:
      runs.CheckpointError: a missing workdir or step, or no common step.
    """
    have = {label: sweep.checkpoint_steps(w, requested) for label, w in workdirs.items()}
    steps = sorted(set.intersection(*(set(s) for s in have.values())))
    if not steps:
        listing = "; ".join(f"{label}: {s}" for label, s in have.items())
        raise runs.CheckpointError(f"the runs share no checkpoint step ({listing})")
    return steps


def diff_rows(per_image: Mapping[str, Mapping], pairs, hole_set: str, step: int) -> list[dict]:
    """Paired differences a - b of every metric, one CSV row per pair x metric."""
    rows = []
    for a, b in pairs:
        for metric, d in paired.paired_differences(per_image[a], per_image[b]).items():
            rows.append(
                dict(hole_set=hole_set, step=step, a=a, b=b, metric=metric)
                | dict(better=metrics.direction(metric), **d)
                | dict(verdict=paired.verdict(d, metric))
            )
    return rows


def compare_on_hole_set(
    workdirs: Mapping[str, str],
    eval_set: EvalSet,
    steps: Sequence[int],
    batch_size: int = 16,
    progress: Callable[[], object] | None = None,
) -> HoleSetResult:
    """Score every model (label -> workdir) at `steps` and the baselines; compare pairs.

    The mean-fill baseline uses the first model's training mean pixel.
    """
    labels = list(workdirs)
    sweeps = {
        label: sweep.sweep_checkpoints(w, eval_set, steps, label, batch_size, 1, progress)
        for label, w in workdirs.items()
    }
    mean_pixel = sweeps[labels[0]].mean_pixel
    base = scoring.run_baselines(eval_set, mean_pixel)
    base_scores = {m: scoring.score(eval_set, c) for m, c in base.items()}
    pairs = paired.comparison_pairs(labels)
    summary, per_image, diffs = [], [], []
    for step in steps:
        scores = {label: sweeps[label].per_image[step] for label in labels} | base_scores
        for method, per in scores.items():
            keys = dict(hole_set=eval_set.hole_set, step=step, method=method)
            summary.append(summaries.summary_row(per, **keys))
            per_image += summaries.per_image_rows(per, eval_set, **keys)
        diffs += diff_rows(scores, pairs, eval_set.hole_set, step)
    completed = {label: sweeps[label].completed[steps[-1]] for label in labels} | base
    return HoleSetResult(
        eval_set, list(steps), labels, mean_pixel, summary, per_image, diffs, completed
    )


# ---------------------------------------------------------------------------
# report.md
# ---------------------------------------------------------------------------

QUESTIONS = {
    "mouth": "On the mouth hole (the study's question)",
    "random": "On random holes (the reverse question, which the study did not ask)",
}


def _ci(mean, lo, hi, digits=3) -> str:
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _signed_ci(mean, lo, hi, digits=3) -> str:
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _hole_description(eval_set: EvalSet) -> str:
    hole_set = eval_set.hole_set
    size = eval_set.image_size
    if hole_set == "mouth":
        top, left, h, w = holes.MOUTH_HOLE
        t, lft, hh, ww = (int(v) for v in eval_set.boxes[0])
        return (
            f"the study's mouth box on every image (x {left}, y {top}, {w} wide x {h} high on "
            f"the 256 canvas; at {size} px rows {t}..{t + hh - 1}, columns {lft}..{lft + ww - 1})"
        )
    lo, hi = holes.RANDOM_TOP_LEFT
    slo, shi = holes.RANDOM_SIDE
    return (
        f"one random box per image, drawn once by `holes.sample_boxes(jax.random.key("
        f"{eval_set.seed}), 'random', N, {size})` (top-left {lo}..{hi}, sides {slo}..{shi} on the "
        f"256 canvas, scaled to {size} px); the same boxes for every model and baseline"
    )


def _final_table(result: HoleSetResult) -> list[str]:
    step = result.steps[-1]
    rows = []
    for r in (r for r in result.summary if r["step"] == step):
        cells = [_ci(r[f"{m}_mean"], r[f"{m}_ci_low"], r[f"{m}_ci_high"]) for m in _metrics()]
        rows.append([f"**{r['method']}**" if r["method"] in result.labels else r["method"], *cells])
    return _table(["method", *_metrics()], rows)


def _pair_table(result: HoleSetResult, a: str, b: str, step: int) -> list[str]:
    rows = []
    for d in result.diffs:
        if (d["step"], d["a"], d["b"]) != (step, a, b) or d["metric"] not in _metrics():
            continue
        rows.append(
            [
                d["metric"],
                d["better"],
                _signed_ci(d["mean_diff"], d["ci_low"], d["ci_high"]),
                f"{d['a_better']} / {d['b_better']} / {d['ties']}",
                d["n_dropped"],
                f"{d['p_value']:.3g}",
                d["verdict"].replace("a better", f"{a} better").replace("b better", f"{b} better"),
            ]
        )
    header = ["metric", "better", "mean a - b [95% CI]", "a better / b better / ties", "dropped"]
    return _table(header + ["sign test p", "verdict"], rows)


def _steps_table(result: HoleSetResult, a: str, b: str) -> list[str]:
    rows = []
    for step in result.steps:
        by_metric = {
            d["metric"]: d for d in result.diffs if (d["step"], d["a"], d["b"]) == (step, a, b)
        }
        cells = [
            f"{_signed_ci(d['mean_diff'], d['ci_low'], d['ci_high'])}, p={d['p_value']:.2g}"
            for d in (by_metric[m] for m in _metrics())
        ]
        rows.append([step, *cells])
    return _table(["step", *_metrics()], rows)


def _metrics() -> tuple[str, ...]:
    return metrics.REPORTED_METRICS


def headline(result: HoleSetResult, a: str, b: str) -> str:
    step = result.steps[-1]
    parts = []
    for d in result.diffs:
        if (d["step"], d["a"], d["b"]) != (step, a, b) or d["metric"] not in (
            "psnr_hole",
            "feature_distance",
        ):
            continue
        better = d["a_better"]
        parts.append(
            f"{d['metric']} {_signed_ci(d['mean_diff'], d['ci_low'], d['ci_high'])} "
            f"({a} better on {better} of {d['n']} images, sign test p={d['p_value']:.2g}: "
            f"{d['verdict'].replace('a better', a + ' better').replace('b better', b + ' better')})"
        )
    return f"At step {step}, {a} minus {b}: " + "; ".join(parts) + "."


def write_report(
    out, results: Sequence[HoleSetResult], workdirs: Mapping[str, str], figure_files: Mapping
) -> pathlib.Path:
    """Write ``out/report.md``.

    Args:
      out: the report folder (figures and CSVs already written there).
      results: one :class:`HoleSetResult` per hole set, same models.
      workdirs: label -> training run folder.
      figure_files: (hole_set, kind) -> file name in `out`, kind "panel" or "grid".
    """
    out = pathlib.Path(out)
    first = results[0]
    es = first.eval_set
    labels = first.labels
    pairs = paired.comparison_pairs(labels)
    names = " vs ".join(labels)
    lines = [f"# {names}: per-image comparison of GLCIC completion models", ""]
    for r in results:
        for a, b in pairs[:1]:
            lines += [f"- {QUESTIONS[r.eval_set.hole_set]}: {headline(r, a, b)}"]
    lines += ["", "## Setup", ""]
    lines += [
        f"- **Data**: the test split of `{es.data_dir}` (never seen in training), the first "
        f"{len(es)} readable images in file order, centre-cropped and resized (LANCZOS) to "
        f"{es.image_size} x {es.image_size} px. The file of each image is in `per_image.csv`.",
        "- **Models** (each at every common checkpoint step "
        f"{', '.join(str(s) for s in first.steps)}):",
    ]
    for label, workdir in workdirs.items():
        lines.append(f"  - {label}: `{workdir}`")
    lines += ["- **Holes** (one per image, identical for every method):"]
    for r in results:
        lines.append(f"  - {r.eval_set.hole_set}: {_hole_description(r.eval_set)}")
    mp = ", ".join(f"{v:.3f}" for v in first.mean_pixel)
    lines += [
        "- **Baselines** on the same images and holes: `mean` fills the hole with the "
        f"training set's mean pixel of {labels[0]} (RGB {mp}), which is also the models' hole "
        f"fill; `telea` and `ns` are OpenCV's inpainting (Telea; Navier-Stokes), radius "
        f"{baselines.DEFAULT_INPAINT_RADIUS} px.",
        "- **Protocol**: each completion is pasted into the original outside the hole and "
        "rounded to uint8 before measuring.",
        f"- **Statistics**: means with {stats.CONFIDENCE:.0%} percentile-bootstrap "
        f"intervals ({stats.BOOTSTRAP_RESAMPLES:,} resamples). Paired comparisons take "
        "per-image differences a - b, a bootstrap interval of their mean and an exact "
        "two-sided sign test (ties and pairs with a non-finite value are dropped and "
        "counted). The verdict says a model is better only when the interval excludes 0 "
        "and p < 0.05; with this many metrics, steps and hole sets, an isolated p near "
        "0.05 is weak evidence.",
        "",
        "## Metrics",
        "",
    ]
    lines += _table(
        ["metric", "better", "meaning"],
        [[m, metrics.direction(m), metrics.METRIC_DESCRIPTIONS[m]] for m in _metrics()],
    )
    lines += [
        "",
        "`summary.csv` also has l1_hole_x100 and l1_full_255 (rescaled L1, mmagic's units) "
        "and feature_matches (the ORB match count behind feature_distance).",
    ]
    for r in results:
        hs = r.eval_set.hole_set
        step = r.steps[-1]
        lines += ["", f"## {QUESTIONS[hs]}", ""]
        lines += [f"### All methods at step {step}: mean [95% CI]", ""]
        lines += _final_table(r)
        for a, b in pairs:
            lines += ["", f"### {a} minus {b}, per image, at step {step}", ""]
            lines += _pair_table(r, a, b, step)
            lines += ["", f"### {a} minus {b} at every step: mean difference [95% CI], p", ""]
            lines += _steps_table(r, a, b)
        lines += ["", f"![metrics against steps, {hs} holes]({figure_files[hs, 'panel']})", ""]
        lines += [f"![results on {hs} holes at step {step}]({figure_files[hs, 'grid']})"]
    lines += [
        "",
        "## Files",
        "",
        "- `summary.csv`: one row per hole set x step x method, every metric's mean, "
        "interval and n.",
        "- `differences.csv`: one row per hole set x step x pair x metric.",
        "- `per_image.csv`: every metric of every image.",
        "- `<hole set>_<metric>.png`: each metric against the step.",
        "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path

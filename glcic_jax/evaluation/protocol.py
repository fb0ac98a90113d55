"""The fixed evaluation set, per-image metrics of models and baselines, and their summaries.

The evaluation scripts (``experiments/evaluate.py``, ``experiments/compare.py``)
are wiring around this module:

    eval_set = build_eval_set(data_dir, image_size=64, hole_set="mouth")
    per_image = {"telea": score(eval_set, run_baselines(eval_set, mean_pixel)["telea"])}
    per_image["mouth-trained"] = score(eval_set, completer.complete(eval_set.images, eval_set.holes))
    rows = summary_rows(per_image, step=4000, hole_set="mouth")
    diffs = paired_differences(per_image["mouth-trained"], per_image["random-trained"])

The evaluation set is the test split (``folders.list_images(data_dir, "test")``,
in its fixed order; unreadable files are skipped and the first ``num_images``
readable ones kept) with one hole per image: the study's mouth box for the
``mouth`` hole set, or boxes drawn by ``holes.sample_boxes`` from
``jax.random.key(HOLE_SEED)`` for the ``random`` hole set (the same regime as
training, but a stream no training step uses). The holes depend only on
(hole set, number of images, image size), so every model and baseline is
measured on exactly the same images and holes.

Scoring follows the protocol of ``glcic_jax.evaluation.metrics``: the completion is
composited into the original outside the hole, rounded to uint8, then
measured. Summaries are means with 95% percentile-bootstrap intervals
(``stats.summarize``, which drops and counts non-finite values such as a NaN
feature distance); paired comparisons are per-image differences with a
bootstrap interval of their mean and a sign test.

Plots use matplotlib's Agg backend (files only, no display).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import pathlib
from collections.abc import Mapping, Sequence

import jax
import numpy as np

from glcic_jax.evaluation import baselines, metrics, stats
from glcic_jax.dataset import folders
from glcic_jax import holes

# Seed of the random hole set. 0 is what experiments/bench_baselines.py and
# ../shared/BASELINES.md use; training draws its holes from
# fold_in(key(config.seed), step), a different stream.
HOLE_SEED = 0
HOLE_SETS = holes.BOX_REGIMES
BASELINE_METHODS = baselines.METHODS  # mean, telea, ns
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 10_000

# Metrics in reports and plots: METRIC_KEYS less the rescalings and counts,
# which stay in the CSVs.
_CSV_ONLY = ("l1_hole_x100", "l1_full_255", "feature_matches")
REPORTED_METRICS = tuple(k for k in metrics.METRIC_KEYS if k not in _CSV_ONLY)
METRIC_DESCRIPTIONS = {
    "psnr_hole": "PSNR in dB (data range 1) over the hole pixels",
    "ssim_hole": "SSIM (scikit-image defaults) of the crop to the hole's box",
    "l1_hole": "mean absolute error on [0, 1] over the hole pixels",
    "psnr_full": "PSNR in dB over the whole image (mmagic's PSNR)",
    "ssim_full": "SSIM of the whole image (scikit-image defaults)",
    "l1_full": "mean absolute error on [0, 1] over the whole image",
    "l1_hole_x100": "100 x l1_hole (mmagic's inpainting 'l1 error')",
    "l1_full_255": "l1_full on the 0..255 scale",
    "ssim_full_mmagic": "whole-image SSIM, 11x11 Gaussian window (mmagic, Wang et al.)",
    "feature_distance": (
        "the study's score: mean Hamming distance of the 50 best cross-checked ORB "
        "matches between original and completion (NaN with fewer than 10 matches)"
    ),
    "feature_matches": "number of cross-checked ORB matches (informational)",
}


def direction(metric: str) -> str:
    """ "higher" or "lower" is better; "none" for informational counts."""
    if metric == "feature_matches":
        return "none"
    return "higher" if metric in metrics.HIGHER_IS_BETTER else "lower"


# ---------------------------------------------------------------------------
# The evaluation set
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EvalSet:
    """Test images and their fixed holes.

    Attributes:
      data_dir: the data folder the images came from.
      hole_set: "mouth" or "random".
      image_size: side S in pixels.
      files: the image paths, in order.
      images: uint8 (N, S, S, 3).
      holes: bool (N, S, S), True inside the hole.
      boxes: int (N, 4) holes as (top, left, height, width) in image pixels.
      seed: the random hole set's seed (unused for mouth holes).
    """

    data_dir: str
    hole_set: str
    image_size: int
    files: tuple[str, ...]
    images: np.ndarray
    holes: np.ndarray
    boxes: np.ndarray
    seed: int = HOLE_SEED

    def __len__(self) -> int:
        return len(self.files)

    def float_images(self) -> np.ndarray:
        return self.images.astype(np.float32) / 255.0

    def describe(self) -> str:
        seed = f", seed {self.seed}" if self.hole_set == "random" else ""
        return (
            f"{len(self)} test images of {self.data_dir} at {self.image_size} px, "
            f"{self.hole_set} holes{seed}"
        )


def eval_holes(hole_set: str, n: int, image_size: int, seed: int = HOLE_SEED):
    """The fixed holes: (boxes int (n, 4), bool masks (n, S, S))."""
    if hole_set not in HOLE_SETS:
        raise ValueError(f"unknown hole set {hole_set!r}; choose one of {HOLE_SETS}")
    boxes = holes.sample_boxes(jax.random.key(seed), hole_set, n, image_size)
    hole_masks = np.asarray(holes.boxes_to_masks(boxes, image_size))[..., 0] > 0.5
    return np.asarray(boxes), hole_masks


def build_eval_set(
    data_dir, image_size: int, hole_set: str, num_images: int | None = None, seed: int = HOLE_SEED
) -> EvalSet:
    """The test split of `data_dir` with the fixed holes of `hole_set`.

    Args:
      data_dir: a data folder (see ``glcic_jax.training.data``).
      image_size: the models' image size.
      hole_set: "mouth" (the study's box on every image) or "random".
      num_images: keep the first this many readable test images (None: all).
      seed: seed of the random holes; keep the default to compare with
        other reports.

    Raises:
      folders.DataError: no readable test images.
    """
    files, images = [], []
    for path in folders.list_images(data_dir, "test"):
        if num_images is not None and len(images) >= num_images:
            break
        image = folders.try_load_image(path, image_size)
        if image is not None:
            files.append(path)
            images.append(image)
    if not images:
        raise folders.DataError(f"no readable test images in {data_dir}")
    boxes, holes = eval_holes(hole_set, len(images), image_size, seed)
    return EvalSet(
        str(data_dir), hole_set, image_size, tuple(files), np.stack(images), holes, boxes, seed
    )


# ---------------------------------------------------------------------------
# Completions and per-image scores
# ---------------------------------------------------------------------------


def complete_with_model(completer, eval_set: EvalSet) -> np.ndarray:
    """A ``glcic_jax.completion.inference.Completer``'s completions, float32 [0, 1]."""
    if completer.image_size != eval_set.image_size:
        raise ValueError(
            f"model is {completer.image_size} px but the evaluation set is {eval_set.image_size} px"
        )
    return completer.complete(eval_set.images, eval_set.holes)


def run_baselines(
    eval_set: EvalSet, mean_pixel, methods: Sequence[str] = BASELINE_METHODS
) -> dict[str, np.ndarray]:
    """Each baseline's completions of the evaluation set.

    Args:
      mean_pixel: (3,) RGB in [0, 1], the mean fill; pass the model's training
        mean pixel (``Completer.mean_pixel``) so it fills what the model sees.
    """
    images = eval_set.float_images()
    return {
        m: baselines.complete_baseline(m, images, eval_set.holes, mean_pixel=mean_pixel)
        for m in methods
    }


def score(eval_set: EvalSet, completed: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image metrics (``metrics.METRIC_KEYS`` -> float64 (N,)) of completions.

    The completion is composited into the original outside the hole and
    rounded to uint8 first (the protocol).
    """
    completed = np.asarray(completed, np.float32)
    composed = baselines.composite(eval_set.float_images(), completed, eval_set.holes)
    return metrics.batch_metrics(eval_set.images, metrics.to_uint8(composed), eval_set.holes)


# ---------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------


def summarize_metrics(
    per_image: Mapping[str, np.ndarray], seed: int = 0
) -> dict[str, dict[str, float]]:
    """``stats.summarize`` (mean, 95% bootstrap CI, n) of every metric."""
    return {
        k: stats.summarize(v, CONFIDENCE, BOOTSTRAP_RESAMPLES, seed) for k, v in per_image.items()
    }


def summary_row(per_image: Mapping[str, np.ndarray], **keys) -> dict:
    """One CSV row: `keys` (e.g. step, method, hole_set), n_images, then per metric
    ``{m}_mean, {m}_ci_low, {m}_ci_high, {m}_n`` (n = finite values used)."""
    n_images = len(next(iter(per_image.values())))
    row = {**keys, "n_images": n_images}
    for k, s in summarize_metrics(per_image).items():
        row.update({f"{k}_mean": s["mean"], f"{k}_ci_low": s["ci_low"]})
        row.update({f"{k}_ci_high": s["ci_high"], f"{k}_n": s["n"]})
    return row


def per_image_rows(per_image: Mapping[str, np.ndarray], eval_set: EvalSet, **keys) -> list[dict]:
    """One CSV row per image: `keys`, image index, file name, hole box, every metric."""
    rows = []
    for i, path in enumerate(eval_set.files):
        top, left, h, w = (int(v) for v in eval_set.boxes[i])
        row = {**keys, "image": i, "file": pathlib.Path(path).name}
        row.update(hole_top=top, hole_left=left, hole_height=h, hole_width=w)
        row.update({k: float(v[i]) for k, v in per_image.items()})
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------
# Paired comparison of methods
# ---------------------------------------------------------------------------


def paired_difference(a: np.ndarray, b: np.ndarray, metric: str, seed: int = 0) -> dict:
    """Per-image difference a - b of one metric: mean, 95% bootstrap CI, sign test.

    Pairs where either value is non-finite are dropped (``n_dropped``).
    ``a_better``/``b_better`` count images where each is better in the
    metric's direction (for a direction-less metric: a > b and a < b).

    Returns:
      ``{"mean_diff", "ci_low", "ci_high", "n", "n_dropped", "a_better",
      "b_better", "ties", "p_value"}``; NaN statistics when no pair is left.
    """
    d, _ = stats.paired_finite_differences(a, b)
    sign = stats.sign_test(a, b)
    higher, lower = sign.n_positive, sign.n_negative
    a_better, b_better = (lower, higher) if direction(metric) == "lower" else (higher, lower)
    out = {
        "n": int(d.size),
        "n_dropped": sign.n_dropped,
        "a_better": a_better,
        "b_better": b_better,
        "ties": sign.n_ties,
        "p_value": sign.p_value,
    }
    if d.size == 0:
        return {"mean_diff": math.nan, "ci_low": math.nan, "ci_high": math.nan, **out}
    lo, hi = stats.bootstrap_ci(d, CONFIDENCE, BOOTSTRAP_RESAMPLES, seed)
    return {"mean_diff": float(d.mean()), "ci_low": lo, "ci_high": hi, **out}


def paired_differences(
    per_image_a: Mapping[str, np.ndarray],
    per_image_b: Mapping[str, np.ndarray],
    metric_keys: Sequence[str] | None = None,
) -> dict[str, dict]:
    """:func:`paired_difference` of every metric the two share (or of `metric_keys`)."""
    keys = metric_keys or [k for k in per_image_a if k in per_image_b]
    return {k: paired_difference(per_image_a[k], per_image_b[k], k) for k in keys}


def comparison_pairs(labels: Sequence[str]) -> list[tuple[str, str]]:
    """Every later label against every earlier one: [(later, earlier), ...].

    With labels (reference, treatment, control) this gives treatment -
    reference, control - reference and control - treatment, so adding a
    method to the list adds its comparisons without changing the others.
    """
    return [(labels[j], labels[i]) for i in range(len(labels)) for j in range(i + 1, len(labels))]


def verdict(diff: Mapping, metric: str, alpha: float = 0.05) -> str:
    """ "a better", "b better" or "no clear difference" (CI excludes 0 and sign test p < alpha)."""
    if direction(metric) == "none" or not np.isfinite(diff["mean_diff"]):
        return "-"
    if diff["p_value"] >= alpha or diff["ci_low"] <= 0 <= diff["ci_high"]:
        return "no clear difference"
    a_higher = diff["mean_diff"] > 0
    return "a better" if a_higher == (direction(metric) == "higher") else "b better"


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


def write_csv(path, rows: Sequence[Mapping]) -> None:
    """Rows of dicts -> CSV (columns in first-seen order; floats with repr precision)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


def merge_rows(old: Sequence[Mapping], new: Sequence[Mapping], key_fields: Sequence[str]):
    """`old` rows whose key (the values of `key_fields`) no new row has, then `new`.

    Lets evaluate.py add one hole set's or one step's rows to an existing CSV
    and replace a re-evaluated step's rows instead of duplicating them.
    """
    new_keys = {tuple(r.get(k) for k in key_fields) for r in new}
    return [r for r in old if tuple(r.get(k) for k in key_fields) not in new_keys] + list(new)


def read_csv(path) -> list[dict]:
    """CSV -> rows of dicts, numbers parsed (int, then float), the rest kept as str."""

    def parse(v: str):
        for kind in (int, float):
            try:
                return kind(v)
            except ValueError:
                pass
        return v

    with open(path, newline="", encoding="utf-8") as f:
        return [{k: parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


# ---------------------------------------------------------------------------
# Checkpoint sweeps
# ---------------------------------------------------------------------------


def checkpoint_steps(workdir, requested: Sequence[int] | None = None) -> list[int]:
    """The steps of a run (workdir or model folder), or `requested` after checking each exists.

    Raises:
      checkpoint.CheckpointError: no run, no checkpoints or a missing step
        (one-line messages).
    """
    from glcic_jax.training import checkpoint
    from glcic_jax.completion import inference

    have = inference.run_steps(workdir)
    if not requested:
        return have
    missing = sorted(set(requested) - set(have))
    if missing:
        raise checkpoint.CheckpointError(
            f"no checkpoint at step(s) {missing} in {workdir}: have {have}"
        )
    return sorted(set(requested))


@dataclasses.dataclass
class Sweep:
    """A model's per-image metrics at each evaluated checkpoint.

    Attributes:
      label: the method name in tables, e.g. "mouth-trained".
      config: the run's training config (of the last checkpoint loaded).
      mean_pixel: the run's training mean pixel, (3,) in [0, 1].
      per_image: step -> metric -> float64 (N,).
      completed: step -> float32 (N, S, S, 3) completions, for the last
        `keep_completions` steps only (for result grids).
    """

    label: str
    config: object = None
    mean_pixel: np.ndarray | None = None
    per_image: dict = dataclasses.field(default_factory=dict)
    completed: dict = dataclasses.field(default_factory=dict)


def sweep_checkpoints(
    workdir,
    eval_set: EvalSet,
    steps: Sequence[int],
    label: str,
    batch_size: int = 16,
    keep_completions: int = 1,
    progress=None,
) -> Sweep:
    """Complete and score `eval_set` with each checkpoint of `workdir` in `steps`.

    Args:
      progress: optional callable run after each step (e.g. a tqdm update).
    """
    from glcic_jax.completion.inference import Completer

    result = Sweep(label)
    for step in steps:
        completer = Completer.load(workdir, step, batch_size=batch_size)
        result.config, result.mean_pixel = completer.config, completer.mean_pixel
        completed = complete_with_model(completer, eval_set)
        result.per_image[step] = score(eval_set, completed)
        result.completed[step] = completed
        for old in sorted(result.completed)[:-keep_completions]:
            del result.completed[old]
        if progress is not None:
            progress()
    return result

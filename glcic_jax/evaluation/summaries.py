"""Per-method summaries of per-image metrics, as the rows of the result CSVs.

A summary is each metric's mean with a 95% percentile-bootstrap interval
(``stats.summarize``, which drops and counts non-finite values such as a NaN
feature distance or the inf PSNR of a perfect hole).
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping

import numpy as np

from glcic_jax.evaluation import stats
from glcic_jax.evaluation.evalset import EvalSet


def summarize_metrics(
    per_image: Mapping[str, np.ndarray], seed: int = 0
) -> dict[str, dict[str, float]]:
    """``stats.summarize`` (mean, 95% bootstrap CI, n) of every metric."""
    return {k: stats.summarize(v, seed=seed) for k, v in per_image.items()}


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

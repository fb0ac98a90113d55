"""Paired comparison of two methods on the same images: per-image differences and a verdict.

Each comparison takes the per-image differences a - b of one metric, a 95%
bootstrap interval of their mean and an exact two-sided sign test
(``glcic_jax.evaluation.stats``). The verdict names a winner only when both
agree, because with many metrics, steps and hole sets a single test near
p = 0.05 is weak evidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from glcic_jax.evaluation import metrics, stats


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
    lower_is_better = metrics.direction(metric) == "lower"
    a_better, b_better = (lower, higher) if lower_is_better else (higher, lower)
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
    lo, hi = stats.bootstrap_ci(d, seed=seed)
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
    better = metrics.direction(metric)
    if better == "none" or not np.isfinite(diff["mean_diff"]):
        return "-"
    if diff["p_value"] >= alpha or diff["ci_low"] <= 0 <= diff["ci_high"]:
        return "no clear difference"
    a_higher = diff["mean_diff"] > 0
    return "a better" if a_higher == (better == "higher") else "b better"

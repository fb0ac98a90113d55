"""Statistics for comparing completions over a test set: bootstrap intervals and the sign test.

Pure numpy on 1-D arrays of per-image values (e.g. the ``[B]`` arrays of
``metrics.batch_metrics``). Used by the evaluation and comparison scripts:
:func:`summarize` for one metric of one model, :func:`bootstrap_ci` of paired
differences and :func:`sign_test` for "is model A better than model B".
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


def bootstrap_ci(
    values: np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean.

    Draws ``n_resamples`` resamples of ``len(values)`` with replacement (one
    vectorised index array from ``np.random.default_rng(seed)``, in chunks to
    bound memory) and returns the ``(1-c)/2`` and ``(1+c)/2`` quantiles of
    their means. Deterministic for a given seed.

    Args:
      values: 1-D finite values (drop NaNs first, e.g. via :func:`summarize`).
      confidence: e.g. 0.95.
      n_resamples: bootstrap resamples.
      seed: RNG seed.

    Returns:
      ``(low, high)``; ``(v, v)`` for a single value.

    Raises:
      ValueError: for an empty or non-finite input.
    """
    x = np.asarray(values, np.float64).ravel()
    if x.size == 0:
        raise ValueError("no values")
    if not np.all(np.isfinite(x)):
        raise ValueError("values must be finite; drop NaN/inf first")
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    chunk = max(1, 4_000_000 // x.size)  # about 32 MB of indices per chunk
    for s in range(0, n_resamples, chunk):
        idx = rng.integers(0, x.size, size=(min(chunk, n_resamples - s), x.size))
        means[s : s + idx.shape[0]] = x[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def summarize(
    values: np.ndarray, confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0
) -> dict[str, float]:
    """Mean, bootstrap interval and counts of one metric over a test set.

    Non-finite values (NaN feature distances, inf PSNR of a perfect hole) are
    dropped and counted in ``n_dropped``; the statistics use the rest.

    Returns:
      ``{"mean", "ci_low", "ci_high", "std", "n", "n_dropped"}`` (NaN
      statistics when nothing is left).
    """
    x = np.asarray(values, np.float64).ravel()
    finite = x[np.isfinite(x)]
    out = {"n": int(finite.size), "n_dropped": int(x.size - finite.size)}
    if finite.size == 0:
        return {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "std": math.nan, **out}
    lo, hi = bootstrap_ci(finite, confidence, n_resamples, seed)
    return {
        "mean": float(finite.mean()),
        "ci_low": lo,
        "ci_high": hi,
        "std": float(finite.std(ddof=1)) if finite.size > 1 else 0.0,
        **out,
    }


class SignTest(NamedTuple):
    """Result of :func:`sign_test`: counts and the exact two-sided p-value."""

    n_positive: int  # pairs with a > b
    n_negative: int  # pairs with a < b
    n_ties: int  # a == b, dropped from the test
    n_dropped: int  # pairs with a non-finite member, dropped
    p_value: float


def binomial_two_sided_p(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` fair coin flips.

    ``min(1, 2 * P(X <= min(k, n-k)))`` with ``X ~ Binomial(n, 1/2)``; by
    symmetry this equals the "sum of outcomes no more likely than k" rule
    (scipy's ``binomtest``). ``n == 0`` gives 1.
    """
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1))
    # Python ints keep this exact for any n; the division is done once.
    return min(1.0, 2 * tail / 2**n)


def paired_finite_differences(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
    """a - b over the pairs where both are finite, and how many pairs were dropped."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired inputs differ in length: {a.size}, {b.size}")
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok] - b[ok], int(np.sum(~ok))


def sign_test(a: np.ndarray, b: np.ndarray) -> SignTest:
    """Paired sign test of ``a`` against ``b`` (e.g. per-image PSNRs).

    Counts pairs with ``a > b`` and ``a < b``; exact ties are dropped and
    counted, as are pairs where either value is NaN or inf. Under the null
    hypothesis each remaining pair is a fair coin flip; the p-value is
    :func:`binomial_two_sided_p` of the positives.
    """
    d, dropped = paired_finite_differences(a, b)
    pos, neg = int(np.sum(d > 0)), int(np.sum(d < 0))
    return SignTest(pos, neg, int(np.sum(d == 0)), dropped, binomial_two_sided_p(pos, pos + neg))

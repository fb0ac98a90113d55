"""Statistics over a test set's per-image values: bootstrap intervals and the sign test.

Seeded wrappers around ``scipy.stats``, on 1-D arrays of per-image values
(e.g. the ``[B]`` arrays of ``metrics.batch_metrics``): :func:`summarize` for
one metric of one method, :func:`bootstrap_ci` of paired differences,
:func:`hierarchical_bootstrap_ci` over training seeds and faces together,
and :func:`sign_test` for "is method A better than method B". What they add to
scipy is the project's conventions: non-finite values are dropped and
counted, a fixed seed makes every interval reproducible, and the degenerate
cases (one value, no pairs) give an answer instead of an error.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import stats as scipy_stats

# The intervals every report states: 95%, from 10,000 resamples.
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 10_000
# Resampled values held in memory at once (about 32 MB of float64 and indices each).
_VALUES_PER_BATCH = 4_000_000


def bootstrap_ci(
    values: np.ndarray,
    confidence: float = CONFIDENCE,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean (``scipy.stats.bootstrap``).

    The percentile method reads the interval straight off the resampled
    means, which is what the reports describe. Resamples are drawn from
    ``np.random.default_rng(seed)`` in batches that bound memory, so a seed
    gives the same interval on every machine.

    Args:
      values: 1-D finite values (drop NaNs first, e.g. via :func:`summarize`).
      confidence: e.g. 0.95.
      n_resamples: bootstrap resamples.
      seed: RNG seed.

    Returns:
      ``(low, high)``; ``(v, v)`` for a single value, whose every resample is itself.

    Raises:
      ValueError: for an empty or non-finite input.
    """
    x = np.asarray(values, np.float64).ravel()
    if x.size == 0:
        raise ValueError("no values")
    if not np.all(np.isfinite(x)):
        raise ValueError("values must be finite; drop NaN/inf first")
    if x.size == 1:  # scipy asks for two observations
        return float(x[0]), float(x[0])
    result = scipy_stats.bootstrap(
        (x,),
        np.mean,
        n_resamples=n_resamples,
        batch=max(1, _VALUES_PER_BATCH // x.size),
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def summarize(
    values: np.ndarray,
    confidence: float = CONFIDENCE,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
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


def hierarchical_bootstrap_ci(
    values,
    statistic=None,
    groups=None,
    confidence: float = CONFIDENCE,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(statistic, low, high): a percentile interval over training seeds and faces together.

    Every resample draws the faces once (with replacement; whole people when
    `groups` says which faces are one person's), shared by every method, so
    methods stay paired by face; and each method's seeds on its own (seed 3
    of one regime has nothing to do with seed 3 of another). A method's
    resampled value is the mean over its drawn seeds and the drawn faces.
    With one seed per method this is the faces-only bootstrap; when seeds
    disagree the interval widens by what a different seed would have given,
    which a faces-only interval cannot show.

    Args:
      values: a list of float arrays (seeds, faces), one per method (a
        single numpy array is one method); every method has the same faces
        in the same order.
      statistic: a function of the methods' means (1-D array) -> float,
        default the first method's mean (e.g. `lambda m: m[0] - m[1]` for a
        difference, or a share of a lead).
      groups: optional (faces,) labels, e.g. a person's name per photo.
      confidence, n_resamples, seed: as for `bootstrap_ci`.

    Raises:
      ValueError: no faces, a method without seeds, methods with different
        faces, or non-finite values.
    """
    if isinstance(values, np.ndarray):  # one method
        values = [values]
    arrays = [np.asarray(v, np.float64) for v in values]
    if statistic is None:
        statistic = lambda means: means[0]  # noqa: E731
    faces = arrays[0].shape[1] if arrays[0].ndim == 2 else 0
    if faces == 0 or any(a.ndim != 2 or a.shape[1] != faces or a.shape[0] == 0 for a in arrays):
        raise ValueError("each method needs values of shape (seeds >= 1, the same faces >= 1)")
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise ValueError("values must be finite; drop NaN/inf first")
    labels = np.arange(faces) if groups is None else np.asarray(groups)
    if labels.shape != (faces,):
        raise ValueError(f"groups must have one label per face ({faces})")
    _, unit_of_face = np.unique(labels, return_inverse=True)
    n_units = int(unit_of_face.max()) + 1
    rng = np.random.default_rng(seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        point = float(statistic(np.array([a.mean() for a in arrays])))
    draws = np.empty(n_resamples)
    for r in range(n_resamples):
        # A face drawn k times (its person drawn k times) weighs k in the resample's mean.
        weight = np.bincount(rng.integers(0, n_units, n_units), minlength=n_units)[unit_of_face]
        weight = weight / weight.sum()
        means = np.array(
            [a[rng.integers(0, a.shape[0], a.shape[0])].mean(axis=0) @ weight for a in arrays]
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            draws[r] = statistic(means)
    # A ratio statistic is undefined where a resample's denominator is 0: those draws are left out.
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return point, math.nan, math.nan
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return point, float(low), float(high)


class SignTest(NamedTuple):
    """Result of :func:`sign_test`: counts and the exact two-sided p-value."""

    n_positive: int  # pairs with a > b
    n_negative: int  # pairs with a < b
    n_ties: int  # a == b, dropped from the test
    n_dropped: int  # pairs with a non-finite member, dropped
    p_value: float


def binomial_two_sided_p(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` fair coin flips.

    ``scipy.stats.binomtest(k, n, 0.5)``; for a fair coin this is
    ``min(1, 2 * P(X <= min(k, n-k)))``. ``n == 0`` (no untied pair) gives 1:
    no evidence either way.
    """
    if n == 0:
        return 1.0
    return float(scipy_stats.binomtest(k, n, 0.5).pvalue)


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

"""Statistics against known values: bootstrap coverage and hand-computed binomial p-values."""

import math
from fractions import Fraction

import numpy as np
import pytest

from glcic_jax.evaluation import stats


def test_bootstrap_ci_covers_true_mean_and_is_seeded():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 1.0, 400)
    lo, hi = stats.bootstrap_ci(x, seed=0)
    assert lo < 3.0 < hi
    assert lo < x.mean() < hi
    # Width close to the normal-theory 2 * 1.96 * s / sqrt(n).
    assert hi - lo == pytest.approx(2 * 1.96 * x.std(ddof=1) / np.sqrt(400), rel=0.1)
    assert stats.bootstrap_ci(x, seed=0) == (lo, hi)
    assert stats.bootstrap_ci(x, seed=1) != (lo, hi)


def test_bootstrap_ci_is_the_percentile_interval_of_seeded_resample_means():
    """The interval by hand: resample indices from default_rng(seed), quantiles of the means."""
    x = np.random.default_rng(3).exponential(2.0, 50)
    indices = np.random.default_rng(7).integers(0, x.size, size=(2000, x.size))
    by_hand = np.quantile(x[indices].mean(axis=1), [0.05, 0.95])
    lo, hi = stats.bootstrap_ci(x, confidence=0.9, n_resamples=2000, seed=7)
    np.testing.assert_allclose([lo, hi], by_hand, rtol=1e-12)


def test_bootstrap_ci_coverage_is_about_95_percent():
    rng = np.random.default_rng(2)
    hits = 0
    for trial in range(200):
        x = rng.exponential(1.0, 60)  # skewed, true mean 1
        lo, hi = stats.bootstrap_ci(x, n_resamples=1000, seed=trial)
        hits += lo < 1.0 < hi
    assert 0.88 <= hits / 200 <= 0.99


def test_bootstrap_ci_edge_cases():
    assert stats.bootstrap_ci([2.5]) == (2.5, 2.5)
    with pytest.raises(ValueError):
        stats.bootstrap_ci([1.0, np.nan])
    with pytest.raises(ValueError):
        stats.bootstrap_ci([])


def test_summarize_drops_and_counts_non_finite():
    s = stats.summarize([1.0, 2.0, 3.0, np.nan, np.inf])
    assert s["n"] == 3 and s["n_dropped"] == 2
    assert s["mean"] == pytest.approx(2.0)
    assert s["ci_low"] <= 2.0 <= s["ci_high"]
    assert math.isnan(stats.summarize([np.nan])["mean"])


@pytest.mark.parametrize(
    "k, n, expected",
    [
        (0, 0, 1.0),
        (5, 5, 2 / 32),  # all five one way: 2 * (1/2)^5
        (4, 5, 2 * 6 / 32),  # 2 * (C(5,0)+C(5,1)) / 2^5
        (1, 10, 2 * 11 / 1024),  # 2 * (1 + 10) / 2^10
        (5, 10, 1.0),
        (2, 12, 2 * (1 + 12 + 66) / 4096),
    ],
)
def test_binomial_p_by_hand(k, n, expected):
    assert stats.binomial_two_sided_p(k, n) == pytest.approx(expected)


def test_binomial_p_matches_the_exact_tail_sum():
    """min(1, 2 P(X <= min(k, n-k))) in exact rational arithmetic, for large n too."""
    for n in (1, 7, 30, 500, 2000):
        for k in (0, 1, n // 3, n // 2, n - 1, n):
            tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1))
            exact = min(Fraction(1), Fraction(2 * tail, 2**n))
            assert stats.binomial_two_sided_p(k, n) == pytest.approx(
                float(exact), rel=1e-9, abs=1e-300
            )


def test_sign_test_counts_ties_and_nans():
    a = np.array([3.0, 2.0, 5.0, 1.0, 4.0, 4.0, np.nan, 7.0])
    b = np.array([1.0, 1.0, 1.0, 1.0, 4.0, 5.0, 2.0, 1.0])
    r = stats.sign_test(a, b)
    assert (r.n_positive, r.n_negative, r.n_ties, r.n_dropped) == (4, 1, 2, 1)
    assert r.p_value == pytest.approx(2 * 6 / 32)  # k=1 of n=5


def test_a_hierarchical_interval_is_wider_when_seeds_disagree():
    """Two seeds 1 dB apart on the same 200 faces: the faces-only interval cannot see it."""
    rng = np.random.default_rng(0)
    faces = rng.normal(20.0, 2.0, 200)
    agree = np.stack([faces, faces])
    disagree = np.stack([faces - 0.5, faces + 0.5])
    kwargs = dict(n_resamples=2000, seed=1)
    _, lo_a, hi_a = stats.hierarchical_bootstrap_ci(agree, **kwargs)
    _, lo_d, hi_d = stats.hierarchical_bootstrap_ci(disagree, **kwargs)
    faces_only = stats.bootstrap_ci(disagree.mean(axis=0), n_resamples=2000, seed=1)
    assert hi_d - lo_d > 1.5 * (faces_only[1] - faces_only[0])
    assert hi_a - lo_a == pytest.approx(faces_only[1] - faces_only[0], rel=0.2)


def test_a_hierarchical_share_keeps_methods_paired_by_face():
    """The size share of a lead, (control - random) / (mouth - random), and a difference."""
    rng = np.random.default_rng(2)
    base = rng.normal(18.0, 3.0, 150)  # faces differ far more than the methods do
    random = np.stack([base, base + 0.1])
    control = np.stack([base + 0.5, base + 0.6, base + 0.5])
    mouth = np.stack([base + 2.0, base + 2.1, base + 2.0])
    share, lo, hi = stats.hierarchical_bootstrap_ci(
        [mouth, control, random],
        lambda m: (m[1] - m[2]) / (m[0] - m[2]),
        n_resamples=2000,
    )
    assert share == pytest.approx((0.5333 - 0.05) / (2.0333 - 0.05), abs=1e-3)
    assert lo < share < hi and hi - lo < 0.1  # paired by face: the faces' spread cancels
    # People, not photos: two photos of each person resample together.
    groups = np.repeat(np.arange(75), 2)
    _, lo_g, hi_g = stats.hierarchical_bootstrap_ci(mouth, groups=groups, n_resamples=500)
    assert lo_g < mouth.mean() < hi_g
    with pytest.raises(ValueError, match="same faces"):
        stats.hierarchical_bootstrap_ci([mouth, control[:, :10]])
    with pytest.raises(ValueError, match="one label per face"):
        stats.hierarchical_bootstrap_ci(mouth, groups=groups[:10])

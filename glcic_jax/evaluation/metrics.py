"""Image-completion metrics: the study's feature-matching distance, PSNR, SSIM, L1.

Everything here is a pure function of numpy arrays (no JAX, no files), so the
evaluation scripts stay thin and every number they print is tested.

Value ranges. Images are ``[H, W, 3]`` RGB, either ``uint8`` in 0..255 or
float in [0, 1]; every function converts with :func:`to_float01` (uint8 is
divided by 255, float is checked to lie in [0, 1]) and computes in float64.
Masks are ``[H, W]`` bool (or 0/1), True inside the hole. All PSNRs use a data
range of 1.0 (identical to 255 on 0..255 images), L1 is a mean absolute error
on the [0, 1] scale unless the key says otherwise (``_255``, ``_x100``).

Protocol: composite the output into the original outside the hole, round
to uint8, then measure. :func:`image_metrics` expects that composite;
:func:`quantize_uint8` does the rounding.

Statistics over a test set (bootstrap intervals, the sign test) live in
``glcic_jax.evaluation.stats``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np
from skimage.metrics import structural_similarity

# ---------------------------------------------------------------------------
# Value ranges
# ---------------------------------------------------------------------------


def to_float01(image: np.ndarray) -> np.ndarray:
    """Returns ``image`` as float64 in [0, 1].

    Args:
      image: uint8 array (0..255, divided by 255) or a float array already in
        [0, 1] (a tolerance of 1e-6 absorbs float32 round-off; values are then
        clipped).

    Raises:
      ValueError: for a float array outside [0, 1] (a 0..255 float image is a
        common mistake and would silently give wrong PSNRs), or another dtype.
    """
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"expected uint8 or float in [0, 1], got {image.dtype}")
    lo, hi = float(np.min(image)), float(np.max(image))
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(f"float image must lie in [0, 1], got [{lo:.4g}, {hi:.4g}]")
    return np.clip(image.astype(np.float64), 0.0, 1.0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Returns ``image`` as uint8 0..255, rounding floats to nearest."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    return np.round(to_float01(image) * 255.0).astype(np.uint8)


def quantize_uint8(image: np.ndarray) -> np.ndarray:
    """Rounds a [0, 1] image to the uint8 grid, returned as float in [0, 1].

    This is what saving the completion as a PNG does; the protocol measures
    the rounded image.
    """
    return to_uint8(image).astype(np.float64) / 255.0


def _check_pair(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None):
    a, b = to_float01(a), to_float01(b)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"need two [H, W, C] images of one shape: {a.shape}, {b.shape}")
    if mask is not None:
        mask = np.asarray(mask).astype(bool)
        if mask.shape != a.shape[:2]:
            raise ValueError(f"mask {mask.shape} does not match image {a.shape[:2]}")
        if not mask.any():
            raise ValueError("empty mask: no hole pixels to measure")
    return a, b, mask


def hole_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Returns the hole's bounding box ``(y0, y1, x0, x1)``, half-open."""
    ys, xs = np.nonzero(np.asarray(mask))
    if ys.size == 0:
        raise ValueError("empty mask")
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


# ---------------------------------------------------------------------------
# Pixel metrics
# ---------------------------------------------------------------------------


def hole_crop(image: np.ndarray, mask: np.ndarray, side: int) -> np.ndarray:
    """The hole's bounding box of `image`, resized to side x side (for LPIPS of a region)."""
    y0, y1, x0, x1 = hole_bbox(mask)
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    return cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)


def mse(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error on [0, 1], over all channels of the masked pixels."""
    a, b, mask = _check_pair(a, b, mask)
    d = (a - b) if mask is None else (a - b)[mask]
    return float(np.mean(d**2))


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB with data range 1.0: ``10 log10(1 / MSE)``.

    The MSE is taken over every channel of the hole pixels (``mask``) or of
    the whole image (``mask=None``). Identical inputs give ``inf`` (no cap:
    a cap would hide a bug where the hole was not filled at all).
    """
    m = mse(a, b, mask)
    return math.inf if m == 0.0 else float(10.0 * np.log10(1.0 / m))


def l1(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute error on the [0, 1] scale over hole (or all) pixels."""
    a, b, mask = _check_pair(a, b, mask)
    d = (a - b) if mask is None else (a - b)[mask]
    return float(np.mean(np.abs(d)))


# Wang et al.'s reference setting as mmagic implements it (11x11 Gaussian
# window, sigma 1.5, population covariance, borders of 5 px excluded): same
# formula as mmagic's ``SSIM`` metric on whole images. Without arguments,
# scikit-image's defaults are used (7x7 uniform window, K1=0.01, K2=0.03,
# sample covariance), the setting the hole SSIMs in the reports use.
SSIM_MMAGIC = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)


def ssim(a: np.ndarray, b: np.ndarray, **kwargs) -> float:
    """SSIM of two whole images (scikit-image, data range 1, mean over channels).

    Args:
      a, b: images, see the module docstring.
      **kwargs: passed to ``skimage.metrics.structural_similarity``, e.g.
        ``**SSIM_MMAGIC``; none means scikit-image's defaults (7x7 uniform
        window).

    Returns:
      The mean SSIM. With the uniform window, an image (or hole crop) with a
      side below 7 px uses the largest odd window that fits, and one below
      3 px gives NaN; with a Gaussian window, a side below the window gives
      NaN.
    """
    a, b, _ = _check_pair(a, b, None)
    return _ssim(a, b, **kwargs)


def _ssim(a: np.ndarray, b: np.ndarray, **kwargs) -> float:
    side = min(a.shape[:2])
    if kwargs.get("gaussian_weights"):
        # scikit-image truncates the Gaussian at 3.5 sigma.
        if side < 2 * int(3.5 * kwargs.get("sigma", 1.5) + 0.5) + 1:
            return math.nan
    elif side < kwargs.get("win_size", 7):
        # A hole thinner than the window: shrink the window rather than fail,
        # so thin random holes still get a number.
        if side < 3:
            return math.nan
        kwargs = {**kwargs, "win_size": side if side % 2 else side - 1}
    return float(structural_similarity(a, b, data_range=1.0, channel_axis=-1, **kwargs))


def ssim_hole(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """SSIM "inside the hole": SSIM of the crops to the hole's bounding box.

    Defined as ``ssim(a[y0:y1, x0:x1], b[y0:y1, x0:x1])`` with ``(y0, y1, x0,
    x1) = hole_bbox(mask)`` and scikit-image's defaults (7x7 uniform window).
    For a rectangular hole the crop is exactly the hole; for other shapes it
    also contains the unchanged pixels inside the box. Windows never see
    context outside the box, so a perfect border does not inflate the score
    (the mean of the full SSIM map over hole pixels would: it reads about
    0.1 higher on the baselines). Measured this way by
    experiments/bench_baselines.py on the first 500 CelebA test faces at
    64 px with the mouth box: mean fill 0.106, Telea 0.179.
    """
    a, b, mask = _check_pair(a, b, mask)
    y0, y1, x0, x1 = hole_bbox(mask)
    return _ssim(a[y0:y1, x0:x1], b[y0:y1, x0:x1])


# ---------------------------------------------------------------------------
# The study's feature-matching distance
# ---------------------------------------------------------------------------

# OpenCV's own ORB defaults, written out so a future OpenCV cannot change
# them under us and so the docs can quote them.
ORB_PARAMS = dict(
    nfeatures=500,
    scaleFactor=1.2,
    nlevels=8,
    edgeThreshold=31,
    firstLevel=0,
    WTA_K=2,
    scoreType=cv2.ORB_HARRIS_SCORE,
    patchSize=31,
    fastThreshold=20,
)
# The study's images were 256 px. ORB with edgeThreshold=31 and patchSize=31
# finds almost nothing on a 64 px image (it ignores a 31 px border, leaving a
# 2 px strip), so smaller images are upscaled to this shorter side first.
ORB_MIN_SIDE = 256


class FeatureMatch(NamedTuple):
    """Result of :func:`feature_match`.

    Attributes:
      distance: mean Hamming distance (bits, 0..256) of the best
        ``min(k, n_matches)`` matches; NaN when ``n_matches < min_matches``.
      n_matches: cross-checked matches found.
      n_keypoints_a: ORB keypoints with descriptors in the first image.
      n_keypoints_b: the same in the second image.
    """

    distance: float
    n_matches: int
    n_keypoints_a: int
    n_keypoints_b: int


def _orb_gray(image: np.ndarray, min_side: int) -> np.ndarray:
    gray = cv2.cvtColor(np.ascontiguousarray(to_uint8(image)), cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    if min(h, w) < min_side:
        s = min_side / min(h, w)
        size = (round(w * s), round(h * s))  # cv2 wants (width, height)
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_CUBIC)
    return gray


def feature_match(
    a: np.ndarray,
    b: np.ndarray,
    k: int = 50,
    min_matches: int = 10,
    min_side: int = ORB_MIN_SIDE,
    orb_params: dict | None = None,
) -> FeatureMatch:
    """The study's feature-matching distance between two images.

    Definition (smaller = more similar; 0 for identical images):
      1. Each image is converted to uint8 grayscale (``cv2.COLOR_RGB2GRAY``)
         and, if its shorter side is below ``min_side`` (256), upscaled with
         bicubic interpolation so that it is ``min_side``.
      2. ORB keypoints and 256-bit descriptors are computed with
         ``cv2.ORB_create(**ORB_PARAMS)`` (OpenCV's defaults: 500 features,
         scale factor 1.2, 8 levels, edge threshold 31, patch size 31, FAST
         threshold 20, Harris score).
      3. Descriptors are matched with a brute-force Hamming matcher with
         cross-check (``cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)``):
         a pair is kept only if each is the other's nearest neighbour.
      4. The distance is the mean Hamming distance of the ``k`` (50) matches
         with the smallest distances, or of all matches when there are fewer.

    Too few keypoints: if either image has no descriptors or fewer than
    ``min_matches`` cross-checked matches exist, the distance is NaN (not 0
    and not a made-up penalty); callers count NaNs, e.g. ``stats.summarize``.

    Behaviour worth knowing: ORB descriptors are translation invariant, so an
    image shifted by whole pixels scores ~0 (only the rolled-in border
    differs); sub-pixel shifts and blur give small positive values. On a
    completion composited into the original, keypoints away from the hole
    match at distance 0, so the score measures how many of the best matches
    the hole disturbs; it is noisy (its spread is about its mean), report it
    with an interval. At 64 px (upscaled) about 40 % of completed pairs have
    fewer than 50 matches, so ``n_matches`` is returned alongside.

    Args:
      a, b: images, ``[H, W, 3]`` uint8 or float in [0, 1], any size.
      k: number of best matches averaged.
      min_matches: fewer cross-checked matches give NaN.
      min_side: shorter side images are upscaled to before ORB.
      orb_params: overrides of ``ORB_PARAMS``.

    Returns:
      A :class:`FeatureMatch`.
    """
    orb = cv2.ORB_create(**{**ORB_PARAMS, **(orb_params or {})})
    _, da = orb.detectAndCompute(_orb_gray(a, min_side), None)
    _, db = orb.detectAndCompute(_orb_gray(b, min_side), None)
    na = 0 if da is None else len(da)
    nb = 0 if db is None else len(db)
    if na == 0 or nb == 0:
        return FeatureMatch(math.nan, 0, na, nb)
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(da, db)
    if len(matches) < max(min_matches, 1):
        return FeatureMatch(math.nan, len(matches), na, nb)
    dist = np.sort(np.array([m.distance for m in matches], np.float64))
    return FeatureMatch(float(dist[:k].mean()), len(matches), na, nb)


def feature_distance(a: np.ndarray, b: np.ndarray, **kwargs) -> float:
    """:func:`feature_match`'s distance only (NaN when too few matches)."""
    return feature_match(a, b, **kwargs).distance


# ---------------------------------------------------------------------------
# All metrics for one pair
# ---------------------------------------------------------------------------

METRIC_KEYS = (
    "psnr_hole",
    "ssim_hole",
    "l1_hole",
    "psnr_full",
    "ssim_full",
    "l1_full",
    "l1_hole_x100",
    "l1_full_255",
    "ssim_full_mmagic",
    "feature_distance",
    "feature_matches",
)
# Larger is better for these; smaller for the rest (a feature_matches count
# is informational, not a quality score).
HIGHER_IS_BETTER = frozenset(
    {"psnr_hole", "ssim_hole", "psnr_full", "ssim_full", "ssim_full_mmagic"}
)
# Metrics in reports and plots: METRIC_KEYS less the rescalings and counts,
# which stay in the CSVs.
_CSV_ONLY = ("l1_hole_x100", "l1_full_255", "feature_matches")
REPORTED_METRICS = tuple(k for k in METRIC_KEYS if k not in _CSV_ONLY)
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
    return "higher" if metric in HIGHER_IS_BETTER else "lower"


def image_metrics(
    original: np.ndarray, completed: np.ndarray, mask: np.ndarray, k: int = 50
) -> dict[str, float]:
    """Every metric for one image pair.

    ``completed`` should already be composited into ``original`` outside the
    hole and rounded to uint8 (the protocol); pass a uint8 array or
    :func:`quantize_uint8`'s output.

    Keys (see :data:`METRIC_KEYS`):
      psnr_hole, ssim_hole, l1_hole: the study's hole metrics: PSNR
        (range 1) and mean L1 (0..1 scale) over hole pixels, SSIM of
        the hole's bounding-box crop (:func:`ssim_hole`).
      psnr_full, ssim_full, l1_full: the same over the whole image (SSIM
        with scikit-image's defaults).
      l1_hole_x100: mmagic's inpainting "l1 error" (its ``MAE`` metric with
        ``mask_key='mask', scaling=100``): 100 x l1_hole.
      l1_full_255: mean absolute error over the whole image on 0..255.
      ssim_full_mmagic: whole-image SSIM with mmagic's/Wang et al.'s
        11x11 Gaussian window; mmagic's PSNR is psnr_full.
      feature_distance, feature_matches: :func:`feature_match` between the
        original and the completion (NaN distance when too few matches).
    """
    a, b, mask = _check_pair(original, completed, mask)
    fm = feature_match(a, b, k=k)
    l1_hole = l1(a, b, mask)
    l1_full = l1(a, b)
    return {
        "psnr_hole": psnr(a, b, mask),
        "ssim_hole": ssim_hole(a, b, mask),
        "l1_hole": l1_hole,
        "psnr_full": psnr(a, b),
        "ssim_full": _ssim(a, b),
        "l1_full": l1_full,
        "l1_hole_x100": 100.0 * l1_hole,
        "l1_full_255": 255.0 * l1_full,
        "ssim_full_mmagic": _ssim(a, b, **SSIM_MMAGIC),
        "feature_distance": fm.distance,
        "feature_matches": float(fm.n_matches),
    }


def batch_metrics(
    originals: np.ndarray, completed: np.ndarray, masks: np.ndarray, k: int = 50
) -> dict[str, np.ndarray]:
    """:func:`image_metrics` over a batch: ``[B, H, W, 3]`` x2, ``[B, H, W]``.

    Returns:
      A dict of the same keys, each a float64 array of shape ``[B]``.
    """
    if not len(originals) == len(completed) == len(masks):
        raise ValueError("originals, completed and masks differ in length")
    rows = [image_metrics(o, c, m, k=k) for o, c, m in zip(originals, completed, masks)]
    return {key: np.array([r[key] for r in rows], np.float64) for key in METRIC_KEYS}

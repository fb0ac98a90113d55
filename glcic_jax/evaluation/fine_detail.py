"""How much fine detail a fill has: the Laplacian's variance inside the mask, the fill's over the truth's.

PSNR rewards the mean face, a blur; this measures what a blur lacks, the
high-frequency energy of skin, lips and stubble, on the luminance, away
from the mask's edge (the step between a fill and the photo around it is
not detail). 1.0 is as much fine detail as the real face, near 0 a blur,
above 1 more (or noise). It says nothing of whether the detail is the right
one, so it is read beside a perceptual distance (LPIPS).
"""

import cv2
import numpy as np

ERODE = 2  # px taken off the mask's edge
_LUMA = np.array([0.299, 0.587, 0.114])


def luminance(rgb) -> np.ndarray:
    """ITU-R 601 luma of an RGB image, float64 (H, W) on the image's own scale."""
    return np.asarray(rgb, np.float64)[..., :3] @ _LUMA


def inner_mask(mask, erode: int = ERODE) -> np.ndarray:
    """`mask` less every pixel within `erode` px (square neighbourhood) of its edge.

    The photo's border counts as an edge. With `erode` >= 1 the 3x3 Laplacian
    of every pixel left sees only mask pixels, so the step between a fill and
    the photo around it does not count.
    """
    mask = np.asarray(mask).astype(np.uint8)
    if erode <= 0:
        return mask.astype(bool)
    kernel = np.ones((2 * erode + 1, 2 * erode + 1), np.uint8)
    return cv2.erode(mask, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0


def laplacian_variance(rgb, mask) -> float:
    """Variance of the 3x3 Laplacian of the luminance over `mask`'s pixels (NaN if none)."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        return float("nan")
    lap = cv2.Laplacian(luminance(rgb), cv2.CV_64F, ksize=1)
    return float(lap[mask].var())


def detail_ratio(truth, fill, mask, erode: int = ERODE) -> float:
    """The fine-detail ratio: Laplacian variance of `fill` over that of `truth`, inside the mask.

    Both over `inner_mask(mask, erode)`, on the luminance. 1.0: as much fine
    detail as the truth; a blur gives a value near 0; above 1, more detail
    (or noise) than the truth. NaN when the eroded mask is empty or the truth
    has none (a flat region).

    Args:
      truth, fill: RGB images of one shape (uint8, or float on one scale).
      mask: bool (H, W), the region filled.
      erode: px taken off the mask's edge first.
    """
    inner = inner_mask(mask, erode)
    reference = laplacian_variance(truth, inner)
    if not np.isfinite(reference) or reference == 0.0:
        return float("nan")
    return laplacian_variance(fill, inner) / reference

"""The segmenter's region carried out to the mask's own edges, by colour.

The network sees a face through a 96 px crop of its lower half; on a large
photo or a turned head its region can stop short of the mask's edge: a
fringe of mask pixels along the border, or a strip of the far side of a
turned mask. What is left of a mask after completion is what people see
first, so the region is grown where the photo's colours say the mask goes on.

`grow`: OpenCV's GrabCut (colour GMMs and a graph cut that follows edges)
on the region's surroundings, with
- sure mask: the region's core (eroded by half the band),
- probably mask: the rest of the region,
- probably not mask: a band of `band` pixels around it (what may be won),
- sure not mask: beyond the band (skin, hair, background: the other colours).
What GrabCut calls mask inside the band and connected to the region is added;
the region itself never shrinks (the network is the better judge inside it).
A mask the colour of the skin beside it gains little, by design: the graph cut
has no colour difference to follow.
"""

import cv2
import numpy as np

from glcic_jax.segmenter import grabcut

MAX_SIDE = 256  # px: GrabCut runs on the region's surroundings scaled to at most this
ITERATIONS = 3
_MIN_SAMPLES = 50  # pixels each colour model needs


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def grow(rgb, region, band: int, max_side: int = MAX_SIDE) -> np.ndarray:
    """`region` (bool (H, W)) grown by up to `band` photo pixels where the colours are the mask's.

    Args:
      rgb: uint8 (H, W, 3), the photo.
      region: bool (H, W), the mask found (undilated).
      band: photo pixels the region may grow by; 0 returns it unchanged.
      max_side: GrabCut works on the surroundings scaled to at most this side.

    Returns:
      bool (H, W), a superset of `region`.
    """
    region = np.asarray(region, bool)
    if band <= 0 or not region.any():
        return region
    height, width = region.shape
    ys, xs = np.nonzero(region)
    pad = 3 * band  # context beyond the band for the "not mask" colours
    y0, y1 = max(0, ys.min() - pad), min(height, ys.max() + pad + 1)
    x0, x1 = max(0, xs.min() - pad), min(width, xs.max() + pad + 1)
    crop, seed = np.asarray(rgb[y0:y1, x0:x1], np.uint8), region[y0:y1, x0:x1]
    scale = min(1.0, max_side / max(crop.shape[:2]))
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    small_seed = cv2.resize(seed.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    reach = max(1, round(band * scale))
    near = cv2.dilate(small_seed.astype(np.uint8), _disk(reach)) > 0
    core = cv2.erode(small_seed.astype(np.uint8), _disk(max(1, reach // 2))) > 0
    trimap = np.full(small_seed.shape, cv2.GC_BGD, np.uint8)
    trimap[near] = cv2.GC_PR_BGD
    trimap[small_seed] = cv2.GC_PR_FGD
    trimap[core] = cv2.GC_FGD
    if core.sum() < _MIN_SAMPLES or (~near).sum() < _MIN_SAMPLES:
        return region  # too small to model, or no room outside the band
    grabcut.seeded_grabcut(small, trimap, ITERATIONS)
    mask = ((trimap == cv2.GC_FGD) | (trimap == cv2.GC_PR_FGD)) & near
    _, labels = cv2.connectedComponents((mask | small_seed).astype(np.uint8), connectivity=8)
    touching = np.unique(labels[small_seed])
    kept = np.isin(labels, touching[touching > 0])
    if not (kept & ~small_seed).any():
        return region
    # Back at the photo's size as a whole (seed and what it won), so no seam opens between them.
    back = cv2.resize(kept.astype(np.float32), crop.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    grown = region.copy()
    grown[y0:y1, x0:x1] |= back > 0.5
    return grown

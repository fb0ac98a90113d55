"""Find the face mask a person wears: the region to fill, on the aligned face.

Method (`segment_mask`), on the aligned 256 canvas where the face sits at
known positions, seeded by the face's five landmarks:

1. A trimap for OpenCV's GrabCut (colour GMMs + graph cut):
   - sure mask: a seed below the nose, between the mouth corners, from a
     third of the way nose -> mouth to just under the mouth. Any face mask
     covers it.
   - probably mask: the expected mask outline (`overlay.face_points`, the
     polygon a-b-c-f-e-d, grown by 15%), except pixels with skin chroma
     (`SKIN_CR`/`SKIN_CB` in YCrCb), which start as probably face.
   - sure not mask: everything above the eyes' line plus 10% of the
     eye-to-mouth height (eyes, brows and forehead: no mask reaches there).
   - probably not mask: the rest (cheeks' sides, neck, background).
2. Four GrabCut iterations; the result is the connected component of the
   mask pixels that overlaps the seed most, its holes filled, dilated by
   `DILATE` px (at 256) so the fill also covers the mask's edge and shadow.
3. Sanity check: a region under `MIN_AREA` of the mouth box's area or over
   `MAX_AREA` of the canvas is not trusted; the caller gets the study's mouth
   box instead, marked as a fallback.

Measured on 120 LFW test faces wearing seeded random templates
(`overlay.render_masked`): IoU with the pasted mask mean 0.79 (median 0.82,
10th percentile 0.71), 96% of the mask's pixels covered, ~0.1 s per face on
one CPU core; the dilation costs some IoU on purpose.

Failure cases (by design or measured on synthetic masks):
- Parts of a mask far outside the expected outline are missed: the gas
  respirator's filter cartridges (IoU 0.58 on those, 0.81..0.83 for the
  surgical, cloth, KN95 and N95 styles).
- Masks in skin colours (beige cloth, some KN95s) start as "probably face"
  and are often only partly found; the seed keeps the mouth covered.
- A mask the colour of the background or clothes next to it (white mask and
  white shirt, black mask and black hair or coat) can leak into them: the
  region grows down the neck or out to the side (up to `MAX_AREA`).
- A face with no mask: the lips, beard and chin shadow around the seed are
  returned, usually a small patch around the mouth (or the fallback box).
- Strong head turns and scarves/hands: the expected outline is only a prior,
  GrabCut follows colours, so the fill may miss the far cheek or include the
  hand.
- Grey photos: the skin prior is off (no chroma), GrabCut uses grey levels only.
"""

import cv2
import numpy as np

from glcic_jax.face_masks import overlay
from glcic_jax.faces import align
from glcic_jax.faces.skin import SKIN_CB, SKIN_CR

DILATE = 6  # px at 256: the mask's border and its shadow on the skin
MIN_AREA = 0.3  # of the mouth box's area
MAX_AREA = 0.6  # of the canvas
ITERATIONS = 4
GRABCUT_SEED = 0  # OpenCV random state set before each GrabCut (`seeded_grabcut`)


def seeded_grabcut(image, labels, iterations: int) -> None:
    """cv2.grabCut from a mask, refining `labels` in place, the same on every call.

    GrabCut starts its colour models with k-means++, which draws from OpenCV's
    per-thread random generator: unseeded, the same photo got a region that
    depended on how many GrabCuts had run before it in the process.
    """
    cv2.setRNGSeed(GRABCUT_SEED)
    models = (np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64))
    cv2.grabCut(image, labels, None, *models, iterations, cv2.GC_INIT_WITH_MASK)


def box_region(size: int = align.CANVAS) -> np.ndarray:
    """The study's mouth box as a bool (size, size) region."""
    k = size / align.CANVAS
    x0, y0, x1, y1 = (round(v * k) for v in align.MOUTH_BOX)
    region = np.zeros((size, size), bool)
    region[y0:y1, x0:x1] = True
    return region


def seed_region(landmarks, size: int = align.CANVAS) -> np.ndarray:
    """The sure-mask seed (bool (size, size)) below the nose, between the mouth corners."""
    pts = np.asarray(landmarks, np.float64)
    nose, mouth_l, mouth_r = pts[2], pts[3], pts[4]
    mouth = (mouth_l + mouth_r) / 2
    eye_mouth = mouth[1] - (pts[0, 1] + pts[1, 1]) / 2
    x0, x1 = sorted((mouth_l[0], mouth_r[0]))
    y0 = nose[1] + (mouth[1] - nose[1]) / 3
    y1 = mouth[1] + 0.1 * eye_mouth
    seed = np.zeros((size, size), bool)
    r = lambda v: int(np.clip(round(v), 0, size))  # noqa: E731
    seed[r(y0) : max(r(y1), r(y0) + 1), r(x0) : max(r(x1), r(x0) + 1)] = True
    return seed


def skin(rgb) -> np.ndarray:
    """Pixels with skin chroma (YCrCb ranges of `faces`), bool (H, W); none for grey images."""
    crcb = cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2YCrCb)[..., 1:].astype(np.int16)
    if np.abs(crcb - 128).mean() < 4:
        return np.zeros(crcb.shape[:2], bool)
    cr, cb = crcb[..., 0], crcb[..., 1]
    return (cr >= SKIN_CR[0]) & (cr <= SKIN_CR[1]) & (cb >= SKIN_CB[0]) & (cb <= SKIN_CB[1])


def trimap(aligned, landmarks) -> np.ndarray:
    """GrabCut's initial labels (uint8 (S, S) of cv2.GC_*) for an aligned face; see module docstring."""
    size = aligned.shape[0]
    pts = np.asarray(landmarks, np.float64)
    labels = np.full((size, size), cv2.GC_PR_BGD, np.uint8)
    outline = overlay.face_points(pts)[[0, 1, 2, 5, 4, 3]]
    centre = outline.mean(0)
    grown = np.round((outline - centre) * 1.15 + centre).astype(np.int32)
    expected = np.zeros((size, size), np.uint8)
    cv2.fillPoly(expected, [grown], 1)
    labels[(expected > 0) & ~skin(aligned)] = cv2.GC_PR_FGD
    eye_y = (pts[0, 1] + pts[1, 1]) / 2
    eye_mouth = (pts[3, 1] + pts[4, 1]) / 2 - eye_y
    labels[: int(np.clip(round(eye_y + 0.1 * eye_mouth), 0, size))] = cv2.GC_BGD
    labels[seed_region(pts, size)] = cv2.GC_FGD
    return labels


def segment_mask(aligned, landmarks=None, iterations: int = ITERATIONS):
    """The worn face mask on an aligned face, as the region to fill.

    Args:
      aligned: RGB uint8 (S, S, 3) face from `align.warp(rgb, alignment(face, S), S)`.
      landmarks: its (5, 2) landmarks on this canvas (default: the canonical
        ones, `overlay.CANONICAL`, scaled to S).
      iterations: GrabCut iterations.

    Returns:
      (region bool (S, S), method): method is "mask", or "mask_fallback_box"
      when the segment failed the sanity check and the mouth box is returned.
    """
    aligned = np.ascontiguousarray(np.asarray(aligned, np.uint8))
    size = aligned.shape[0]
    if landmarks is None:
        landmarks = overlay.CANONICAL * size / align.CANVAS
    labels = trimap(aligned, landmarks)
    # GrabCut works in BGR internally but any consistent order is fine.
    seeded_grabcut(aligned, labels, iterations)
    fg = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.uint8)
    region = _seeded_component(fg, seed_region(landmarks, size))
    region = _fill_holes(region)
    k = max(1, round(DILATE * size / align.CANVAS))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    region = cv2.dilate(region.astype(np.uint8), kernel) > 0
    box = box_region(size)
    if region.sum() < MIN_AREA * box.sum() or region.mean() > MAX_AREA:
        return box, "mask_fallback_box"
    return region, "mask"


def _seeded_component(fg: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """The connected component of `fg` overlapping `seed` most (bool)."""
    n, labels = cv2.connectedComponents(fg, connectivity=8)
    if n <= 1:
        return np.zeros(fg.shape, bool)
    counts = np.bincount(labels[seed], minlength=n)
    counts[0] = 0
    best = int(np.argmax(counts))
    if counts[best] == 0:
        return np.zeros(fg.shape, bool)
    return labels == best


def _fill_holes(region: np.ndarray) -> np.ndarray:
    """The region with every enclosed hole filled (flood fill of the outside)."""
    padded = np.pad(region.astype(np.uint8), 1)
    flood = padded.copy()
    mask = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(flood, mask, (0, 0), 1)
    return (region | (flood[1:-1, 1:-1] == 0)).astype(bool)

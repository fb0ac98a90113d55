"""Filters that decide which faces a dataset keeps: a visible mouth, skin where a face mask would sit, landmarks in the mouth box."""

import cv2
import numpy as np

from glcic_jax.faces import align, skin


def mouth_visible(face, image_size: tuple[int, int]) -> bool:
    """Whether the five landmarks describe a plausible, visible mouth.

    MTCNN always returns five points, so "missing" means implausible: a
    landmark outside the photo, the mouth not below the nose and the nose not
    below the eyes once the eyes are level, or a mouth width far from the
    eye distance (a hand or mask over the mouth usually breaks one of these,
    though not always: the check cannot see an occluder directly).

    Args:
      face: the detection.
      image_size: (width, height) of the source image.

    Returns:
      True when the mouth looks usable.
    """
    w, h = image_size
    pts = face.landmarks
    if np.any(pts < 0) or np.any(pts[:, 0] > w - 1) or np.any(pts[:, 1] > h - 1):
        return False
    q = pts @ align.eye_rotation(face).T
    eye_y = (q[0, 1] + q[1, 1]) / 2
    nose_y, mouth_y = q[2, 1], (q[3, 1] + q[4, 1]) / 2
    eye_dist = abs(q[1, 0] - q[0, 0])
    mouth_width = q[4, 0] - q[3, 0]
    if eye_dist <= 0 or not eye_y < nose_y < mouth_y:
        return False
    return 0.4 <= mouth_width / eye_dist <= 1.6


# Where a face mask sits on the 256 canvas, as (x0, y0, x1, y1): both lower
# cheeks and the chin. Not the mouth itself: teeth are not skin-coloured.
LOWER_FACE = ((64, 150, 100, 200), (156, 150, 192, 200), (100, 206, 156, 236))


def mouth_skin_fraction(aligned: np.ndarray) -> float:
    """Share of the lower face (cheeks beside the mouth, chin) with skin chroma.

    Face masks are white, grey, black, blue or green: neutral or cool chroma,
    outside the skin range, which is nearly the same for every skin tone
    (tone is mostly luminance, which this ignores). Measured with threshold
    0.4: bare faces dropped 0.2% (603 LFW faces) and 0.8% (599 CelebA faces;
    colour-cast lighting, profiles); the same faces under pasted face-mask
    templates kept 0% and 0.7%. Masks in skin colours pass, and
    grey photos always pass (returns 1.0: chroma cannot tell).

    Args:
      aligned: an aligned RGB uint8 (S, S, 3) face.

    Returns:
      The fraction in [0, 1].
    """
    k = aligned.shape[0] / align.CANVAS
    crcb = cv2.cvtColor(aligned, cv2.COLOR_RGB2YCrCb)[..., 1:].astype(np.int16)
    if np.abs(crcb - 128).mean() < 4:
        return 1.0
    pixels = np.concatenate(
        [
            crcb[round(y0 * k) : round(y1 * k), round(x0 * k) : round(x1 * k)].reshape(-1, 2)
            for x0, y0, x1, y1 in LOWER_FACE
        ]
    )
    cr, cb = pixels[:, 0], pixels[:, 1]
    (cr_lo, cr_hi), (cb_lo, cb_hi) = skin.SKIN_CR, skin.SKIN_CB
    is_skin = (cr >= cr_lo) & (cr <= cr_hi) & (cb >= cb_lo) & (cb <= cb_hi)
    return float(is_skin.mean())


def in_box(points: np.ndarray, box=align.MOUTH_BOX, size: int = align.CANVAS) -> bool:
    """Whether all (N, 2) canvas points lie inside `box` (scaled to `size`)."""
    k = size / align.CANVAS
    x0, y0, x1, y1 = (v * k for v in box)
    p = np.asarray(points)
    return bool(np.all((p[:, 0] >= x0) & (p[:, 0] <= x1) & (p[:, 1] >= y0) & (p[:, 1] <= y1)))

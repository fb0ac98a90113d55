"""The paper's optional post-processing: fast-marching fill, then Poisson blending.

GLCIC (Sec. 3.4) blends the network's hole into its surroundings with the
fast marching method followed by Poisson image blending. Here: the hole of the
original is filled by OpenCV's fast marching (Telea) inpainting, and the
network's completion is Poisson-blended onto that with `cv2.seamlessClone`,
so the hole keeps the network's gradients while its border takes the
surrounding colours. Pixels outside the hole are the original's, exactly.
"""

import cv2
import numpy as np


def _to_uint8(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def blend(original, completed, hole) -> np.ndarray:
    """One RGB image: original and completion (uint8 or [0, 1]), hole (H, W) -> uint8."""
    original, completed = _to_uint8(original), _to_uint8(completed)
    hole = np.asarray(hole).reshape(original.shape[:2]) > 0.5
    if not hole.any():
        return original.copy()
    hole_u8 = hole.astype(np.uint8) * 255
    base = cv2.inpaint(original, hole_u8, 3, cv2.INPAINT_TELEA)
    h, w = hole.shape
    # seamlessClone needs the mask's bounding box strictly inside the image.
    region = np.zeros_like(hole_u8)
    region[1 : h - 1, 1 : w - 1] = cv2.dilate(hole_u8, np.ones((3, 3), np.uint8))[
        1 : h - 1, 1 : w - 1
    ]
    ys, xs = np.nonzero(region)
    if len(ys) == 0:  # a hole only along the image border: nothing to blend into
        out = original.copy()
        out[hole] = completed[hole]
        return out
    centre = (int((xs.min() + xs.max() + 1) // 2), int((ys.min() + ys.max() + 1) // 2))
    blended = cv2.seamlessClone(completed, base, region, centre, cv2.NORMAL_CLONE)
    out = original.copy()
    out[hole] = blended[hole]
    return out

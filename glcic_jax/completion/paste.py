"""Between a photo and a face's 256 frame: a region framed like a mouth, a completed frame pasted back.

The photo keeps its own resolution throughout: only the region's bounding
box is warped, so memory stays small for any photo, and every pixel outside
the region is the input's, bit for bit.
"""

import math

import cv2
import numpy as np

from glcic_jax.faces import align


def region_framing(user_mask) -> np.ndarray:
    """The 2x3 affine that frames a photo-pixel region like a mouth on the 256 canvas.

    For a photo without a detected face: no rotation, the bounding box's
    centre goes to the centre of `align.MOUTH_BOX`, and the box is
    scaled to just fit in it (its larger side, relative to the mouth box's,
    decides), so the model sees a hole of a mouth's size and place, with the
    region's surroundings as context (`PhotoCompleter` reframes it for
    models framed by the mask crop).

    Args:
      user_mask: bool (H, W), not all False.

    Returns:
      float (2, 3) array, photo pixels -> canvas (as `align.alignment`).
    """
    ys, xs = np.nonzero(user_mask)
    centre = np.array([xs.min() + xs.max(), ys.min() + ys.max()], np.float64) / 2
    x0, y0, x1, y1 = align.MOUTH_BOX
    scale = min((x1 - x0) / (xs.max() - xs.min() + 1), (y1 - y0) / (ys.max() - ys.min() + 1))
    target = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    return np.array(
        [[scale, 0.0, target[0] - scale * centre[0]], [0.0, scale, target[1] - scale * centre[1]]]
    )


def paste_back(out, completed, region, affine, allowed=None) -> np.ndarray:
    """Copies a completed canvas's region into the photo `out` in place.

    The canvas is warped back with the inverse of `affine`, over the
    region's bounding box in the photo only (memory stays small for any
    photo). When the face is smaller than the canvas the completion is
    blurred first (Gaussian, sigma 0.5 per shrink factor) so it does not alias.

    Args:
      out: RGB uint8 (H, W, 3) photo, modified.
      completed: RGB uint8 (S, S, 3) completed frame (256, or the refiner's side).
      region: bool (S, S) pixels to copy.
      affine: 2x3 photo -> that frame.
      allowed: optional bool (H, W): never write outside it (a user's photo mask).

    Returns:
      bool (H, W): the photo pixels that were written.
    """
    height, width = out.shape[:2]
    written = np.zeros((height, width), bool)
    ys, xs = np.nonzero(region)
    if len(ys) == 0:
        return written
    inverse = cv2.invertAffineTransform(affine)
    corners = np.array(
        [[xs.min() - 1, ys.min() - 1], [xs.max() + 1, ys.min() - 1]]
        + [[xs.min() - 1, ys.max() + 1], [xs.max() + 1, ys.max() + 1]],
        np.float64,
    )
    src = align.apply_affine(inverse, corners)
    x0, y0 = (max(0, int(math.floor(v)) - 1) for v in src.min(0))
    x1 = min(width, int(math.ceil(src[:, 0].max())) + 2)
    y1 = min(height, int(math.ceil(src[:, 1].max())) + 2)
    if x1 <= x0 or y1 <= y0:
        return written
    # Photo pixel (u + x0, v + y0) -> canvas: the affine with a shifted origin.
    local = affine.copy()
    local[:, 2] += affine[:, :2] @ np.array([x0, y0], np.float64)
    shrink = math.sqrt(abs(np.linalg.det(affine[:, :2])))  # canvas px per photo px
    source, flags = completed, cv2.INTER_CUBIC
    if shrink > 1.0:
        source = cv2.GaussianBlur(completed, (0, 0), 0.5 * shrink)
        flags = cv2.INTER_LINEAR
    size = (x1 - x0, y1 - y0)
    colour = cv2.warpAffine(
        source, local, size, flags=flags | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )
    inside = (
        cv2.warpAffine(
            region.astype(np.float32),
            local,
            size,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        > 0.5
    )
    if allowed is not None:
        inside &= allowed[y0:y1, x0:x1]
    out[y0:y1, x0:x1][inside] = colour[inside]
    written[y0:y1, x0:x1] = inside
    return written


def inpaint_rest(out, rest, radius: int = 5) -> np.ndarray:
    """Fills `rest` (bool (H, W)) in the photo `out` in place with Telea; returns `rest`.

    For the part of a photo region the aligned canvas does not reach. Works
    on the region's bounding box plus a margin, so a large photo costs little.
    """
    ys, xs = np.nonzero(rest)
    if len(ys) == 0:
        return rest
    height, width = out.shape[:2]
    pad = 2 * radius + 2
    y0, y1 = max(0, ys.min() - pad), min(height, ys.max() + pad + 1)
    x0, x1 = max(0, xs.min() - pad), min(width, xs.max() + pad + 1)
    hole = rest[y0:y1, x0:x1].astype(np.uint8)
    out[y0:y1, x0:x1] = cv2.inpaint(out[y0:y1, x0:x1], hole, radius, cv2.INPAINT_TELEA)
    return rest

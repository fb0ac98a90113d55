"""The overlay hole regime's bank: face-mask-shaped holes drawn once on the host.

Training and evaluation sample from a fixed bank (`holes.hole_bank` turns it
into device arrays), as the box regimes sample boxes; this module draws the
bank from the face-mask templates with numpy and OpenCV.
"""

import math

import cv2
import numpy as np

from glcic_jax.face_masks import overlay
from glcic_jax.faces import align
from glcic_jax.faces import framing as framing_lib


def mask_bank(
    image_size: int,
    n: int,
    seed: int,
    templates_dir=None,
    framing: str = "canvas",
    dilation: int = 0,
):
    """n mask-shaped holes in a `framing` frame at `image_size`: the overlay hole regime.

    Each hole is one template (uniform over all 21, turned ones included, so
    shapes vary) placed on the canonical face points with `overlay.jitter`, its
    alpha > 0.5, clipped to the canvas. Deterministic for a seed.

    Args:
      image_size: side of the model's images.
      n: number of holes.
      seed: numpy seed.
      templates_dir: the templates' folder; None: `default_templates_dir()`.
      framing: the frame the holes are drawn in (`framing.FRAMINGS`).
      dilation: each hole is grown by a random 0..`dilation` canvas pixels
        (a photo's mask region is the segmenter's, grown by a margin).

    Returns:
      (masks float32 (n, S, S) in {0, 1}, boxes int32 (n, 4) as (top, left,
      height, width): each mask's bounding box).
    """
    rng = np.random.default_rng(seed)
    overlay.load_templates(templates_dir)  # Fail early, with the folder in the message.
    if framing == "canvas":  # the banks of runs before framing, bit for bit
        base = overlay.face_points(overlay.CANONICAL * image_size / align.CANVAS)
    else:
        base = framing_lib.canvas_points(
            overlay.face_points(overlay.CANONICAL), framing, image_size
        )
    # Its own stream, so the templates and jitters are the same with or without dilation.
    grow_rng = np.random.default_rng([seed, 1])
    # Canvas pixels -> frame pixels, for the dilation.
    frame_scale = math.sqrt(abs(np.linalg.det(framing_lib.from_canvas(framing, image_size)[:, :2])))
    out = np.zeros((n, image_size, image_size), np.float32)
    boxes = np.zeros((n, 4), np.int32)
    for i in range(n):
        template = overlay.TEMPLATES[rng.integers(len(overlay.TEMPLATES))]
        points = overlay.jitter(base, rng)
        _, alpha, (y0, x0) = overlay.warp_template(
            template, points, (image_size, image_size), templates_dir
        )
        h, w = alpha.shape
        out[i, y0 : y0 + h, x0 : x0 + w] = alpha > 0.5
        if dilation:
            radius = round(grow_rng.integers(dilation + 1) * frame_scale)
            if radius:
                disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
                out[i] = cv2.dilate(out[i], disc)
        ys, xs = np.nonzero(out[i])
        if len(ys) == 0:  # Cannot happen on the canonical face; keep the box valid.
            boxes[i] = (0, 0, 1, 1)
            continue
        boxes[i] = (ys.min(), xs.min(), ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
    return out, boxes

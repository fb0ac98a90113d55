"""The study's aligned 256x256 canvas: its size, the mouth box, and the affine that puts a face on it.

Alignment: rotate about the source so the eyes are level, scale so the face
fills the frame (eye-to-mouth distance `EYE_MOUTH_PX` at 256 px), and put the
mouth centre at `MOUTH_TARGET` = (128, 176), the middle of the study's mouth
hole (x 56..200, y 128..224). The rotation runs at source resolution
(bicubic, border reflected), then Pillow's LANCZOS resize does the scale
change: a single warp would alias when a large photo is shrunk.

Coordinates: every public point and affine here is in pixel-index
coordinates (the centre of pixel column i is x = i), which is what MTCNN
returns and what a user applies to a landmark.
"""

import math

import cv2
import numpy as np
from PIL import Image

CANVAS = 256
# The study's mouth hole as (x0, y0, x1, y1) on the 256 canvas (x 56..200,
# y 128..224); `holes.MOUTH_HOLE` is the same box as (top, left, height, width).
MOUTH_BOX = (56, 128, 200, 224)
MOUTH_TARGET = (128.0, 176.0)
EYE_MOUTH_PX = 80.0


def eye_rotation(face) -> np.ndarray:
    """The 2x2 rotation that makes the eyes level."""
    dx, dy = face.point("right_eye") - face.point("left_eye")
    angle = math.atan2(dy, dx)
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, s], [-s, c]])


def alignment(face, size: int = CANVAS) -> np.ndarray:
    """The 2x3 affine taking source pixels to the aligned `size` canvas.

    Eyes level; the larger of the eye distance and the eye-to-mouth distance
    becomes `EYE_MOUTH_PX` (scaled to `size`); the mouth centre goes to
    `MOUTH_TARGET` vertically, and the midpoint of eyes and mouth to the
    canvas centre line horizontally (so a turned head stays in frame).

    Args:
      face: the detection, in source pixels.
      size: output side in pixels.

    Returns:
      float (2, 3) array [[a, b, c], [d, e, f]]: x' = a x + b y + c, y' = d x + e y + f.
    """
    k = size / CANVAS
    rot = eye_rotation(face)
    q = face.landmarks @ rot.T
    eye_mid, mouth_mid = (q[0] + q[1]) / 2, (q[3] + q[4]) / 2
    dist = max(mouth_mid[1] - eye_mid[1], abs(q[1, 0] - q[0, 0]), 1e-6)
    scale = EYE_MOUTH_PX * k / dist
    anchor = np.array([(eye_mid[0] + mouth_mid[0]) / 2, mouth_mid[1]])
    target = np.array(MOUTH_TARGET) * k
    linear = scale * rot
    return np.concatenate([linear, (target - scale * anchor)[:, None]], axis=1)


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Maps (N, 2) points through a 2x3 affine."""
    points = np.asarray(points, np.float64)
    return points @ affine[:, :2].T + affine[:, 2]


def outside_fraction(affine: np.ndarray, image_size: tuple[int, int], size: int) -> float:
    """Fraction of the output canvas whose source lies outside the photo."""
    w, h = image_size
    grid = (np.arange(32) + 0.5) * size / 32 - 0.5
    xs, ys = np.meshgrid(grid, grid)
    out = np.stack([xs.ravel(), ys.ravel()], axis=1)
    inv = cv2.invertAffineTransform(affine)
    src = apply_affine(inv, out)
    inside = (src[:, 0] >= -0.5) & (src[:, 0] <= w - 0.5) & (src[:, 1] >= -0.5)
    inside &= src[:, 1] <= h - 0.5
    return float(1.0 - inside.mean())


def warp(rgb: np.ndarray, affine: np.ndarray, size: int = CANVAS) -> Image.Image:
    """Renders the aligned face: rotation at source scale, then a LANCZOS resize.

    The result equals `affine` applied to `rgb` (up to resampling): the
    rotated square the canvas covers is cut from the source with an integer
    offset (so an upright face is copied, not resampled) and Pillow resizes
    exactly that float box to `size`. Pixels outside the photo are mirrored.

    Args:
      rgb: source RGB uint8 (H, W, 3).
      affine: from `alignment(face, size)`.
      size: output side.

    Returns:
      The aligned RGB image, `size` x `size`.
    """
    linear = affine[:, :2]
    scale = math.sqrt(abs(np.linalg.det(linear)))
    rot = linear / scale
    # Continuous coordinates (pixel centre at i + 0.5) from here on, the
    # convention of Pillow's resize box: p_c = p + 0.5.
    t_c = affine[:, 2] + 0.5 - scale * rot @ np.array([0.5, 0.5])
    # Canvas origin in the rotated frame (q = rot @ p_c): q0 = -t_c / scale.
    q0 = -t_c / scale
    side = size / scale
    pad = 4
    origin = np.floor(q0) - pad  # Integer offset of the intermediate crop.
    crop = int(math.ceil((q0 - origin).max() + side)) + pad  # Square, covers the box.
    # Intermediate pixel u (index) <- rotated q = u + 0.5 + origin <- source
    # continuous p_c = rot.T @ q, source index p = p_c - 0.5.
    m = np.concatenate([rot.T, (rot.T @ (origin + 0.5) - 0.5)[:, None]], axis=1)
    inter = cv2.warpAffine(
        rgb,
        m,
        (crop, crop),
        flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT_101,
    )
    box = (*(q0 - origin), *(q0 - origin + side))
    return Image.fromarray(inter).resize((size, size), Image.Resampling.LANCZOS, box=box)

"""How a face is framed for the completion model: the study's canvas or the mask crop.

    canvas     `align.alignment`: the study's aligned 256 canvas, the
               mouth box bottom-centre; it ends 24 canvas pixels under the
               chin, so a worn mask's lower part falls off it.
    mask_crop  `mask_crop.CANVAS_BOX`: the same alignment zoomed out to
               x -32..288, y 16..336 (eyes, both cheeks, 104 canvas pixels
               under the chin): the whole region a worn mask covers.

A model records its framing in its config (`framing`), a prepared data
folder in its summary (`prepare.Settings.framing`); the photo pipeline
frames each face as its model was trained.
"""

import cv2
import numpy as np

from glcic_jax.faces import align, detection, mask_crop

FRAMINGS = ("canvas", "mask_crop")


class FramingError(ValueError):
    """An unknown framing; the message is one line for the user."""


def check(framing: str) -> str:
    """`framing`, if it is one of `FRAMINGS`; else FramingError."""
    if framing not in FRAMINGS:
        raise FramingError(f"framing must be one of {', '.join(FRAMINGS)}, not {framing!r}")
    return framing


def from_canvas(framing: str, size: int) -> np.ndarray:
    """The 2x3 affine from aligned-canvas pixels (256 frame) to a `size` frame."""
    if check(framing) == "mask_crop":
        return mask_crop.from_canvas(size)
    k = size / align.CANVAS  # as `align.alignment(face, size)` scales
    return np.array([[k, 0.0, 0.0], [0.0, k, 0.0]])


def photo_affine(face: detection.Face, framing: str, size: int) -> np.ndarray:
    """The 2x3 affine taking photo pixels to the face's `size` x `size` frame."""
    if check(framing) == "canvas":
        return align.alignment(face, size)
    return mask_crop.crop_affine(face, size)


def reframe(canvas_affine, framing: str, size: int) -> np.ndarray:
    """An affine onto the aligned 256 canvas -> the same onto a `size` frame."""
    return mask_crop.compose(from_canvas(framing, size), canvas_affine)


def canvas_points(points, framing: str, size: int) -> np.ndarray:
    """Points on the aligned 256 canvas -> the same points in a `size` frame."""
    return align.apply_affine(from_canvas(framing, size), np.asarray(points, np.float64))


def canvas_region(region, framing: str, size: int) -> np.ndarray:
    """A bool (256, 256) region on the aligned canvas -> bool (size, size) in the frame."""
    region = np.asarray(region, bool)
    if check(framing) == "canvas" and size == align.CANVAS:
        return region.copy()
    warped = cv2.warpAffine(
        region.astype(np.float32), from_canvas(framing, size), (size, size), flags=cv2.INTER_LINEAR
    )
    return warped > 0.5

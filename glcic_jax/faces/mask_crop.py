"""The mask crop: the framing a worn face mask is segmented in.

The study's aligned 256 canvas (`align.alignment`) ends just under the
chin (the chin sits at y = 232), so a mask that runs under the chin or
past the cheeks is cut off there. The mask crop is the same alignment
zoomed out and moved down: the canvas square `CANVAS_BOX` = x -32..288,
y 16..336 (320 canvas pixels a side), which holds the eyes (y 96, context
for where a mask starts), both cheeks with room for a turned head, and 104
canvas pixels below the chin. Every template pasted on a face by
`overlay.face_points` + `overlay.jitter` lies inside it.

`crop_affine(face, size)` maps photo pixels to a `size` x `size` mask crop;
`align.warp` renders it like the aligned canvas.
"""

import numpy as np

from glcic_jax.faces import align, detection

# (x0, y0, side) of the mask crop on the aligned 256 canvas.
CANVAS_BOX = (-32.0, 16.0, 320.0)


def from_canvas(size: int) -> np.ndarray:
    """The 2x3 affine from aligned-canvas pixels (256 frame) to a `size` mask crop."""
    x0, y0, side = CANVAS_BOX
    k = size / side
    # Pixel-index coordinates: canvas pixel centre c maps to (c - x0 + 0.5) k - 0.5.
    return np.array([[k, 0.0, (0.5 - x0) * k - 0.5], [0.0, k, (0.5 - y0) * k - 0.5]])


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 affine `outer` after `inner`."""
    full = np.vstack([outer, [0.0, 0.0, 1.0]]) @ np.vstack([inner, [0.0, 0.0, 1.0]])
    return full[:2]


def crop_affine(face: detection.Face, size: int) -> np.ndarray:
    """The 2x3 affine taking photo pixels to the face's `size` x `size` mask crop."""
    return compose(from_canvas(size), align.alignment(face, align.CANVAS))


def landmarks_affine(landmarks, size: int) -> np.ndarray:
    """`crop_affine` for a face known only by its five landmarks (synthetic data)."""
    face = detection.Face(box=(0.0, 0.0, 0.0, 0.0), confidence=1.0, landmarks=np.asarray(landmarks))
    return crop_affine(face, size)

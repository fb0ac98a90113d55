"""The coarse fill the fine stage refines, made the same way in training and in the photo pipeline."""

import cv2
import numpy as np


def resize(image, size: int, interpolation=cv2.INTER_AREA):
    """A square image at `size` (area averaging by default); itself when already that size."""
    if image.shape[0] == size:
        return image
    return cv2.resize(image, (size, size), interpolation=interpolation)


def coarse_fills(completer, frames, regions) -> list:
    """The completion model's fills of framed faces, scaled up to each frame's side.

    Each frame is shrunk to the model's size (area averaging), its region with
    it (any covered pixel stays hole), completed by `completer` (an
    `inference.Completer`), and the result scaled back up (bicubic) to its
    frame's side: a list of float32 (S, S, 3) in [0, 1]. The photo pipeline's
    fill before the fine stage, and what the refiner trains on.
    """
    size = completer.image_size
    small = np.stack([resize(a, size) for a in frames])
    holes = np.stack([resize(np.asarray(r, np.float32), size) > 0 for r in regions])
    done = completer.complete(small, holes)
    return [np.clip(resize(r, len(f), cv2.INTER_CUBIC), 0.0, 1.0) for r, f in zip(done, frames)]

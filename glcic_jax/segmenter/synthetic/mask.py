"""The worn mask of a synthetic sample: where a MaskTheFace template sits on a face, and how it looks.

`place` fits a template (`overlay.homography`) to six face points that follow
a turned head (`face_points`), varied as a split's regime asks (jitter,
pitch, a squeezed side, worn under the nose or on the chin, alpha grown or
shrunk, the edge as soft as the photo), and redraws any placement that would
cut the mask at the crop's border. `paint` gives it its own colours, a solid
recolour or a print (`prints`) under the template's own shading;
`light` matches it to the face's brightness.

A regime is `synthetic._Regime`; this module reads its fields only.
"""

import functools
import math

import cv2
import numpy as np

from glcic_jax.face_masks import overlay
from glcic_jax.segmenter.synthetic import prints, scene
from glcic_jax.segmenter.synthetic.prints import TEST_PRINTS, TRAIN_PRINTS

# Turned heads (`face_points`): the nose tip stands this far (eye distances)
# in front of the eyes, so sin(yaw) = nose offset / depth; the head turns
# about an axis this far behind the face at cheek and jaw height.
_NOSE_DEPTH = 0.5
_AXIS_DEPTH = {"cheek": 1.2, "jaw": 1.0}
_HALF_WIDTH = {"cheek": 1.1, "jaw": 0.9}  # overlay.face_points' half-widths


def templates_path(templates_dir) -> str:
    """The templates' folder as a string (a cache key): `templates_dir`, else overlay's default."""
    return str(overlay.default_templates_dir() if templates_dir is None else templates_dir)


@functools.lru_cache(maxsize=128)
def _template_level(templates_dir: str, name: str, level: int) -> np.ndarray:
    """The template halved `level` times: uint8 RGBA, RGB premultiplied by alpha.

    Warping a template from 512 px straight onto a 60 px mask would alias its
    pleats and edge; each level is one image-pyramid step down instead
    (premultiplied, so no dark fringe bleeds in). uint8 warps 3x faster.
    """
    rgba = overlay.load_templates(templates_dir)[name][0].astype(np.float32)
    rgba[..., :3] *= rgba[..., 3:] / 255.0
    for _ in range(level):
        rgba = cv2.pyrDown(rgba)
    return np.clip(np.round(rgba), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=64)
def _template_box(templates_dir: str, name: str) -> tuple:
    """(x0, y0, x1, y1) of the template's opaque pixels, template pixels."""
    ys, xs = np.nonzero(overlay.load_templates(templates_dir)[name][0][..., 3] > 0)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def warp_template(templates_dir: str, name: str, hom, size: int):
    """The template through `hom` (template px -> crop px), from the pyramid level that fits.

    Returns:
      (float32 (S, S, 3) premultiplied colour in [0, 255], float32 (S, S) alpha).
    """
    # The template's scale where it lands: the Jacobian of `hom` at the anchors' centre.
    centre = overlay.load_templates(templates_dir)[name][1].mean(0)
    probe = np.array([centre, centre + (8.0, 0.0), centre + (0.0, 8.0)])
    p0, px, py = cv2.perspectiveTransform(probe[None], hom)[0]
    (ax, ay), (bx, by) = px - p0, py - p0
    area = abs(ax * by - ay * bx) / 64.0
    level = int(np.clip(math.floor(-0.5 * math.log2(max(area, 1e-9))), 0, 4))
    k = 2.0**level  # Level pixel u is template pixel (u + 0.5) k - 0.5.
    up = np.array([[k, 0, 0.5 * k - 0.5], [0, k, 0.5 * k - 0.5], [0, 0, 1]])
    warped = cv2.warpPerspective(
        _template_level(templates_dir, name, level), hom @ up, (size, size), flags=cv2.INTER_LINEAR
    ).astype(np.float32)
    return warped[..., :3], warped[..., 3] * np.float32(1 / 255)


def face_points(face: scene.FaceFrame) -> np.ndarray:
    """`overlay.face_points` with the cheek and jaw corners where a turned head's outline is.

    overlay centres the mask's corners on the nose and mouth, which puts the
    far corners of a turned head's mask out in the air. Here the head turns
    about a vertical axis behind the face (`_AXIS_DEPTH`): the outline's
    centre moves against the nose by depth * sin(yaw), its half-width is the
    projected ellipse's. Frontal faces (yaw 0) keep overlay's points.
    """
    local = face.local(overlay.face_points(face.landmarks))
    sin = float(np.clip(face.yaw / _NOSE_DEPTH, -0.8, 0.8))
    cos = math.sqrt(1.0 - sin * sin)
    for (i, j), part in (((0, 2), "cheek"), ((3, 5), "jaw")):
        depth, half = _AXIS_DEPTH[part], _HALF_WIDTH[part]
        centre = -depth * sin
        half = math.hypot(half * cos, depth * sin)
        local[i, 0], local[j, 0] = centre - half, centre + half
    # Keep the far corners beyond the nose tip and the far mouth corner.
    nose, mouth = face.local(face.landmarks[2]), face.local(face.landmarks[3:])
    if sin > 0:
        local[2, 0] = max(local[2, 0], nose[0] + 0.15)
        local[5, 0] = max(local[5, 0], mouth[1, 0] + 0.1)
    elif sin < 0:
        local[0, 0] = min(local[0, 0], nose[0] - 0.15)
        local[3, 0] = min(local[3, 0], mouth[0, 0] - 0.1)
    return face.image(local)


def _mask_points(face: scene.FaceFrame, rng, regime) -> np.ndarray:
    """Six face points (crop px) for the template: jitter, pitch, a squeezed side, worn low."""
    local = face.local(face_points(face))
    local = local + rng.normal(0, regime.point_noise, local.shape)
    height = local[4, 1] - local[1, 1]
    if rng.random() < regime.p_pitch:  # chin and nose bridge move apart or together
        local[3:, 1] += rng.uniform(-0.1, 0.1) * height
        local[1, 1] += rng.uniform(-0.06, 0.06) * height
    if rng.random() < regime.p_squeeze:  # one side compressed toward the centre
        side = rng.choice([-1.0, 1.0])
        centre = local[[1, 4], 0].mean()
        far = (local[:, 0] - centre) * side > 0
        local[far, 0] = centre + (local[far, 0] - centre) * rng.uniform(0.8, 0.95)
        local[[1, 4], 0] += side * rng.uniform(0.0, 0.08)
    worn = rng.random()
    if worn < regime.p_under_nose:  # the top edge under the nose tip
        local[:3, 1] += rng.uniform(0.25, 0.4) * height
    elif worn < regime.p_under_nose + regime.p_on_chin:  # down on the chin
        local[:3, 1] += rng.uniform(0.55, 0.75) * height
        local[3:, 1] += rng.uniform(0.2, 0.35) * height
    return overlay.jitter(face.image(local), rng, *regime.jitter)


def place(template, face, rng, regime, size, tdir, photo_scale):
    """Geometry and alpha edits of a mask lying wholly inside the crop (drawn again if not).

    Args:
      template: a name in `overlay.TEMPLATES`.
      face: the face in the crop.
      rng: numpy generator.
      regime: the split's variations.
      size: the crop's side.
      tdir: `templates_path(...)`.
      photo_scale: crop pixels per source photo pixel (how soft the photo is).

    Returns:
      (homography, premultiplied colour (S, S, 3), alpha (S, S)).
    """
    for attempt in range(8):
        last = attempt == 7  # the plain face points: inside for any usual face
        points = face_points(face) if last else _mask_points(face, rng, regime)
        hom = overlay.homography(template, points, tdir)
        colour, alpha = warp_template(tdir, template, hom, size)
        if not last and rng.random() < regime.p_grow:
            r = int(rng.integers(1, 3)) * max(1, round(size / 128))
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
            if rng.random() < 0.5:
                grown = cv2.erode(alpha, kernel)
                colour = colour * (grown / np.maximum(alpha, 1e-3))[..., None]
            else:  # Premultiplied colour dilated as the alpha: the edge colour extends.
                grown, colour = cv2.dilate(alpha, kernel), cv2.dilate(colour, kernel)
            alpha = grown
        # As sharp as the photo: a source shown `photo_scale` times enlarged is soft.
        sigma = 0.5 * math.sqrt(max(photo_scale**2 - 1.0, 0.0)) * rng.uniform(0.5, 1.3)
        sigma = max(sigma, rng.uniform(0.0, 0.6) if regime.name == "train" else 0.3)
        if sigma > 0.25:
            colour = cv2.GaussianBlur(colour, (0, 0), sigma)
            alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)
        label = alpha > 0.5
        if label.any() and not (label[[0, -1]].any() or label[:, [0, -1]].any()):
            break
    return hom, colour, alpha


def paint(colour, alpha, template, hom, rng, regime, tdir):
    """The mask's appearance: own colours, a solid recolour or a print, under its own shading.

    Returns:
      (appearance name, premultiplied colour (S, S, 3)).
    """
    kinds, weights = zip(*regime.appearances)
    kind = kinds[rng.choice(len(kinds), p=np.array(weights) / sum(weights))]
    if template.startswith("gas"):  # Respirators come in greys and black, not prints.
        kind = "own" if regime.name == "test" or rng.random() < 0.4 else "neutral"
    if kind == "own":
        return "own", colour
    size = alpha.shape[0]
    if kind == "print":
        families = TRAIN_PRINTS if regime.name == "train" else TEST_PRINTS
        family = families[rng.integers(len(families))]
        name = f"print:{family}"
        w = 64 * size // 128
        pattern = prints.pattern(rng, family, w * 3 // 4, w, regime.name)
        x0, y0, x1, y1 = _template_box(tdir, template)
        box = np.array([[(x1 - x0) / w, 0, x0], [0, (y1 - y0) / (w * 3 // 4), y0], [0, 0, 1]])
        albedo = cv2.warpPerspective(
            pattern, hom @ box, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
    else:
        family, albedo = (
            prints.neutral(rng) if kind == "neutral" else prints.colour(rng, regime.name)
        )
        name = f"solid:{family}"
    # Shading: the template's luminance over its mean keeps pleats and folds.
    luma = (colour / np.maximum(alpha, 1e-3)[..., None]) @ prints.LUMA
    solid = alpha > 0.5
    mean = float(luma[solid].mean()) if solid.any() else 128.0
    shade = np.clip(luma / max(mean, 1.0), 0.3, 1.6)
    shade = 1.0 + (rng.uniform(0.6, 1.0) if regime.name == "train" else 0.8) * (shade - 1.0)
    return name, albedo * (255.0 * shade * alpha)[..., None]


def light(image, face, rng, regime, size):
    """Light on the mask: the face's brightness (as `overlay.paste`), and sometimes a gradient."""
    luminance = float(scene.skin_colour(image, face) @ prints.LUMA)
    level = float(np.clip(math.sqrt(max(luminance, 1.0) / 128.0), 0.4, 1.1))
    if regime.name == "train":
        level *= rng.uniform(0.85, 1.15)
    if rng.random() >= regime.p_light:
        return np.float32(level)
    xs, ys = prints.grid(size, size)
    a = rng.uniform(0, 2 * math.pi)
    ramp = ((xs - size / 2) * math.cos(a) + (ys - size / 2) * math.sin(a)) / size
    return (level * (1.0 + rng.uniform(0.2, 0.7) * ramp)).astype(np.float32)[..., None]

"""Synthetic masked faces with exact labels, in the mask crop: data for a mask segmenter.

A sample is a face photo warped into the mask crop (`mask_crop.landmarks_affine`)
wearing a MaskTheFace template placed on its face points (`overlay`), the
template warped straight into the crop so it is sharp at the crop's
resolution. The label is the visible mask: the warped template's alpha > 0.5,
minus what lies over it (a hand, hair, glasses). The variations make a
network learn a worn mask's shape and place on a face, not the templates'
colours, the source photos' backgrounds or the paste's edges.

Train families (split="train"; probabilities and ranges in `_TRAIN`):
  framing     the crop moved as a face detector's landmark error moves it on a
              masked face (scale, rotation, shift).
  geometry    face points that follow a turned head (`_face_points`), a
              stronger `overlay.jitter`, per-point noise, pitch (chin and nose
              bridge moved), one side compressed, the mask pulled under the
              nose or down on the chin, its alpha grown or shrunk 1-2 px, its
              edge softened to the photo's own sharpness.
  appearance  recoloured (`synthetic_prints`: any train hue, pastels, black,
              white, grey) keeping the template's shading and pleats (its
              luminance over its mean), or printed (stripes, checks, dots,
              smooth noise or camouflage, logo-like shapes) in perspective with
              the mask, or its own colours; lit like the face, with a light
              gradient and a contact shadow on the skin.
  context     neck, clothes, scarf and wall where the photo ends, walls and
              clothes often near the mask's colour (`synthetic_scene`).
  occlusion   a hand, fingers or a glove over the mask's edge, hair strands,
              glasses frames (not mask in the label).
  photometric `synthetic_photometric.degrade_train`; sometimes the crop is
              mirrored past a line under or beside the face, as a real crop of
              a tight photo is; left-right flips.
Bare faces (probability `unmasked`) have an empty label; some carry a scarf
up to the chin, a beard or a hand at the mouth: hard negatives.

Held out for split="test" (`_TEST`; the caller passes test sources):
  - colours: solid recolours only in `synthetic_prints.TEST_HUES` (yellows
    50..70 and violets 285..320 degrees), hues train never draws;
  - prints: `TEST_PRINTS` (chevrons, florals, lettering), families train
    never draws, in test hues and neutrals;
  - half the masks in the templates' own colours (MaskTheFace's);
  - photometric: `synthetic_photometric.degrade_test`, its own chain;
  - milder geometry (`overlay.jitter`'s defaults, a smaller framing error);
    context and occluder families as in train, at lower rates (not held out).
`Sample.appearance` names each sample's colour family or print.

Every sample keeps its whole label inside the crop: a geometry that would cut
the mask at the crop's border is drawn again. `synthesize` is a function of
the generator's state; its stages draw from their own streams, so one seed
frames, fills and degrades a face alike with and without a mask.
"""

import dataclasses
import functools
import json
import math
import os
import pathlib
import tempfile

import cv2
import numpy as np

from glcic_jax.faces import detection, mask_crop, overlay
from glcic_jax.faces import synthetic_photometric as photometric
from glcic_jax.faces import synthetic_prints as prints
from glcic_jax.faces import synthetic_scene as scene
from glcic_jax.faces.synthetic_prints import TEST_HUES, TEST_PRINTS, TRAIN_PRINTS  # noqa: F401

SPLITS = ("train", "test")
# Faces below this detector confidence are not used as sources.
MIN_CONFIDENCE = 0.9
_SOURCES_VERSION = 1
# Turned heads (`_face_points`): the nose tip stands this far (eye distances)
# in front of the eyes, so sin(yaw) = nose offset / depth; the head turns
# about an axis this far behind the face at cheek and jaw height.
_NOSE_DEPTH = 0.5
_AXIS_DEPTH = {"cheek": 1.2, "jaw": 1.0}
_HALF_WIDTH = {"cheek": 1.1, "jaw": 0.9}  # overlay.face_points' half-widths
# How often each frontal template style is drawn: surgical masks (three
# colourings of one shape) are the commonest in photos, respirators rare.
_STYLES = {
    "surgical": 1.0, "surgical_blue": 1.0, "surgical_green": 1.0,
    "cloth": 1.5, "KN95": 1.5, "N95": 1.0, "gas": 0.5,
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class SourceFace:
    """A face photo on disk and its five MTCNN landmarks.

    Attributes:
      path: the photo.
      landmarks: five (x, y) pairs in photo pixels, `detection.LANDMARKS` order.
    """

    path: str
    landmarks: tuple


@dataclasses.dataclass
class Sample:
    """One synthetic mask crop and its label.

    Attributes:
      image: uint8 (S, S, 3) RGB mask crop.
      label: bool (S, S), the visible pixels of the worn mask.
      template: the template's name (`overlay.TEMPLATES`), None for a bare face.
      yaw: the head's yaw proxy: the nose's offset from the eye midpoint along
        the eye line in eye distances (`overlay.pick_variant`'s measure),
        signed in the returned image's orientation.
      appearance: "own", "solid:<colour family>" or "print:<print family>";
        "" for a bare face.
    """

    image: np.ndarray
    label: np.ndarray
    template: str | None
    yaw: float
    appearance: str = ""


class SourcesError(Exception):
    """Face sources that cannot be read; the message is one line for the user."""


# ---------------------------------------------------------------- sources


def _read_rgb(path) -> np.ndarray | None:
    """The photo as RGB uint8, upright (EXIF applied), or None when unreadable.

    OpenCV decodes here, not `dataset.folders`: faces sits below dataset in
    the import layers (pyproject.toml).
    """
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def find_sources(paths, detector=None, progress=True) -> list:
    """The largest confident face of each photo, as `SourceFace`s.

    Photos that do not decode, have no face at `MIN_CONFIDENCE`, or whose
    landmarks describe no plausible mouth (`detection.mouth_visible`: a mask
    placed on wrong landmarks floats) are skipped.

    Args:
      paths: photo files.
      detector: a `detection.Detector`; None makes one.
      progress: show a tqdm bar.

    Returns:
      The sources, in the order of `paths`.
    """
    from tqdm import tqdm

    detector = detector or detection.Detector()
    sources = []
    for path in tqdm(list(paths), desc="faces", unit="photo", disable=not progress):
        rgb = _read_rgb(path)
        if rgb is None:
            continue
        faces = [f for f in detector.detect(rgb) if f.confidence >= MIN_CONFIDENCE]
        if not faces or not detection.mouth_visible(faces[0], (rgb.shape[1], rgb.shape[0])):
            continue
        landmarks = tuple((float(x), float(y)) for x, y in faces[0].landmarks)
        sources.append(SourceFace(path=str(path), landmarks=landmarks))
    return sources


def save_sources(sources, path) -> None:
    """Writes sources as JSON, atomically (a temporary file renamed over `path`)."""
    path = pathlib.Path(path)
    payload = {
        "version": _SOURCES_VERSION,
        "sources": [{"path": s.path, "landmarks": [list(p) for p in s.landmarks]} for s in sources],
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def load_sources(path) -> list:
    """Sources written by `save_sources`.

    Raises:
      SourcesError: missing, not JSON, or not a sources file.
    """
    try:
        payload = json.loads(pathlib.Path(path).read_text())
        if payload.get("version") != _SOURCES_VERSION:
            raise ValueError(f"version {payload.get('version')!r}, expected {_SOURCES_VERSION}")
        return [
            SourceFace(s["path"], tuple(tuple(float(c) for c in p) for p in s["landmarks"]))
            for s in payload["sources"]
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise SourcesError(f"cannot read face sources from {path}: {e}") from None


# ---------------------------------------------------------------- regimes


@dataclasses.dataclass(frozen=True)
class _Regime:
    """One split's variations: probabilities p_*, ranges; lengths in eye distances."""

    name: str  # the split: which colours, prints and photometric chain
    frame: tuple  # crop error: log-scale, degrees, shift (fraction of the crop)
    jitter: tuple  # overlay.jitter's (scale, shift, angle)
    point_noise: float  # per face point
    p_pitch: float
    p_squeeze: float  # one side compressed
    p_under_nose: float
    p_on_chin: float
    p_grow: float  # alpha dilated or eroded
    appearances: tuple  # ((kind, weight), ...) over own, solid, print
    p_light: float  # a light gradient across the mask
    p_shadow: float  # the mask's contact shadow on the skin
    fill: dict  # synthetic_scene.fill_around's probabilities
    p_hand: float
    p_hair: float
    p_glasses: float
    p_neg_scarf: float
    p_neg_beard: float
    p_neg_hand: float
    p_photo_edge: float
    p_flip: float


_TRAIN = _Regime(
    name="train",
    frame=(0.12, 10.0, 0.05),
    jitter=(0.1, 0.05, 8.0),
    point_noise=0.05,
    p_pitch=0.4,
    p_squeeze=0.3,
    p_under_nose=0.08,
    p_on_chin=0.04,
    p_grow=0.3,
    appearances=(("own", 0.15), ("solid", 0.45), ("print", 0.4)),
    p_light=0.5,
    p_shadow=0.5,
    fill=dict(p_wall=0.12, p_clothes=0.3, p_scarf=0.15, p_near=0.5, p_mirror=0.03),
    p_hand=0.2,
    p_hair=0.08,
    p_glasses=0.08,
    p_neg_scarf=0.3,
    p_neg_beard=0.12,
    p_neg_hand=0.2,
    p_photo_edge=0.05,
    p_flip=0.5,
)
_TEST = _Regime(
    name="test",
    frame=(0.06, 5.0, 0.03),
    jitter=(0.06, 0.04, 5.0),
    point_noise=0.02,
    p_pitch=0.2,
    p_squeeze=0.0,
    p_under_nose=0.05,
    p_on_chin=0.0,
    p_grow=0.0,
    appearances=(("own", 0.5), ("solid", 0.25), ("print", 0.25)),
    p_light=0.3,
    p_shadow=0.3,
    fill=dict(p_wall=0.1, p_clothes=0.2, p_scarf=0.1, p_near=0.5, p_mirror=0.0),
    p_hand=0.12,
    p_hair=0.05,
    p_glasses=0.05,
    p_neg_scarf=0.3,
    p_neg_beard=0.1,
    p_neg_hand=0.15,
    p_photo_edge=0.0,
    p_flip=0.5,
)
_REGIMES = {"train": _TRAIN, "test": _TEST}


# ---------------------------------------------------------------- the mask


def _templates_dir(templates_dir) -> str:
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


def _warp_template(templates_dir: str, name: str, hom, size: int):
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


def _face_points(face: scene.FaceFrame) -> np.ndarray:
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


def _mask_points(face: scene.FaceFrame, rng, regime: _Regime) -> np.ndarray:
    """Six face points (crop px) for the template: jitter, pitch, a squeezed side, worn low."""
    local = face.local(_face_points(face))
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


def _shape_mask(template, face, rng, regime, size, tdir, photo_scale):
    """Geometry and alpha edits of a mask lying wholly inside the crop (drawn again if not).

    Returns:
      (homography, premultiplied colour (S, S, 3), alpha (S, S)).
    """
    for attempt in range(8):
        last = attempt == 7  # the plain face points: inside for any usual face
        points = _face_points(face) if last else _mask_points(face, rng, regime)
        hom = overlay.homography(template, points, tdir)
        colour, alpha = _warp_template(tdir, template, hom, size)
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


def _paint(colour, alpha, template, hom, rng, regime, tdir):
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


def _light(image, face, rng, regime, size):
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


# ---------------------------------------------------------------- samples


def _frame(landmarks, size: int, rng, regime: _Regime) -> np.ndarray:
    """The crop's affine, moved by a landmark-error-like similarity about the crop's centre."""
    scale, degrees, shift = regime.frame
    s = math.exp(rng.uniform(-scale, scale))
    a = math.radians(rng.uniform(-degrees, degrees))
    c = np.array([(size - 1) / 2] * 2)
    rot = s * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    t = c + rng.uniform(-shift, shift, 2) * size - rot @ c
    return mask_crop.compose(
        np.concatenate([rot, t[:, None]], 1), mask_crop.landmarks_affine(landmarks, size)
    )


def _warp_photo(rgb, affine, size: int):
    """The photo in the crop: mirrored past its border, where it really is, and a defocused backdrop.

    Returns:
      (float32 (S, S, 3) image, float32 (S, S) inside, float32 (S, S, 3)
      backdrop: the photo's edge pixels stretched outward and blurred, scale:
      crop pixels per photo pixel).
    """
    scale = math.sqrt(abs(np.linalg.det(affine[:, :2])))
    if scale < 0.6:  # Shrink large photos first: a single warp would alias.
        k = scale / 0.9
        rgb = cv2.resize(rgb, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        affine = affine @ np.diag([1 / k, 1 / k, 1.0])
    warp = functools.partial(cv2.warpAffine, flags=cv2.INTER_LINEAR)
    image = warp(rgb, affine, (size, size), borderMode=cv2.BORDER_REFLECT_101)
    inside = warp(np.ones(rgb.shape[:2], np.float32), affine, (size, size))
    small = max(4, size // 4)
    back = warp(rgb, np.diag([small / size] * 2 + [1])[:2] @ np.vstack([affine, [0, 0, 1]]),
                (small, small), borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    back = cv2.GaussianBlur(back.astype(np.float32), (0, 0), small / 16)
    backdrop = cv2.resize(back, (size, size), interpolation=cv2.INTER_LINEAR)
    return image.astype(np.float32), inside, backdrop, scale


def synthesize(rgb, landmarks, rng: np.random.Generator, size: int, split="train",
               templates_dir=None, unmasked=0.15) -> Sample:  # fmt: skip
    """One mask crop of a face photo wearing a random mask (or none), and its label.

    Args:
      rgb: RGB uint8 (H, W, 3) photo.
      landmarks: the face's five landmarks in it, (5, 2), `detection.LANDMARKS` order.
      rng: numpy generator; the sample is a function of its state.
      size: the crop's side.
      split: "train" (every variation) or "test" (held-out colours, prints
        and photometrics; module docstring).
      templates_dir: the templates' folder; None: `overlay.default_templates_dir()`.
      unmasked: probability of a bare face (empty label).

    Returns:
      The `Sample`.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    regime = _REGIMES[split]
    tdir = _templates_dir(templates_dir)
    masked = rng.random() >= unmasked
    # One stream per stage: one seed frames, fills and degrades a face alike
    # with and without a mask.
    frame_rng, mask_rng, fill_rng, cover_rng, photo_rng = (
        np.random.default_rng(s) for s in rng.integers(0, 2**63 - 1, size=5)
    )
    source = np.asarray(landmarks, np.float64)
    styles, weights = zip(*_STYLES.items())
    style = styles[mask_rng.choice(len(styles), p=np.array(weights) / sum(weights))]
    template = overlay.pick_variant(source, style)
    affine = _frame(source, size, frame_rng, regime)
    image, inside, backdrop, photo_scale = _warp_photo(np.asarray(rgb), affine, size)
    face = scene.FaceFrame.of(detection.apply_affine(affine, source))
    label = np.zeros((size, size), bool)
    appearance, tint = "", None
    if masked:
        hom, colour, alpha = _shape_mask(template, face, mask_rng, regime, size, tdir, photo_scale)
        appearance, colour = _paint(colour, alpha, template, hom, mask_rng, regime, tdir)
        label = alpha > 0.5
        if label.any():
            tint = (colour[label] / alpha[label][:, None]).mean(0) / 255.0
    image, clothes = scene.fill_around(
        image, inside, backdrop, face, fill_rng, regime.name, tint, **regime.fill
    )
    if masked:
        light = _light(image, face, mask_rng, regime, size)
        if mask_rng.random() < regime.p_shadow:  # the mask's edge shades the skin under it
            shadow = cv2.GaussianBlur(alpha, (0, 0), 1.5 * size / 128)
            shadow = np.roll(shadow, max(1, size // 128), axis=0) * (1 - alpha)
            image = image * (1 - mask_rng.uniform(0.15, 0.4) * shadow)[..., None]
        image = image * (1 - alpha[..., None]) + colour * light
    else:
        if cover_rng.random() < regime.p_neg_scarf:  # up to the chin, not over the mouth
            u, v = face.maps(size)
            top = face.chin + cover_rng.uniform(-0.1, 0.2)
            region = np.clip(0.5 + (v - top) * face.dist, 0, 1) * (np.abs(u - face.mouth[0]) < 1.3)
            region = np.maximum(cv2.GaussianBlur(region, (0, 0), 0.7), clothes)
            scarf = prints.colour(cover_rng, split, neutral_p=0.5)[1] * 255.0
            image = (
                image
                + (scarf * scene.shading(cover_rng, size, 0.4)[..., None] - image)
                * region[..., None]
            )
        if cover_rng.random() < regime.p_neg_beard:
            image = scene.beard(image, face, cover_rng)
    # What lies in front of the mask is not mask.
    if cover_rng.random() < (regime.p_hand if masked else regime.p_neg_hand):
        if masked and label.any():  # fingers over the mask's edge, from the side or below
            inner = cv2.erode(label.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            edge = label & ~inner & (face.maps(size)[1] > face.local(face.landmarks[2])[1])
            ys, xs = np.nonzero(edge if edge.any() else label)
            i = cover_rng.integers(len(ys))
            anchor = np.array([xs[i], ys[i]], np.float64)
        else:  # a hand at the mouth or the chin
            anchor = face.image([cover_rng.uniform(-0.5, 0.5), cover_rng.uniform(1.0, 1.9)])
        colour, alpha = scene.hand(face, anchor, cover_rng, size, scene.skin_colour(image, face))
        image = image + (colour - image) * alpha[..., None]
        label &= alpha < 0.5
    for p, draw in ((regime.p_hair, scene.hair), (regime.p_glasses, scene.glasses)):
        if cover_rng.random() < p:
            tone, alpha = draw(face, cover_rng, size)
            image = image + (tone - image) * alpha[..., None]
            label &= alpha < 0.5
    if photo_rng.random() < regime.p_photo_edge:  # a tight photo's edge under or beside the face
        side = int(photo_rng.integers(3))
        if side == 0:
            cut = int(face.image([0.0, face.chin + photo_rng.uniform(0.2, 1.0)])[1])
        else:
            cut = int(face.image([(2 * side - 3) * photo_rng.uniform(1.2, 1.8), 0.0])[0])
        image, label = photometric.mirror_past(image, label, cut, int(side > 0), side != 1)
    degrade = photometric.degrade_train if regime.name == "train" else photometric.degrade_test
    image = degrade(np.clip(image, 0, 255).astype(np.float32), photo_rng)
    yaw = face.yaw
    if photo_rng.random() < regime.p_flip:
        image, label, yaw = image[:, ::-1], label[:, ::-1], -yaw
    return Sample(
        image=np.ascontiguousarray(image),
        label=np.ascontiguousarray(label),
        template=template if masked else None,
        yaw=float(yaw),
        appearance=appearance,
    )


@functools.lru_cache(maxsize=2048)
def _cached_rgb(path: str) -> np.ndarray:
    rgb = _read_rgb(path)
    if rgb is None:
        raise SourcesError(f"cannot decode face source {path}")
    rgb.setflags(write=False)
    return rgb


def batch(sources, rng: np.random.Generator, size: int, n: int, split="train", templates_dir=None):
    """n samples of randomly drawn sources: (uint8 (n, S, S, 3) images, bool (n, S, S) labels).

    Decoded photos stay in a small LRU cache (2048 photos) keyed by path.

    Raises:
      SourcesError: no sources, or a source that does not decode.
    """
    if not sources:
        raise SourcesError("no face sources to synthesize from")
    tdir = _templates_dir(templates_dir)
    images = np.empty((n, size, size, 3), np.uint8)
    labels = np.empty((n, size, size), bool)
    for i, k in enumerate(rng.integers(len(sources), size=n)):
        source = sources[k]
        sample = synthesize(_cached_rgb(source.path), source.landmarks, rng, size, split, tdir)
        images[i], labels[i] = sample.image, sample.label
    return images, labels

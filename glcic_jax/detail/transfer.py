"""The math of exemplar detail: a donor face's fine texture laid on a smooth fill.

A completion network trained with the squared error draws the mean face: the
right shading and a faint mouth, no pores, lip lines or nose edges. Here the
fine detail (the luminance minus its Gaussian blur) of a real face, aligned
to the same landmarks, is added on top of that fill (Hays & Efros, "Scene
completion using millions of photographs", 2007, in spirit): the fill keeps
its colour and shading, the donor lends only texture.

Every function is pure (arrays in, arrays out). The "store frame" is the
study's aligned canvas (`align.alignment`) cut to `STORE_BOX` and scaled by
`STORE_SCALE`: donors are kept there, and a photo's face is mapped there by
`store_affine`.
"""

import cv2
import numpy as np

from glcic_jax.faces import align

# The part of the 256 canvas a face mask can cover (x0, y0, x1, y1): the
# cheeks, the nose from its bridge down and 48 px under the chin line.
STORE_BOX = (16, 96, 240, 272)
STORE_SCALE = 2  # store pixels per canvas pixel: about a 512 px studio portrait's own
STORE_SHAPE = (
    (STORE_BOX[3] - STORE_BOX[1]) * STORE_SCALE,
    (STORE_BOX[2] - STORE_BOX[0]) * STORE_SCALE,
)
DETAIL_SIGMA = 6.0  # store px (3 canvas px): the blur whose residual is the "detail"
# The donor's colour relative to its own skin nearby (the lips' red), blurred
# over this many store px and kept at half the store's resolution.
CHROMA_SIGMA = 16.0
CHROMA_DOWN = 2
FEATURE_DOWN = 8  # store px per feature px of the donor-matching picture
FEATURE_SIGMA = 1.0  # feature px: the matching picture's blur
FADE = 3.0  # canvas px over which detail fades in from the fill's edge
# The face's oval on the canvas (centre x, centre y, half width, half height):
# the shading that picks a donor is compared inside it only. Beyond it (hair,
# background, a collar) donors differ for reasons no fill shows, and a region
# that reaches the face's edge would let them decide.
MATCH_OVAL = (128, 150, 80, 85)
RING = 12.0  # canvas px: the visible band around the fill whose grain sets the gain
# The part of that band that counts (canvas x0, y0, x1, y1): the face's middle
# above the mouth, where it is skin (under the eyes, the nose's bridge) and
# not hair or background beside the cheeks, nor a collar under the chin.
GRAIN_BOX = (72, 112, 184, 160)
# Canvas boxes (x0, y0, x1, y1) of `facial_hair`: the cheeks under the eyes,
# the upper lip (the mouth's centre is at y 176), the chin.
CHEEK_ZONE = (72, 120, 184, 150)
UPPER_LIP_ZONE = (104, 156, 152, 168)
CHIN_ZONE = (104, 200, 152, 228)
GAIN_RANGE = (
    0.2,
    1.0,
)  # the donor's grain is scaled to the photo's, within these: never above its own
ANTI_ALIAS_SPAN = (
    1.6  # a warp shrinking by more than this is pre-blurred (texture tolerates a little aliasing)
)
# Parsing classes (CelebAMask-HQ) whose texture is lent: skin, nose, mouth, lips.
FACE_CLASSES = (1, 2, 10, 11, 12)
SKIN = 1
MOUTH_INSIDE = 10
LIP_CLASSES = (11, 12)
SOFT_CLIP = 4.0  # donor detail beyond this many times its grain is compressed (`soft_clip`)
EDGE_ERODE = 6  # store px taken off the face classes' outer edge (no jaw line, no hair edge)


def luminance(rgb) -> np.ndarray:
    """Float32 luma (BT.601) of an RGB uint8 or float image, on the same scale."""
    rgb = np.asarray(rgb, np.float32)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def high_pass(luma, sigma: float) -> np.ndarray:
    """Luma minus its Gaussian blur (sigma px): the fine detail."""
    luma = np.asarray(luma, np.float32)
    return luma - cv2.GaussianBlur(luma, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def store_affine(face) -> np.ndarray:
    """The 2x3 affine from a photo's pixels to the store frame of `face` (a `detection.Face`)."""
    canvas = np.vstack([align.alignment(face, align.CANVAS), [0.0, 0.0, 1.0]])
    x0, y0 = STORE_BOX[:2]
    to_store = np.array(
        [[STORE_SCALE, 0.0, -x0 * STORE_SCALE], [0.0, STORE_SCALE, -y0 * STORE_SCALE], [0, 0, 1]]
    )
    return (to_store @ canvas)[:2]


def affine_scale(affine) -> float:
    """How many output pixels one input pixel spans (the square root of the determinant)."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(affine)[:, :2]))))


def to_store(image, affine, interpolation=cv2.INTER_CUBIC) -> np.ndarray:
    """`image` (photo pixels) rendered in the store frame; a large photo is blurred first.

    Shrinking by a warp alone aliases, so when a store pixel spans more than
    one photo pixel the photo is pre-blurred by 0.45 of that span.
    """
    image = np.asarray(image, np.float32)
    span = 1.0 / max(affine_scale(affine), 1e-6)  # photo px per store px
    if span > ANTI_ALIAS_SPAN and interpolation != cv2.INTER_NEAREST:
        image = cv2.GaussianBlur(image, (0, 0), 0.45 * span)
    height, width = STORE_SHAPE
    return cv2.warpAffine(
        image, np.asarray(affine, np.float64), (width, height), flags=interpolation,
        borderMode=cv2.BORDER_REFLECT,
    )  # fmt: skip


def from_store(image, affine, box, interpolation=cv2.INTER_CUBIC) -> np.ndarray:
    """A store-frame picture rendered over the photo box (y0, y1, x0, x1); zero outside the store.

    When one photo pixel spans more than one store pixel (a small face) the
    picture is pre-blurred by 0.45 of that span, so fine detail shrinks
    without aliasing.
    """
    image = np.asarray(image, np.float32)
    span = affine_scale(affine)  # store px per photo px
    if span > ANTI_ALIAS_SPAN and interpolation != cv2.INTER_NEAREST:
        image = cv2.GaussianBlur(image, (0, 0), 0.45 * span)
    y0, y1, x0, x1 = box
    shifted = np.array(affine, np.float64)
    shifted[:, 2] += shifted[:, :2] @ np.array([x0, y0], np.float64)
    return cv2.warpAffine(
        image, shifted, (x1 - x0, y1 - y0), flags=interpolation | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )  # fmt: skip


def usable_texture(parsing) -> np.ndarray:
    """Where a donor's texture may be lent: its face classes, away from their outer edge.

    The union of `FACE_CLASSES` eroded by `EDGE_ERODE` px: inner borders
    (lips against skin, the nose's sides) stay, the jaw line, the hair line
    and the edge of glasses go, since they would draw the donor's outline.
    """
    face = np.isin(np.asarray(parsing), FACE_CLASSES).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * EDGE_ERODE + 1,) * 2)
    return cv2.erode(face, kernel) > 0


def lower_face_ellipse() -> np.ndarray:
    """A bool store-frame ellipse over the cheeks, nose, mouth and chin: the usable
    texture of a donor without parsing labels (no hair there on an aligned face)."""
    height, width = STORE_SHAPE
    s = STORE_SCALE
    centre = ((128 - STORE_BOX[0]) * s, (168 - STORE_BOX[1]) * s)
    axes = (70 * s, 66 * s)
    out = np.zeros((height, width), np.uint8)
    cv2.ellipse(out, centre, axes, 0, 0, 360, 1, -1)
    return out > 0


def store_zone(box) -> np.ndarray:
    """Bool store-frame picture of a canvas box (x0, y0, x1, y1), clipped to the store."""
    height, width = STORE_SHAPE
    x0, y0, x1, y1 = box
    sx = lambda x: int(np.clip((x - STORE_BOX[0]) * STORE_SCALE, 0, width))  # noqa: E731
    sy = lambda y: int(np.clip((y - STORE_BOX[1]) * STORE_SCALE, 0, height))  # noqa: E731
    zone = np.zeros((height, width), bool)
    zone[sy(y0) : sy(y1), sx(x0) : sx(x1)] = True
    return zone


def store_oval(oval) -> np.ndarray:
    """Float32 store-frame picture of a canvas ellipse (centre x, centre y, half width, half height)."""
    cx, cy, half_width, half_height = oval
    picture = np.zeros(STORE_SHAPE, np.float32)
    centre = (round((cx - STORE_BOX[0]) * STORE_SCALE), round((cy - STORE_BOX[1]) * STORE_SCALE))
    axes = (round(half_width * STORE_SCALE), round(half_height * STORE_SCALE))
    cv2.ellipse(picture, centre, axes, 0, 0, 360, 1.0, -1)
    return picture


def facial_hair(luma_store, skin=None) -> float:
    """How much darker the upper lip or the chin is than the cheeks, as a share of the cheeks' luma.

    A moustache, a beard or stubble darkens those zones (so do a strong
    shadow under the lips); clean-shaven faces under even light score
    about 0.1, bearded ones 0.3 and up. `skin`: the bool store-frame skin
    pixels (parsing class 1), None for all pixels.
    """
    luma = np.asarray(luma_store, np.float32)
    skin = np.ones(luma.shape, bool) if skin is None else np.asarray(skin, bool)
    cheeks = np.median(luma[store_zone(CHEEK_ZONE) & skin]) if skin.any() else 0.0
    if cheeks <= 0:
        return 0.0
    darker = [0.0]
    for box in (UPPER_LIP_ZONE, CHIN_ZONE):
        zone = store_zone(box) & skin
        if zone.sum() >= 30:
            darker.append((cheeks - float(np.median(luma[zone]))) / cheeks)
    return float(max(darker))


def feature_grid(picture_store) -> np.ndarray:
    """A store-frame picture averaged down to the feature grid (float32)."""
    height, width = STORE_SHAPE
    size = (width // FEATURE_DOWN, height // FEATURE_DOWN)
    return cv2.resize(np.asarray(picture_store, np.float32), size, interpolation=cv2.INTER_AREA)


def matching_picture(luma_store) -> np.ndarray:
    """The small blurred luma used to match a face with donors (float32, feature grid)."""
    return cv2.GaussianBlur(feature_grid(luma_store), (0, 0), FEATURE_SIGMA)


def matching_zone(region_store) -> np.ndarray:
    """The feature-grid pixels compared: the fill's region and a 2 px ring around it, in the face."""
    small = feature_grid(region_store)
    zone = cv2.dilate((small > 0.25).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return zone & (feature_grid(store_oval(MATCH_OVAL)) > 0.5)


def standardized(pictures, zone) -> np.ndarray:
    """Each picture's zone pixels minus their mean, over their standard deviation: (N, K)."""
    x = np.asarray(pictures, np.float32).reshape(len(pictures), -1)[:, zone.ravel()]
    x = x - x.mean(axis=1, keepdims=True)
    return x / (x.std(axis=1, keepdims=True) + 1e-3)


def donor_distances(target_picture, donor_pictures, zone) -> np.ndarray:
    """Mean squared difference of the standardized pictures over the zone, one per donor.

    Standardizing takes out brightness and contrast, so the match is on the
    shape of the shading: where the nose's shadow, the mouth and the chin fall.
    """
    if not zone.any():
        return np.zeros(len(donor_pictures), np.float32)
    t = standardized(np.asarray(target_picture)[None], zone)
    d = standardized(donor_pictures, zone)
    return np.mean((d - t) ** 2, axis=1)


def grain(detail, where) -> float:
    """The median absolute detail over `where`: how much fine texture a face shows there."""
    values = np.abs(np.asarray(detail, np.float32)[np.asarray(where, bool)])
    return float(np.median(values)) if values.size else 0.0


def fade_in(region, width: float) -> np.ndarray:
    """Float32 weight rising from 0 at the region's edge to 1 `width` px inside it."""
    region = np.asarray(region, np.uint8)
    if not region.any():
        return np.zeros(region.shape, np.float32)
    padded = np.pad(region, 1)  # the photo's border counts as outside
    inside = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    return np.clip(inside / max(width, 1e-6), 0.0, 1.0).astype(np.float32)


def ring(region, width: float) -> np.ndarray:
    """The pixels within `width` px outside a bool region."""
    radius = max(int(round(width)), 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
    grown = cv2.dilate(np.asarray(region, np.uint8), kernel) > 0
    return grown & ~np.asarray(region, bool)


def grain_band() -> np.ndarray:
    """Bool store-frame picture of `GRAIN_BOX`."""
    return store_zone(GRAIN_BOX)


def lips_weight(classes) -> np.ndarray:
    """Float32 store-frame weight of the lips (classes 11, 12), softened at their edge.

    Not grown: the colour detail's negative lobe just outside the lips (skin
    less red than the blur around it) would draw a cyan ring round a small mouth.
    """
    lips = np.isin(np.asarray(classes), LIP_CLASSES).astype(np.float32)
    return cv2.GaussianBlur(lips, (0, 0), 1.5)


def chroma_detail(rgb_store, where=None) -> np.ndarray:
    """Float32 (h, w, 2) Lab a*, b* minus their blur (`CHROMA_SIGMA`), at 1/`CHROMA_DOWN` scale.

    Args:
      rgb_store: the donor in the store frame, RGB float32 on [0, 255].
      where: float32 store-frame weight of what colour may be lent (the lips,
        `lips_weight`); None lends none (a make-up or a colour cast elsewhere
        would draw coloured outlines).
    """
    height, width = STORE_SHAPE
    size = (width // CHROMA_DOWN, height // CHROMA_DOWN)
    if where is None:
        return np.zeros((size[1], size[0], 2), np.float32)
    lab = cv2.cvtColor(np.clip(rgb_store, 0, 255).astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    ab = lab[..., 1:]
    band = ab - cv2.GaussianBlur(ab, (0, 0), CHROMA_SIGMA, borderType=cv2.BORDER_REFLECT)
    band = band * np.asarray(where, np.float32)[..., None]
    return cv2.resize(band, size, interpolation=cv2.INTER_AREA)


def match_trust(distance: float, full: float, none: float) -> float:
    """1 up to `full`, falling linearly to 0 at `none`: how much of a donor's detail to lend."""
    return float(np.clip((none - distance) / max(none - full, 1e-6), 0.0, 1.0))


def soft_clip(detail, limit: float) -> np.ndarray:
    """limit * tanh(detail / limit): texture passes, a donor's hard outline is tamed."""
    limit = max(float(limit), 1e-3)
    return limit * np.tanh(np.asarray(detail, np.float32) / limit)


def add_detail(rgb, luma_delta, chroma_delta=None) -> np.ndarray:
    """RGB uint8 with a luma change (every channel, chroma kept) and optionally a Lab a*, b* change."""
    out = np.asarray(rgb, np.float32) + np.asarray(luma_delta, np.float32)[..., None]
    if chroma_delta is not None:
        lab = cv2.cvtColor(np.clip(out, 0, 255) / 255.0, cv2.COLOR_RGB2LAB)
        lab[..., 1:] += chroma_delta
        out = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB) * 255.0
    return np.clip(np.round(out), 0, 255).astype(np.uint8)

"""Synthetic masked faces with exact labels, in the mask crop: data for a mask segmenter.

A sample is a face photo warped into the mask crop (`mask_crop.landmarks_affine`)
wearing a MaskTheFace template placed on its face points (`overlay`), the
template warped straight into the crop so it is sharp at the crop's
resolution. The label is the visible mask, its ear loops or ties included
(`straps`): the warped template's alpha > 0.5 and the cords', minus what
lies over them (a hand, hair, glasses). The variations make a
network learn a worn mask's shape and place on a face, not the templates'
colours, the source photos' backgrounds or the paste's edges.

Train families (split="train"; probabilities and ranges in `_TRAIN`):
  framing     the crop moved as a face detector's landmark error moves it on a
              masked face (scale, rotation, shift).
  geometry    face points that follow a turned head (`mask`), a
              stronger `overlay.jitter`, per-point noise, pitch (chin and nose
              bridge moved), one side compressed, the mask pulled under the
              nose or down on the chin, its alpha grown or shrunk 1-2 px, its
              edge softened to the photo's own sharpness.
  appearance  recoloured (`prints`: any train hue, pastels, black,
              white, grey) keeping the template's shading and pleats (its
              luminance over its mean), or printed (stripes, checks, dots,
              smooth noise or camouflage, logo-like shapes) in perspective with
              the mask, or its own colours; lit like the face, with a light
              gradient and a contact shadow on the skin.
  straps      ear loops to the ears or ties back over the head (`straps`:
              white, black or light blue, the far ear's hidden by the cheek).
  context     neck, clothes, scarf and wall where the photo ends, walls and
              clothes often near the mask's colour (`scene`).
  occlusion   a hand, fingers or a glove over the mask's edge, hair strands,
              glasses frames (not mask in the label).
  photometric `photometric.degrade_train`; sometimes the crop is
              mirrored past a line under or beside the face, as a real crop of
              a tight photo is; left-right flips.
Bare faces (probability `unmasked`) have an empty label; some carry a scarf
up to the chin, a beard or a hand at the mouth: hard negatives.

Held out for split="test" (`_TEST`; the caller passes test sources):
  - colours: solid recolours only in `prints.TEST_HUES` (yellows
    50..70 and violets 285..320 degrees), hues train never draws;
  - prints: `TEST_PRINTS` (chevrons, florals, lettering), families train
    never draws, in test hues and neutrals;
  - half the masks in the templates' own colours (MaskTheFace's);
  - photometric: `photometric.degrade_test`, its own chain;
  - milder geometry (`overlay.jitter`'s defaults, a smaller framing error);
    context and occluder families as in train, at lower rates (not held out).
`Sample.appearance` names each sample's colour family or print.

Every sample keeps its whole label inside the crop: a geometry that would cut
the mask at the crop's border is drawn again. `synthesize` is a function of
the generator's state; its stages draw from their own streams, so one seed
frames, fills and degrades a face alike with and without a mask.

Cost: 4.2-4.4 ms a sample at 128 px on one core (LFW sources, split="train";
3.8 ms for "test"), all numpy/OpenCV on the host.
"""

import dataclasses
import functools
import math

import cv2
import numpy as np

from glcic_jax.face_masks import overlay
from glcic_jax.faces import align, mask_crop
from glcic_jax.segmenter.synthetic import face_sources, mask, photometric, prints, scene, straps
from glcic_jax.segmenter.synthetic.prints import TEST_HUES, TEST_PRINTS, TRAIN_PRINTS  # noqa: F401

SPLITS = ("train", "test")
# How often each frontal template style is drawn: surgical masks (three
# colourings of one shape) are the commonest in photos, respirators rare.
_STYLES = {
    "surgical": 1.0, "surgical_blue": 1.0, "surgical_green": 1.0,
    "cloth": 1.5, "KN95": 1.5, "N95": 1.0, "gas": 0.5,
}  # fmt: skip


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
    fill: dict  # scene.fill_around's probabilities
    p_hand: float
    p_hair: float
    p_glasses: float
    p_neg_scarf: float
    p_neg_beard: float
    p_neg_hand: float
    p_photo_edge: float
    p_flip: float
    p_straps: float  # ear loops or ties drawn (`straps`), part of the mask


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
    p_straps=0.6,
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
    p_straps=0.6,
)
_REGIMES = {"train": _TRAIN, "test": _TEST}


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
    tdir = mask.templates_path(templates_dir)
    masked = rng.random() >= unmasked
    # One stream per stage: one seed frames, fills and degrades a face alike
    # with and without a mask.
    seeds = rng.integers(0, 2**63 - 1, size=5)
    frame_rng, mask_rng, fill_rng, cover_rng, photo_rng = (np.random.default_rng(s) for s in seeds)
    # The straps' own stream, from the mask's seed: with p_straps 0 a sample is what it was before.
    strap_rng = np.random.default_rng([int(seeds[1]), 1])
    source = np.asarray(landmarks, np.float64)
    styles, weights = zip(*_STYLES.items())
    style = styles[mask_rng.choice(len(styles), p=np.array(weights) / sum(weights))]
    template = overlay.pick_variant(source, style)
    affine = _frame(source, size, frame_rng, regime)
    image, inside, backdrop, photo_scale = _warp_photo(np.asarray(rgb), affine, size)
    face = scene.FaceFrame.of(align.apply_affine(affine, source))
    label = np.zeros((size, size), bool)
    appearance, tint = "", None
    if masked:
        hom, colour, alpha = mask.place(template, face, mask_rng, regime, size, tdir, photo_scale)
        appearance, colour = mask.paint(colour, alpha, template, hom, mask_rng, regime, tdir)
        label = alpha > 0.5
        if label.any():
            tint = (colour[label] / alpha[label][:, None]).mean(0) / 255.0
    image, clothes = scene.fill_around(
        image, inside, backdrop, face, fill_rng, regime.name, tint, **regime.fill
    )
    if masked:
        light = mask.light(image, face, mask_rng, regime, size)
        if mask_rng.random() < regime.p_shadow:  # the mask's edge shades the skin under it
            shadow = cv2.GaussianBlur(alpha, (0, 0), 1.5 * size / 128)
            shadow = np.roll(shadow, max(1, size // 128), axis=0) * (1 - alpha)
            image = image * (1 - mask_rng.uniform(0.15, 0.4) * shadow)[..., None]
        image = image * (1 - alpha[..., None]) + colour * light
        if label.any() and strap_rng.random() < regime.p_straps:
            attach = straps.corners(template, hom, tdir)
            kind = straps.kind_for(template)
            cord, cord_alpha = straps.draw(face, attach, kind, strap_rng, (size, size))
            image = image + (cord * light - image) * cord_alpha[..., None]
            label |= cord_alpha > 0.5
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


def batch(
    sources, rng: np.random.Generator, size: int, n: int, split="train", templates_dir=None,
    unmasked=0.15,
):  # fmt: skip
    """n samples of randomly drawn sources: (uint8 (n, S, S, 3) images, bool (n, S, S) labels).

    Decoded photos stay in an LRU cache (16,384 photos) keyed by path.

    Raises:
      face_sources.SourcesError: no sources, or a source that does not decode.
    """
    if not sources:
        raise face_sources.SourcesError("no face sources to synthesize from")
    tdir = mask.templates_path(templates_dir)
    images = np.empty((n, size, size, 3), np.uint8)
    labels = np.empty((n, size, size), bool)
    for i, k in enumerate(rng.integers(len(sources), size=n)):
        source = sources[k]
        sample = synthesize(
            face_sources.read_source(source), source.landmarks, rng, size, split, tdir, unmasked
        )
        images[i], labels[i] = sample.image, sample.label
    return images, labels

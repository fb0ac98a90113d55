"""What surrounds and covers a synthetic face mask: neck, clothes, wall, hands, hair, glasses, beards.

Face photos for synthesis (LFW's 150 px crops, CelebA's 89x109) end at the
chin or just under it, while the mask crop reaches well below it: OpenCV's
mirrored border would put an upside-down mouth under every mask. `fill_around`
paints what a photo of a person would show there: a neck, clothes (shoulders
with a round or V collar, or a scarf up to the jaw) and a wall or the photo's
own border blurred. Walls and clothes are often painted near the mask's colour
(a white mask on a white wall, a black mask over a black coat), so a
segmenter must find the mask by its shape and place.

The occluders (`hand`, `hair`, `glasses`) are drawn in front of the mask and
return their alpha, which the caller removes from the label; `beard` is a
hard negative for bare faces.

Positions are in `FaceFrame` units: eye distances from the eye midpoint,
u along the eye line, v down the face.
"""

import dataclasses
import math

import cv2
import numpy as np

from glcic_jax.face_masks import overlay
from glcic_jax.faces import skin
from glcic_jax.segmenter.synthetic import prints


@dataclasses.dataclass(frozen=True)
class FaceFrame:
    """A face's five landmarks in an image and its frame (origin between the eyes, unit: eye distance)."""

    landmarks: np.ndarray
    origin: np.ndarray
    ux: np.ndarray  # along the eye line, toward the right eye
    uy: np.ndarray  # down the face
    dist: float  # eye distance in pixels

    @classmethod
    def of(cls, landmarks) -> "FaceFrame":
        pts = np.asarray(landmarks, np.float64)
        dist = max(float(np.linalg.norm(pts[1] - pts[0])), 1e-6)
        ux = (pts[1] - pts[0]) / dist
        return cls(pts, (pts[0] + pts[1]) / 2, ux, np.array([-ux[1], ux[0]]), dist)

    def local(self, points) -> np.ndarray:
        """Image pixels -> face frame."""
        d = np.asarray(points, np.float64) - self.origin
        return np.stack([d @ self.ux, d @ self.uy], -1) / self.dist

    def image(self, local) -> np.ndarray:
        """Face frame -> image pixels."""
        local = np.asarray(local, np.float64) * self.dist
        return self.origin + local[..., :1] * self.ux + local[..., 1:] * self.uy

    def maps(self, size: int):
        """Face-frame coordinates (u, v) of every pixel of a size x size image, float32 each."""
        xs, ys = prints.grid(size, size)
        (ox, oy), k = (float(c) for c in self.origin), 1.0 / self.dist
        dx, dy = xs - ox, ys - oy
        u = dx * float(self.ux[0] * k) + dy * float(self.ux[1] * k)
        v = dx * float(self.uy[0] * k) + dy * float(self.uy[1] * k)
        return u, v

    @property
    def yaw(self) -> float:
        """The nose tip's offset along the eye line: `overlay.pick_variant`'s measure."""
        return float(self.local(self.landmarks[2])[0])

    @property
    def mouth(self) -> np.ndarray:
        """The mouth centre, face frame."""
        return self.local((self.landmarks[3] + self.landmarks[4]) / 2)

    @property
    def chin(self) -> float:
        """v of the chin (`overlay.face_points`' e)."""
        return float(self.local(overlay.face_points(self.landmarks)[4])[1])


def _sub(p):
    """A point for OpenCV's drawing at 1/8 pixel (shift=3)."""
    return int(round(p[0] * 8)), int(round(p[1] * 8))


def shading(rng, size: int, amount: float) -> np.ndarray:
    """Smooth multiplicative light on a fabric or wall, float32 (S, S) around 1."""
    field = rng.random((4, 4)).astype(np.float32) - 0.5
    field = cv2.resize(field, (16, 16), interpolation=cv2.INTER_CUBIC)
    return 1.0 + amount * cv2.resize(field, (size, size), interpolation=cv2.INTER_LINEAR)


def _cloth(rng, base, size: int, split: str, textured: bool) -> np.ndarray:
    """A fabric layer, float32 (S, S, 3) in [0, 255]: plain or printed, with folds."""
    if textured:
        families = prints.TRAIN_PRINTS if split == "train" else prints.TEST_PRINTS
        family = families[rng.integers(len(families))]
        layer = cv2.resize(prints.pattern(rng, family, size // 2, size // 2, split), (size, size))
    else:
        layer = np.broadcast_to(base, (size, size, 3))
    folds = np.zeros((size, size), np.float32)
    for _ in range(rng.integers(0, 4)):
        x0, x1 = rng.uniform(0, size, 2)
        pts = np.stack(
            [np.linspace(x0, x1, 6) + rng.normal(0, size / 30, 6), np.linspace(0, size, 6)]
        )
        cv2.polylines(folds, [np.int32(pts.T * 8)], False, 1.0, max(1, size // 40), cv2.LINE_AA, 3)
    folds = cv2.GaussianBlur(folds, (0, 0), size / 60)
    light = shading(rng, size, 0.4) * (1 - rng.uniform(0.1, 0.35) * folds)
    return layer * (255.0 * light)[..., None]


def fill_around(image, inside, backdrop, face: FaceFrame, rng, split, tint, p_wall, p_clothes,
                p_scarf, p_near, p_mirror):  # fmt: skip
    """Neck, clothes and wall where the photo is not, and over parts of it sometimes.

    Args:
      image: float32 (S, S, 3) crop of the photo, mirrored past its border.
      inside: float32 (S, S), 1 where the crop shows the photo.
      backdrop: float32 (S, S, 3) the photo's border blurred (a defocused wall).
      face: the face in the crop.
      rng: numpy generator.
      split: "train" or "test": which colours and prints.
      tint: RGB in [0, 1] walls and clothes are painted near (the mask's), or None.
      p_wall: the photo's own background is tinted near `tint` too.
      p_clothes: the clothes are painted over the photo's own too.
      p_scarf: the clothes rise to the jaw (a scarf or turtleneck).
      p_near: a wall or clothes colour is near `tint`.
      p_mirror: the mirrored border is kept (as a real crop of a tight photo has it).

    Returns:
      (image, float32 (S, S) alpha of the clothes).
    """
    size = image.shape[0]
    scarf = rng.random() < p_scarf
    mirror = rng.random() < p_mirror
    over_clothes = scarf or rng.random() < p_clothes
    over_wall = rng.random() < p_wall
    # The photo fades into the fill over a few pixels before its edge, so
    # neither its border nor the mirrored face beyond it shows.
    # Wide at the sides (the photo's own background meets the wall), narrow
    # below (the chin is close to the photo's bottom edge).
    fade = cv2.GaussianBlur(1 - inside, (0, 0), sigmaX=size / 12, sigmaY=size / 50)
    weight = np.zeros_like(inside) if mirror else np.clip(2 * fade, 0, 1)
    u, v = face.maps(size)
    px = face.dist  # one eye distance in pixels: soft edges one pixel wide
    chin = face.chin
    du = np.abs(u - 0.5 * float(face.mouth[0]))
    top = chin + (rng.uniform(-0.2, 0.05) if scarf else rng.uniform(0.3, 0.8))
    shoulder = np.maximum(du - 0.45, 0)
    top = top + 0.2 * shoulder * np.sqrt(shoulder)
    if not scarf and rng.random() < 0.7:  # the collar's opening: round or V
        width, depth = rng.uniform(0.5, 0.9), rng.uniform(0.1, 0.4)
        t = np.clip(1 - du / width, 0, 1)
        top = top + depth * (t if rng.random() < 0.5 else np.sqrt(t))
    clothes = np.clip(0.5 + (v - top) * px, 0, 1)
    if over_clothes:
        weight = np.maximum(weight, clothes)
    if weight.max() < 1 / 255 and not over_wall:
        return image, clothes

    def near_or_random():
        near = rng.random() < p_near  # drawn with or without a tint: streams stay aligned
        if tint is not None and near:
            return prints.near(rng, tint)
        return prints.colour(rng, split, neutral_p=0.6)[1]

    head = ((u - 0.3 * face.yaw) / 1.55) ** 2 + ((v - 0.15) / 2.25) ** 2 < 1.0
    half = rng.uniform(0.5, 0.7)
    neck = np.clip(0.5 + (half - du) * px / 2, 0, 1)  # edges two pixels soft
    neck *= np.clip(0.5 + (v - chin + 0.6) * px, 0, 1)
    shirt = _cloth(rng, near_or_random(), size, split, rng.random() < 0.3)
    # The neck continues the photo's own lowest skin there (its chin or neck).
    seen = (neck > 0.9) & (inside > 0.95) & (v > chin - 0.4)
    skin = np.median(image[seen], 0) if seen.sum() >= 4 else None
    if skin is None or not _skin_like(skin):  # a collar, a beard: not the neck
        skin = skin_colour(image, face) * 0.85
    ring = 0.8 + 0.2 * np.cos(np.minimum(du / half, 1) * (math.pi / 2))
    light = ring * shading(rng, size, 0.15) * rng.uniform(0.85, 1.0)
    neck_layer = np.float32(skin) * light[..., None]
    # The wall: the photo's border defocused, or a painted wall that the
    # photo's own background is recoloured to as well (no photo edge shows).
    wall_colour = None if rng.random() < 0.7 else near_or_random()
    if wall_colour is None:
        wall = backdrop
    else:
        wall = np.float32(wall_colour * 255.0) * shading(rng, size, 0.5)[..., None]
    fill = _blend(neck_layer, wall, neck)
    fill = _blend(shirt, fill, clothes)
    fill = _blend(backdrop, fill, smooth((head & (v < chin)).astype(np.float32), size / 40))
    out = _blend(fill, image, weight)
    if over_wall or wall_colour is not None:  # the photo's background, recoloured
        person = (head | (neck > 0.5) | (clothes > 0.5)).astype(np.float32)
        region = (1.0 - smooth(person, size / 16)) * rng.uniform(0.6, 1.0)
        luma = out @ prints.LUMA
        relief = 255.0 * (0.4 + 0.6 * luma / max(float(luma.mean()), 1.0))
        target = near_or_random() if wall_colour is None else wall_colour
        out = _blend(np.float32(target) * relief[..., None], out, region)
    return out, clothes


def _blend(a, b, weight):
    """a where weight is 1, b where 0: float32 (S, S, 3) images, float32 (S, S) weight."""
    weight = np.asarray(weight, np.float32)
    return cv2.blendLinear(
        np.asarray(a, np.float32), np.asarray(b, np.float32), weight, 1.0 - weight
    )


def smooth(x, sigma: float):
    """A Gaussian blur of a float32 (S, S[, C]) image; wide ones at reduced resolution (fast)."""
    if sigma < 3:
        return cv2.GaussianBlur(x, (0, 0), sigma)
    size = x.shape[0]
    k = sigma / 2.0
    small = cv2.resize(x, (max(2, round(size / k)),) * 2, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.6)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)


def _skin_like(rgb) -> bool:
    """Whether a colour has skin chroma (`skin.SKIN_CR`, `SKIN_CB`), any brightness."""
    r, g, b = (float(c) for c in rgb)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cr, cb = (r - y) * 0.713 + 128, (b - y) * 0.564 + 128
    return skin.SKIN_CR[0] <= cr <= skin.SKIN_CR[1] and (skin.SKIN_CB[0] <= cb <= skin.SKIN_CB[1])


def skin_colour(image, face: FaceFrame) -> np.ndarray:
    """Median colour just below the eye midpoint (the nose bridge), float (3,)."""
    x, y = face.image([0.0, 0.15])
    r = max(1, int(0.15 * face.dist))
    h, w = image.shape[:2]
    y0, y1 = int(np.clip(y - r, 0, h - 1)), int(np.clip(y + r, 1, h))
    x0, x1 = int(np.clip(x - r, 0, w - 1)), int(np.clip(x + r, 1, w))
    patch = image[y0:y1, x0:x1]
    return np.median(patch.reshape(-1, 3), 0) if patch.size else np.array([180.0, 140, 120])


def hand(face: FaceFrame, anchor, rng, size: int, skin):
    """A hand or glove whose fingers reach over `anchor` from outside the face.

    Returns:
      (colour float32 (S, S, 3) in [0, 255], alpha float32 (S, S)).
    """
    d = face.dist
    # The arm comes from below or the side (face frame v >= 0.3), never from above.
    out = face.local(anchor) - (0.0, 1.3)
    out = out / max(np.linalg.norm(out), 1e-6)
    out = np.array([out[0], max(out[1], 0.3)])
    out = face.image(out / np.linalg.norm(out)) - face.image((0.0, 0.0))
    out /= max(np.linalg.norm(out), 1e-6)
    if rng.random() < 0.15:  # a glove: nitrile blue, white or black
        tone = np.array([(90, 140, 210), (235, 235, 235), (30, 30, 35)][rng.integers(3)], float)
    else:
        tone = np.clip(skin * rng.uniform(0.9, 1.1, 3) * rng.uniform(0.85, 1.1), 0, 255)
    a = math.radians(rng.uniform(-25, 25))
    along = -np.array([out[0] * math.cos(a) - out[1] * math.sin(a),
                       out[0] * math.sin(a) + out[1] * math.cos(a)])  # fmt: skip
    across = np.array([-along[1], along[0]])
    # Sizes of an adult hand in eye distances (an eye distance is ~6.3 cm):
    # fingers ~1.8 cm wide and 7-8 cm long, the palm ~8.5 cm across.
    n = int(rng.choice([1, 2, 3, 4], p=[0.15, 0.25, 0.3, 0.3]))  # the rest are folded
    width = rng.uniform(0.22, 0.3) * d
    length = rng.uniform(0.9, 1.25) * d
    reach = np.asarray(anchor) + along * rng.uniform(0.1, 0.45) * d
    offsets = (np.arange(n) - (n - 1) / 2) * width * 1.02
    lengths = length * np.array([0.85, 1.0, 0.95, 0.8])[(np.arange(n) + (4 - n) // 2) % 4]
    tips = reach + offsets[:, None] * across - along * (length - lengths)[:, None]
    bases = tips - along * lengths[:, None]
    # The back of the hand, then the wrist and forearm running out of the crop.
    spread = rng.uniform(0.6, 0.7) * d
    knuckles = bases.mean(0) + along * width * 0.3
    wrist = knuckles - along * rng.uniform(1.2, 1.5) * d
    arm = wrist - along * 4 * d
    polygon = [knuckles + across * spread, knuckles - across * spread,
               wrist - across * spread * 0.75, arm - across * spread * 0.85,
               arm + across * spread * 0.85, wrist + across * spread * 0.75]  # fmt: skip
    alpha = np.zeros((size, size), np.float32)
    colour = np.zeros((size, size, 3), np.float32)
    poly = [np.int32([_sub(p) for p in polygon])]
    cv2.fillPoly(alpha, poly, 1.0, cv2.LINE_AA, 3)
    cv2.fillPoly(colour, poly, tuple(tone * 0.9), cv2.LINE_AA, 3)
    if rng.random() < 0.5:  # a thumb from the side of the hand
        side = rng.choice([-1.0, 1.0])
        start = knuckles - along * 0.7 * d + across * side * spread * 0.8
        tip = start + (along * 0.7 + across * side * 0.5) * d
        bases, tips = np.vstack([bases, start]), np.vstack([tips, tip])
    # Each finger: a darker rim (the gaps between fingers), a body, a highlight;
    # layer by layer, so touching fingers merge like real ones.
    for k, shade in ((1.0, 0.72), (0.65, 1.0), (0.25, 1.08)):
        t = max(1, int(round(width * k)))
        for base, tip in zip(bases, tips):
            cv2.line(colour, _sub(base), _sub(tip), tuple(tone * shade), t, cv2.LINE_AA, 3)
    for base, tip in zip(bases, tips):
        cv2.line(alpha, _sub(base), _sub(tip), 1.0, max(1, int(round(width))), cv2.LINE_AA, 3)
    # Soft edges: blur the premultiplied colour and the alpha alike, then divide.
    colour = cv2.GaussianBlur(colour, (0, 0), 0.5)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 0.5)
    return np.clip(colour / np.maximum(alpha, 1e-3)[..., None], 0, 255), alpha


def hair(face: FaceFrame, rng, size: int):
    """A few hair strands down a cheek: (RGB (3,), alpha float32 (S, S))."""
    alpha = np.zeros((size, size), np.float32)
    side = rng.choice([-1.0, 1.0])
    t = np.linspace(0, 1, 12)[:, None]
    for _ in range(rng.integers(3, 9)):
        start = np.array([side * rng.uniform(0.8, 1.3), rng.uniform(-0.6, 0.0)])
        mid = np.array([start[0] - side * rng.uniform(0.0, 0.35), rng.uniform(0.4, 0.9)])
        end = np.array([mid[0] - side * rng.uniform(0.0, 0.3), rng.uniform(1.0, 1.8)])
        curve = (1 - t) ** 2 * start + 2 * (1 - t) * t * mid + t**2 * end
        pts = np.int32(np.round(face.image(curve) * 8))
        cv2.polylines(alpha, [pts], False, rng.uniform(0.6, 1.0), 1, cv2.LINE_AA, 3)
    tone = [(25, 20, 18), (70, 45, 30), (140, 100, 60), (210, 180, 120)][rng.integers(4)]
    return np.array(tone, np.float32), alpha


def glasses(face: FaceFrame, rng, size: int):
    """Glasses frames, sometimes dark lenses: (RGB (3,), alpha float32 (S, S))."""
    alpha = np.zeros((size, size), np.float32)
    d = face.dist
    t = max(1, int(round(rng.uniform(0.03, 0.07) * d)))
    axes = (int(rng.uniform(0.35, 0.45) * d * 8), int(rng.uniform(0.22, 0.32) * d * 8))
    angle = math.degrees(math.atan2(face.ux[1], face.ux[0]))
    sun = rng.random() < 0.3
    for eye in face.landmarks[:2]:
        centre = _sub(eye + face.uy * 0.05 * d)
        if sun:
            cv2.ellipse(alpha, centre, axes, angle, 0, 360, 0.85, -1, cv2.LINE_AA, 3)
        cv2.ellipse(alpha, centre, axes, angle, 0, 360, 1.0, t, cv2.LINE_AA, 3)
    for side in (-1, 1):  # the temples, from the lens's outer edge toward the ear
        outer, ear = face.image([[side * 0.9, -0.05], [side * 1.5, 0.05]])
        cv2.line(alpha, _sub(outer), _sub(ear), 1.0, t, cv2.LINE_AA, 3)
    bridge = face.image([[-0.13, 0.0], [0.13, 0.0]])
    cv2.line(alpha, _sub(bridge[0]), _sub(bridge[1]), 1.0, t, cv2.LINE_AA, 3)
    tone = [(20, 20, 20), (120, 120, 125), (150, 110, 60), (200, 200, 205)][rng.integers(4)]
    return np.array(tone, np.float32), alpha


def beard(image, face: FaceFrame, rng):
    """A beard and moustache, the lips left bare: a hard negative for bare faces."""
    size = image.shape[0]
    u, v = face.maps(size)
    mouth_u, mouth_v = face.mouth
    chin = face.chin
    jaw = ((u - mouth_u) / 1.0) ** 2 + ((v - mouth_v + 0.1) / (chin - mouth_v + 0.45)) ** 2 < 1
    lips = ((u - mouth_u) / 0.42) ** 2 + ((v - mouth_v) / 0.16) ** 2 < 1
    region = (jaw & ~lips & (v > mouth_v - 0.45)).astype(np.float32)
    grain = cv2.resize(rng.random((size // 3, size // 3)).astype(np.float32), (size, size))
    alpha = cv2.GaussianBlur(region, (0, 0), 1.2) * rng.uniform(0.5, 0.85) * (0.7 + 0.3 * grain)
    tone = np.array([(30, 25, 22), (70, 50, 35), (120, 110, 100)][rng.integers(3)], np.float32)
    colour = tone * (0.6 + 0.6 * grain[..., None])
    return image + (colour - image) * alpha[..., None]

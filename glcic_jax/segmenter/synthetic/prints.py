"""Colours and printed patterns for synthetic face masks, split into train and held-out test families.

A network that segments worn masks must not learn "a mask is white, light
blue or black": synthetic masks are recoloured and printed (`synthetic`).
To measure how it does on colours and prints it never saw, the test split
draws from families the train split never draws:

  colours  train: any hue outside `TEST_HUES`, as a chromatic colour or a
           pastel, or a neutral (black, white, grey); test: hues inside
           `TEST_HUES` (50..70 and 285..320 degrees: yellows and violets).
  prints   train: `TRAIN_PRINTS` (stripes, checks, dots, smooth noise or
           camouflage, logo-like shapes); test: `TEST_PRINTS` (chevrons,
           florals, lettering), in test hues and neutrals.

Everything is small numpy/OpenCV images in [0, 1], drawn from a numpy
generator (deterministic for its state).
"""

import colorsys
import functools
import math

import cv2
import numpy as np

TRAIN_PRINTS = ("stripes", "checks", "dots", "noise", "logo")
TEST_PRINTS = ("chevrons", "florals", "lettering")
# Hue bands (degrees) that only test masks are painted in.
TEST_HUES = ((50.0, 70.0), (285.0, 320.0))
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def hsv(h: float, s: float, v: float) -> np.ndarray:
    """RGB float32 (3,) in [0, 1] from hue in degrees, saturation and value in [0, 1]."""
    return np.array(colorsys.hsv_to_rgb((h % 360.0) / 360.0, s, v), np.float32)


def hue_of(rgb) -> float:
    """The hue of an RGB colour in [0, 1], degrees."""
    return colorsys.rgb_to_hsv(*np.clip(rgb, 0, 1))[0] * 360.0


def in_test_hues(hue: float) -> bool:
    """Whether a hue (degrees) lies in a test-only band (`TEST_HUES`)."""
    return any(lo <= hue % 360.0 < hi for lo, hi in TEST_HUES)


def _train_hue(rng) -> float:
    """A hue uniform over the circle minus the test bands."""
    u = rng.uniform(0.0, 360.0 - sum(hi - lo for lo, hi in TEST_HUES))
    for lo, hi in sorted(TEST_HUES):
        if u >= lo:
            u += hi - lo
    return u


def _test_hue(rng) -> float:
    widths = np.array([hi - lo for lo, hi in TEST_HUES])
    lo, hi = TEST_HUES[rng.choice(len(TEST_HUES), p=widths / widths.sum())]
    return rng.uniform(lo, hi)


def neutral(rng, family: str | None = None) -> tuple:
    """(family, RGB) of a black ("dark"), "white" or "grey" colour."""
    if family is None:
        family = ("dark", "white", "grey")[rng.choice(3, p=[0.45, 0.35, 0.2])]
    value = {"dark": (0.03, 0.2), "white": (0.85, 1.0), "grey": (0.3, 0.8)}[family]
    saturation = 0.4 if family == "dark" else 0.06
    return family, hsv(rng.uniform(0, 360), rng.uniform(0, saturation), rng.uniform(*value))


def colour(rng, split: str, neutral_p: float = 0.45) -> tuple:
    """(family, RGB float32 (3,) in [0, 1]) of a mask colour of the split.

    Train: a neutral with probability `neutral_p`, else a chromatic colour or
    a pastel in a train hue. Test: a chromatic colour or pastel in a test hue
    (test neutrals come from the templates' own colours and the prints).
    """
    if split == "train" and rng.random() < neutral_p:
        return neutral(rng)
    hue = _train_hue(rng) if split == "train" else _test_hue(rng)
    if rng.random() < 0.25:
        return "pastel", hsv(hue, rng.uniform(0.1, 0.3), rng.uniform(0.75, 1.0))
    return "chromatic", hsv(hue, rng.uniform(0.3, 1.0), rng.uniform(0.25, 1.0))


def _print_colour(rng, split: str) -> np.ndarray:
    if split == "test" and rng.random() < 0.4:
        return neutral(rng, ("dark", "white")[rng.integers(2)])[1]
    return colour(rng, split)[1]


def near(rng, rgb) -> np.ndarray:
    """A colour close to `rgb`: hue +-12 degrees, saturation and value +-0.12."""
    h, s, v = colorsys.rgb_to_hsv(*np.clip(rgb, 0, 1))
    return hsv(
        h * 360 + rng.uniform(-12, 12),
        float(np.clip(s + rng.uniform(-0.12, 0.12), 0, 1)),
        float(np.clip(v + rng.uniform(-0.12, 0.12), 0, 1)),
    )


@functools.lru_cache(maxsize=16)
def grid(h: int, w: int):
    """Pixel coordinates (xs, ys), float32 (h, w) each, read-only (cached)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs.setflags(write=False)
    ys.setflags(write=False)
    return xs, ys


def _mix(a, b, t) -> np.ndarray:
    return a + (b - a) * t[..., None]


def _step(x):
    """0 -> 1 across x = 0 over one pixel: anti-aliased edges."""
    return np.clip(0.5 + x, 0.0, 1.0)


def _stripes(phase, period, duty):
    """1 inside the first `duty` of each period of `phase` (in periods), anti-aliased."""
    frac = phase % 1.0
    return _step((duty - frac) * period) * _step(frac * period)


def pattern(rng, family: str, h: int, w: int, split: str) -> np.ndarray:
    """A print of `family`, float32 (h, w, 3) in [0, 1], scaled to a mask `w` pixels wide."""
    xs, ys = grid(h, w)
    c1, c2 = _print_colour(rng, split), _print_colour(rng, split)
    angle = rng.uniform(0, math.pi)
    u = xs * math.cos(angle) + ys * math.sin(angle)
    v = -xs * math.sin(angle) + ys * math.cos(angle)
    period = w / rng.uniform(4, 12)
    if family == "stripes":
        return _mix(c1, c2, _stripes(u / period, period, rng.uniform(0.25, 0.75)))
    if family == "checks":
        bands = _stripes(u / period, period, 0.5) + _stripes(v / period, period, 0.5)
        return _mix(c1, c2, 0.5 * bands)
    if family == "dots":
        row = np.floor(v / period)
        du = (u / period + 0.5 * (row % 2)) % 1.0 - 0.5
        dv = (v / period) % 1.0 - 0.5
        return _mix(c1, c2, _step((rng.uniform(0.15, 0.38) - np.hypot(du, dv)) * period))
    if family == "noise":
        cells = int(rng.integers(3, 9))
        field = cv2.resize(rng.random((cells, cells)).astype(np.float32), (w, h), cv2.INTER_CUBIC)
        if rng.random() < 0.5:  # camouflage: three flat tones
            out = _mix(c1, c2, _step((field - 0.4) * 20))
            return _mix(out, _print_colour(rng, split), _step((field - 0.65) * 20))
        return _mix(c1, c2, np.clip(field, 0, 1))
    if family == "chevrons":
        zigzag = np.abs((xs / period) % 1.0 - 0.5) * period
        return _mix(c1, c2, _stripes((ys + zigzag) / period, period, 0.5))
    out = np.empty((h, w, 3), np.float32)
    out[:] = c1
    if family == "logo":
        _logo(out, rng, tuple(map(float, c2)))
    elif family == "florals":
        _florals(out, rng, tuple(map(float, c2)), tuple(map(float, _print_colour(rng, split))))
    elif family == "lettering":
        _lettering(out, rng, tuple(map(float, c2)))
    else:
        raise ValueError(f"unknown print {family!r}")
    return out


def _logo(out, rng, ink) -> None:
    """One to three brand-mark-like shapes (ellipse, polygon, swoosh) on a plain mask."""
    h, w = out.shape[:2]
    for _ in range(rng.integers(1, 4)):
        cx, cy = int(rng.uniform(0.15, 0.85) * w), int(rng.uniform(0.25, 0.75) * h)
        r = max(2, int(rng.uniform(0.04, 0.14) * w))
        shape = rng.integers(3)
        if shape == 0:
            axes = (r, max(1, int(r * rng.uniform(0.4, 1.0))))
            cv2.ellipse(out, (cx, cy), axes, rng.uniform(0, 180), 0, 360, ink, -1, cv2.LINE_AA)
        elif shape == 1:
            n, a0 = int(rng.integers(3, 7)), rng.uniform(0, 2 * math.pi)
            angles = a0 + 2 * math.pi * np.arange(n) / n
            pts = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], 1)
            cv2.fillPoly(out, [np.int32(pts)], ink, cv2.LINE_AA)
        else:
            pts = np.int32([[cx - r, cy], [cx, cy + r // 3], [cx + r, cy - r]])
            cv2.polylines(out, [pts], False, ink, max(1, r // 3), cv2.LINE_AA)


def _florals(out, rng, petal, centre) -> None:
    """Scattered five-petal flowers."""
    h, w = out.shape[:2]
    r = max(2, int(w / rng.uniform(14, 24)))
    for _ in range(int(rng.integers(6, 14) * h / w)):
        cx, cy, a0 = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0, 72)
        for k in range(5):
            a = math.radians(a0 + 72 * k)
            at = (int(cx + r * math.cos(a)), int(cy + r * math.sin(a)))
            cv2.ellipse(out, at, (r, max(1, r // 2)), a0 + 72 * k, 0, 360, petal, -1, cv2.LINE_AA)
        cv2.circle(out, (int(cx), int(cy)), max(1, r // 2), centre, -1, cv2.LINE_AA)


def _lettering(out, rng, ink) -> None:
    """Rows of random capitals, as a brand's name printed all over."""
    h, w = out.shape[:2]
    scale = w / rng.uniform(150, 300)
    step = max(4, int(30 * scale))
    letters = "ABCDEFGHKMNPRSTWXYZ"
    for row, y in enumerate(range(step, h + step, step)):
        word = "".join(letters[i] for i in rng.integers(len(letters), size=rng.integers(3, 7)))
        x = -int((row % 2) * step * 1.5)
        font = cv2.FONT_HERSHEY_SIMPLEX
        cv2.putText(out, (word + " ") * 6, (x, y), font, scale, ink, max(1, int(2 * scale)))

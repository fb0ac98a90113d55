"""Camera and photo degradations of synthetic mask crops: one chain for train, a held-out one for test.

Real masked photos are selfies, street shots, scans and thumbnails: dark,
warm, soft, noisy, small, heavily compressed. `degrade_train` draws (each
with its own probability): down-up scaling by 0.3..0.9 (a low-resolution
photo), Gaussian or motion blur, gamma, contrast and brightness, per-channel
colour cast, saturation, greyscale (10%), vignetting, Gaussian sensor noise
and JPEG at quality 15..95.

`degrade_test` is a different chain, so the test split measures robustness
to degradations the network was not fitted to: white-balance casts (warm to
cool), defocus (disk) blur, signal-dependent (shot) noise, down-up scaling
by 0.2..0.45 (bicubic up), greyscale (10%) and JPEG at quality 10..60.

`mirror_past` imitates a real crop of a tight photo: beyond the photo's edge
the crop is mirrored, mask included.
"""

import functools
import math

import cv2
import numpy as np

from glcic_jax.segmenter.synthetic import prints


def jpeg(rgb, quality: int) -> np.ndarray:
    """An RGB uint8 image through JPEG at `quality`."""
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) if ok else rgb


@functools.lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """Standard normal noise, float32 (512, 512, 3), drawn once (seeded).

    Drawing fresh noise for a 128 px crop costs ~0.5 ms; a random window of a
    fixed bank costs nothing and no network can learn it at random offsets.
    """
    bank = np.random.default_rng(20240601).standard_normal((512, 512, 3), dtype=np.float32)
    bank.setflags(write=False)
    return bank


def _noise(rng, size: int) -> np.ndarray:
    """A (size, size, 3) window of standard normal noise at a random place of the bank."""
    bank = _noise_bank()
    if size > bank.shape[0]:
        return rng.standard_normal((size, size, 3), dtype=np.float32)
    y, x = rng.integers(0, bank.shape[0] - size + 1, size=2)
    window = bank[y : y + size, x : x + size]
    return window[:, ::-1] if rng.random() < 0.5 else window


def _rescale(image, factor: float, up: int):
    size = image.shape[0]
    small = max(8, int(round(size * factor)))
    image = cv2.resize(image, (small, small), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, (size, size), interpolation=up)


def _to_uint8(x) -> np.ndarray:
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def degrade_train(image, rng) -> np.ndarray:
    """The train chain on a float32 (S, S, 3) image in [0, 255]; uint8 out."""
    size = image.shape[0]
    if rng.random() < 0.25:
        image = _rescale(
            image, rng.uniform(0.3, 0.9), (cv2.INTER_LINEAR, cv2.INTER_CUBIC)[rng.integers(2)]
        )
    blur = rng.random()
    if blur < 0.2:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 1.5) * size / 128)
    elif blur < 0.28:  # motion: a short line kernel
        n = int(rng.integers(3, 8))
        kernel = np.zeros((n, n), np.float32)
        a, c = rng.uniform(0, math.pi), (n - 1) / 2
        dx, dy = math.cos(a) * c, math.sin(a) * c
        cv2.line(kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0)
        image = cv2.filter2D(image, -1, kernel / kernel.sum())
    x = np.clip(image / 255.0, 0, 1)
    if rng.random() < 0.8:
        x = x ** math.exp(rng.uniform(-0.5, 0.5))
        mean = float(x.mean())  # contrast about the mean: a dark photo is not crushed to black
        x = (x - mean) * rng.uniform(0.75, 1.3) + mean + rng.uniform(-0.1, 0.1)
    if rng.random() < 0.35:
        x = x * np.exp(rng.normal(0, 0.08, 3)).astype(np.float32)
    grey = (x @ prints.LUMA)[..., None]
    if rng.random() < 0.25:
        x = grey + (x - grey) * rng.uniform(0.4, 1.5)
    if rng.random() < 0.1:
        x = np.repeat(grey, 3, axis=2)
    if rng.random() < 0.15:
        xs, ys = prints.grid(size, size)
        r2 = ((xs - size / 2) ** 2 + (ys - size / 2) ** 2) / (size / 2) ** 2
        x = x * (1 - rng.uniform(0.1, 0.3) * r2)[..., None]
    if rng.random() < 0.3:
        x = x + _noise(rng, size) * np.float32(rng.uniform(1, 10) / 255)
    out = _to_uint8(x)
    if rng.random() < 0.5:
        out = jpeg(out, int(rng.integers(15, 96)))
    return out


def degrade_test(image, rng) -> np.ndarray:
    """The held-out test chain on a float32 (S, S, 3) image in [0, 255]; uint8 out."""
    size = image.shape[0]
    if rng.random() < 0.25:
        image = _rescale(image, rng.uniform(0.2, 0.45), cv2.INTER_CUBIC)
    if rng.random() < 0.2:  # defocus: a disk
        r = max(1, int(round(rng.uniform(1.0, 2.0) * size / 128)))
        kernel = np.zeros((2 * r + 1, 2 * r + 1), np.float32)
        cv2.circle(kernel, (r, r), r, 1.0, -1)
        image = cv2.filter2D(image, -1, kernel / kernel.sum())
    x = np.clip(image / 255.0, 0, 1)
    if rng.random() < 0.7:
        x = x ** math.exp(rng.uniform(-0.4, 0.4))
        t = rng.uniform(-1, 1)  # white balance, warm to cool
        x = x * np.array([1 + 0.12 * t, 1.0, 1 - 0.12 * t], np.float32)
    if rng.random() < 0.1:
        x = np.repeat((x @ prints.LUMA)[..., None], 3, axis=2)
    if rng.random() < 0.3:  # shot noise: stronger where brighter
        gain = np.float32(rng.uniform(0.0005, 0.004))
        x = x + _noise(rng, size) * np.sqrt(np.maximum(x, 0) * gain)
    out = _to_uint8(x)
    if rng.random() < 0.6:
        out = jpeg(out, int(rng.integers(10, 61)))
    return out


def mirror_past(image, label, cut: int, axis: int, after: bool):
    """The crop mirrored past row/column `cut` (as OpenCV's BORDER_REFLECT_101), image and label.

    Args:
      image: (S, S, 3) image.
      label: bool (S, S).
      cut: the last row (axis 0) or column (axis 1) of the photo.
      axis: 0 rows, 1 columns.
      after: mirror what lies after `cut` (else before it).

    Returns:
      (image, label), or the inputs unchanged when the mirror would need more
      than the crop holds or would put the label on the crop's border.
    """
    size = label.shape[0]
    index = np.arange(size)
    beyond = index > cut if after else index < cut
    index = np.where(beyond, 2 * cut - index, index)
    if not 0 < cut < size - 1 or index.min() < 0 or index.max() >= size:
        return image, label
    new_image, new_label = np.take(image, index, axis), np.take(label, index, axis)
    if new_label[[0, -1]].any() or new_label[:, [0, -1]].any():
        return image, label
    return new_image, new_label

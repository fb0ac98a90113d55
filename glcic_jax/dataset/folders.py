"""A prepared face folder: which images are train and test, and the one place Pillow decodes them.

A data folder has `train/` and `test/` subfolders of images (searched
recursively), or is a flat folder of images split 80/20 by a fixed
permutation. Images are centre-cropped to a square, resized with LANCZOS and
kept as uint8 (S, S, 3). Training, evaluation and the survey all read faces
through here, so they see the same pixels.
"""

import os
import pathlib
import stat
import warnings

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
TEST_FRACTION = 0.2
# Smaller or more elongated pictures are refused (and counted): no face fits them.
MIN_SIDE = 32
MAX_ASPECT = 8
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


class DataError(Exception):
    """A data folder that cannot be trained on; the message is one line for the user."""


def _images_under(folder: pathlib.Path) -> list[pathlib.Path]:
    # Everything with an image name, also folders, dangling links and FIFOs:
    # they fail to load and are counted as unreadable instead of vanishing.
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def list_images(data_dir, split: str) -> list[str]:
    """Image paths of `split` ("train" or "test"), in a fixed order."""
    root = pathlib.Path(data_dir)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    if (root / "train").is_dir():
        files = _images_under(root / split) if (root / split).is_dir() else []
    else:
        everything = _images_under(root)
        order = np.random.default_rng(0).permutation(len(everything))
        n_test = int(round(len(everything) * TEST_FRACTION))
        chosen = order[:n_test] if split == "test" else order[n_test:]
        files = [everything[i] for i in sorted(chosen)]
    return [str(p) for p in files]


def to_rgb(im: Image.Image) -> np.ndarray:
    """Upright 8-bit RGB from any picture Pillow opens.

    The EXIF orientation is applied (a phone photo is stored sideways), and
    16-bit and float greyscale are scaled to 0..255: Pillow's own conversion
    clips them, so a 16-bit PNG would come out all white.
    """
    im = ImageOps.exif_transpose(im)
    if im.mode in _SIXTEEN_BIT_MODES or im.mode == "F":
        values = np.asarray(im, np.float64)
        top = values.max(initial=0.0)
        if im.mode.startswith("I;16"):
            full = 65535.0
        elif im.mode == "F" and top <= 1.0:
            full = 1.0
        else:  # 32-bit integers or floats: the smallest common range that holds them
            full = next((r for r in (255.0, 65535.0) if top <= r), top)
        grey = np.clip(np.round(values / full * 255), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    return np.asarray(im.convert("RGB"), np.uint8)


def read_rgb(path, max_pixels: int | None = None, refuse_degenerate: bool = True) -> np.ndarray:
    """Decode one picture file as upright uint8 RGB, refusing what is not a usable picture.

    Args:
      path: the file.
      max_pixels: refuse larger pictures (DecompressionBombError) before decoding;
        None keeps Pillow's own limit (about 89 million pixels).
      refuse_degenerate: refuse sizes no face fits (`MIN_SIDE`, `MAX_ASPECT`).

    Raises:
      ValueError: not a regular file, or a degenerate size. Anything Pillow's
        decoders raise on damaged data passes through (callers that skip bad
        files catch Exception).
    """
    mode = os.stat(path).st_mode  # follows links: a dangling one raises here
    if not stat.S_ISREG(mode):  # a FIFO would block the reader forever
        raise ValueError(f"{path} is not a regular file")
    with warnings.catch_warnings():
        # With our own limit, Pillow's lower warning threshold must not refuse first.
        action = "error" if max_pixels is None else "ignore"
        warnings.simplefilter(action, Image.DecompressionBombWarning)
        with Image.open(path) as im:
            w, h = im.size
            if max_pixels is not None and w * h > max_pixels:
                raise Image.DecompressionBombError(f"{w}x{h} is over {max_pixels} pixels")
            degenerate = min(w, h) < MIN_SIDE or max(w, h) > MAX_ASPECT * min(w, h)
            if refuse_degenerate and degenerate:
                raise ValueError(f"{path} is {w}x{h}: too small or too elongated for a face")
            return to_rgb(im)


def load_image(path: str, size: int) -> np.ndarray:
    """Decode, centre-crop to a square and resize to (size, size, 3) uint8.

    Raises what `read_rgb` raises.
    """
    im = Image.fromarray(read_rgb(path))
    w, h = im.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    im = im.crop((left, top, left + side, top + side))
    if side != size:
        im = im.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(im, dtype=np.uint8)


def try_load_image(path: str, size: int) -> np.ndarray | None:
    """`load_image`, or None for a file that cannot be used (to be skipped and counted)."""
    try:
        return load_image(path, size)
    except Exception:  # Pillow's decoders raise many types on damaged data (e.g. DDS, SPIDER)
        return None


def fixed_batch(files: list[str], size: int, n: int) -> np.ndarray:
    """The first n readable images of `files`, e.g. a fixed sample grid."""
    images = []
    for path in files:
        image = try_load_image(path, size)
        if image is not None:
            images.append(image)
        if len(images) == n:
            break
    if not images:
        raise DataError("no readable images for the sample grid")
    return np.stack(images)

"""A prepared face folder: which images are train and test, and each face at the training size.

A data folder has `train/` and `test/` subfolders of images (searched
recursively), or is a flat folder of images split 80/20 by a fixed
permutation. Images are decoded by `glcic_jax.images` (pictures no face fits
are refused there), centre-cropped to a square, resized with LANCZOS and
kept as uint8 (S, S, 3). Training, evaluation and the survey all read faces
through here, so they see the same pixels.
"""

import pathlib

import numpy as np
from PIL import Image

from glcic_jax import images

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
TEST_FRACTION = 0.2


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


def load_image(path: str, size: int) -> np.ndarray:
    """Decode, centre-crop to a square and resize to (size, size, 3) uint8.

    Raises:
      images.ImageError: not a usable picture, or one no face fits
        (`images.MIN_SIDE`, `images.MAX_ASPECT`).
    """
    im = Image.fromarray(images.read_rgb(path, refuse_degenerate=True))
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
    except images.ImageError:
        return None


def fixed_batch(files: list[str], size: int, n: int) -> np.ndarray:
    """The first n readable images of `files`, e.g. a fixed sample grid."""
    found = []  # not `images`: that is the decoding module
    for path in files:
        image = try_load_image(path, size)
        if image is not None:
            found.append(image)
        if len(found) == n:
            break
    if not found:
        raise DataError("no readable images for the sample grid")
    return np.stack(found)

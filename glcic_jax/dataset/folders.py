"""A prepared face folder: which images are train and test, and the one place Pillow decodes them.

A data folder has `train/` and `test/` subfolders of images (searched
recursively), or is a flat folder of images split 80/20 by a fixed
permutation. Images are centre-cropped to a square, resized with LANCZOS and
kept as uint8 (S, S, 3). Training, evaluation and the survey all read faces
through here, so they see the same pixels.
"""

import pathlib
import warnings

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
TEST_FRACTION = 0.2


class DataError(Exception):
    """A data folder that cannot be trained on; the message is one line for the user."""


def _images_under(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )


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

    Raises OSError/ValueError (and PIL's DecompressionBombError) on bad files.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            im = im.convert("RGB")
    w, h = im.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    im = im.crop((left, top, left + side, top + side))
    if side != size:
        im = im.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(im, dtype=np.uint8)


_BAD_IMAGE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)


def try_load_image(path: str, size: int) -> np.ndarray | None:
    try:
        return load_image(path, size)
    except _BAD_IMAGE_ERRORS:
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

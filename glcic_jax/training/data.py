"""Image folders -> fixed-size batches; the one place Pillow decodes training images.

A data folder has `train/` and `test/` subfolders of images (searched
recursively), or is a flat folder of images split 80/20 by a fixed
permutation. Images are centre-cropped to a square, resized with LANCZOS and
kept as uint8 (N, S, S, 3) batches; the network's [0, 1] scaling happens on
the device.

Order and position come from grain: the training stream is a seeded shuffle
that reshuffles each epoch, decoded on background threads, and its iterator
state goes into every checkpoint, so a resumed run sees exactly the batches
the uninterrupted run would have.
"""

import concurrent.futures
import hashlib
import logging
import pathlib
import threading
import warnings

import grain
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


def scan_images(files: list[str], size: int, threads: int = 2, progress: bool = True):
    """Decode every file once: (good files, bad files, mean pixel in [0, 1]).

    The mean pixel is the hole fill of GLCIC's input; it is computed here from
    the training images once and stored with the checkpoint.
    """
    from tqdm import tqdm

    total = np.zeros(3, np.float64)
    good, bad = [], []
    with concurrent.futures.ThreadPoolExecutor(max(1, threads)) as pool:
        images = pool.map(lambda f: try_load_image(f, size), files)
        for path, image in tqdm(
            zip(files, images),
            total=len(files),
            desc="scanning images",
            disable=not progress,
            leave=False,
        ):
            if image is None:
                bad.append(path)
                continue
            good.append(path)
            total += image.reshape(-1, 3).mean(axis=0, dtype=np.float64)
    mean_pixel = (total / max(len(good), 1) / 255.0).astype(np.float32)
    return good, bad, mean_pixel


def fingerprint(files: list[str]) -> str:
    """Identifies a file list, so a resume can tell that the data changed under it."""
    return hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]


class _SkipUnreadable:
    """Decodes one path, or returns None (with one warning per file) when it fails."""

    def __init__(self, size: int):
        self.size = size
        self.warned: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, path: str):
        image = try_load_image(path, self.size)
        if image is None:
            with self.lock:
                if path not in self.warned:
                    self.warned.add(path)
                    logging.warning("skipping unreadable image %s", path)
        return image


def training_batches(
    files: list[str],
    *,
    size: int,
    batch_size: int,
    seed: int,
    threads: int = 2,
    shard_index: int = 0,
    shard_count: int = 1,
) -> grain.DatasetIterator:
    """An endless, checkpointable iterator of uint8 (batch, size, size, 3) batches.

    Each process of a multi-host run reads its own slice of every global
    batch (`shard_index` of `shard_count`).
    """
    ds = grain.MapDataset.source(files).shuffle(seed=seed).repeat()
    if shard_count > 1:
        ds = ds[shard_index::shard_count]
    ds = ds.map(_SkipUnreadable(size))
    read = grain.ReadOptions(num_threads=max(1, threads), prefetch_buffer_size=4 * batch_size)
    it_ds = ds.to_iter_dataset(read).filter(lambda x: x is not None)
    it_ds = it_ds.batch(batch_size, drop_remainder=True)
    return iter(it_ds)


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

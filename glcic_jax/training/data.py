"""A prepared face folder -> fixed-size training batches, and the data's mean pixel.

Images are decoded by `glcic_jax.images` and cropped to the training size by
`glcic_jax.dataset.folders.try_load_image` (a file that cannot be used is
skipped and counted), and kept as uint8 (N, S, S, 3) batches; the network's
[0, 1] scaling happens on the device.

Order and position come from grain: the training stream is a seeded shuffle
that reshuffles each epoch, decoded on background threads, and its iterator
state goes into every checkpoint, so a resumed run sees exactly the batches
the uninterrupted run would have.
"""

import collections.abc
import concurrent.futures
import hashlib
import logging
import threading

import grain
import numpy as np

from glcic_jax.dataset.folders import try_load_image


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


class _ProcessBlock(collections.abc.Sequence):
    """One process's rows of each global batch of an endless stream: block `index` of `count`."""

    def __init__(self, stream, rows: int, index: int, count: int):
        self.stream, self.rows, self.index, self.count = stream, rows, index, count

    def __len__(self) -> int:
        return len(self.stream) // self.count

    def __getitem__(self, i: int):
        batch, row = divmod(i, self.rows)
        return self.stream[(batch * self.count + self.index) * self.rows + row]


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

    Each process of a multi-host run reads its own block of every global batch
    (`shard_index` of `shard_count`, `batch_size` images each): the rows its
    devices hold, so that the global batch is the one a single process with
    as many devices reads.
    """
    ds = grain.MapDataset.source(files).shuffle(seed=seed).repeat()
    if shard_count > 1:
        ds = grain.MapDataset.source(_ProcessBlock(ds, batch_size, shard_index, shard_count))
    ds = ds.map(_SkipUnreadable(size))
    read = grain.ReadOptions(num_threads=max(1, threads), prefetch_buffer_size=4 * batch_size)
    it_ds = ds.to_iter_dataset(read).filter(lambda x: x is not None)
    it_ds = it_ds.batch(batch_size, drop_remainder=True)
    return iter(it_ds)

"""The first run's training data: a face set the project prepares once, in its own data/.

With no --data_dir, `launch.py` trains on `default_data_dir(images)`: a
folder of data/ (`locations.data_home()`) that `prepare.build` made, the code
experiments/prepare_data.py runs (MTCNN detection, alignment that puts the
mouth in the study's mouth box, review: covered mouths, near-duplicates).
Its raw faces come from, in this order:

  1. the lab's local mirror of CelebA's first 10,000 (`locations.mirror()`/celeba10k);
  2. LFW, fetched once through scikit-learn like torchvision's and tfds's
     sets are on first use (internet; scikit-learn's cache, $SCIKIT_LEARN_DATA
     or ~/scikit_learn_data).

Folders are data/<source>-aligned (every image) and data/<source>-aligned-<n>
(a fixed sample of n, `prepare.sample_sources`); faces framed by the mask
crop (`prepare.Settings.framing`) go to data/<source>-maskcrop[-<n>]. A folder is ready when its
READY_FILE exists; it is written last, so a killed preparation leaves none
and the next run prepares that folder again from the start. A lock makes two
launches started together prepare it once; its file is removed when done.
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import pathlib

from glcic_jax import locations
from glcic_jax.dataset import lfw, prepare

# Preference order; the mirror's set first (more faces, and the lab's own).
MIRROR_SET = "celeba10k"
LFW = "lfw"
SOURCES = (MIRROR_SET, LFW)
READY_FILE = "prepared.json"
# Both sets are pre-cropped with faces of ~50-110 px: the study's 128 px
# minimum would drop nearly all (see prepare's module docstring).
SETTINGS = prepare.Settings(min_face=0)
LFW_MIN_FACES = 20  # scikit-learn's filter: 62 people, ~3,000 photos.
# Images per worker process below which spawning one (OpenCV + MTCNN load,
# ~2 s) costs more than it saves.
IMAGES_PER_WORKER = 100


class NoTrainingData(Exception):
    """No face set can be prepared here; the message is one line for the user."""


def prepared_dir(source: str, images: int, framing: str = "canvas") -> pathlib.Path:
    """data/<source>-aligned[-<images>] (a sample), or -maskcrop for the mask crop's framing."""
    suffix = f"-{images}" if images > 0 else ""
    kind = "aligned" if framing == "canvas" else framing.replace("_", "")
    return locations.data_home() / f"{source}-{kind}{suffix}"


def is_ready(folder: pathlib.Path) -> bool:
    """Whether a preparation of `folder` ran to the end."""
    return (folder / READY_FILE).is_file()


def find_ready(images: int, framing: str = "canvas") -> pathlib.Path | None:
    """A prepared folder to reuse: `images` images (0: all) or all of them; the mirror's first."""
    for source in SOURCES:
        for n in dict.fromkeys((images, 0)):
            folder = prepared_dir(source, n, framing)
            if is_ready(folder):
                return folder
    return None


def default_data_dir(
    images: int, log=print, lfw_retries: int = 3, framing: str = "canvas"
) -> pathlib.Path:
    """The prepared folder to train on by default, prepared now if there is none.

    Args:
      images: how many source images a new folder is prepared from (0: all).
      framing: how its faces are framed (`prepare.Settings.framing`).
      log: where the one-line notes go (what is prepared from where).
      lfw_retries: download attempts for LFW.

    Returns:
      A ready folder with train/ and test/ of aligned 256x256 faces.

    Raises:
      NoTrainingData: no mirror and LFW could not be fetched (offline), or
        nothing survived the review.
      prepare.PrepareError: the folder holds files the preparation did not write.
    """
    ready = find_ready(images, framing)
    if ready is not None:
        return ready
    mirror_set = locations.mirror() / MIRROR_SET
    with _lock(locations.data_home() / ".prepare.lock", log):
        ready = find_ready(images, framing)  # Another launch may have finished meanwhile.
        if ready is not None:
            return ready
        if mirror_set.is_dir():
            raw, source, what = mirror_set, MIRROR_SET, f"the lab's local mirror {mirror_set}"
        else:
            try:
                raw = lfw.fetch_lfw(None, LFW_MIN_FACES, lfw_retries)
            except lfw.LfwUnavailable as e:
                raise NoTrainingData(
                    f"no training data: no --data_dir given, nothing prepared in"
                    f" {locations.data_home()}, no local mirror at {mirror_set}"
                    f" (${locations.MIRROR_ENV} moves it), and {e}; pass --data_dir=DIR, a folder"
                    " of face images (train/ and test/), e.g. from experiments/prepare_data.py"
                ) from None
            source, what = LFW, f"LFW ({raw})"
        folder = prepared_dir(source, images, framing)
        _prepare(raw, folder, images, what, log, framing)
    return folder


def _prepare(raw: pathlib.Path, folder: pathlib.Path, images: int, what: str, log, framing) -> None:
    from tqdm import tqdm

    n = len(prepare.sample_sources(prepare.list_sources(raw), images))
    log(
        f"first run: preparing {n} faces from {what} into {folder} (face detection, alignment,"
        " review; once: later runs reuse it)"
    )
    summary = prepare.build(
        raw,
        folder,
        dataclasses.replace(SETTINGS, max_images=images, framing=framing),
        overwrite=True,  # Only an unfinished preparation of ours gets here.
        workers=_workers(n),
        progress=lambda it, total: tqdm(it, total=total, desc="preparing faces", disable=None),
    )
    if not summary["train"]:
        raise NoTrainingData(f"no face of {raw} survived the preparation (see {folder})")
    ready = {k: summary[k] for k in ("source", "found", "inputs", "kept", "train", "test")}
    ready.update(images=images, mouth_landmarks_in_box=summary["mouth_landmarks_in_box"])
    (folder / READY_FILE).write_text(json.dumps(ready, indent=1) + "\n")
    in_box = summary["mouth_landmarks_in_box"]
    in_box = "" if in_box is None else f"; mouth landmarks in the mouth box: {in_box:.1%}"
    log(
        f"prepared {summary['kept']} of {n} faces ({summary['train']} train, {summary['test']}"
        f" test{in_box}); contact sheet {folder / 'contact_sheet.png'}"
    )


def _workers(n_images: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, n_images // IMAGES_PER_WORKER))


@contextlib.contextmanager
def _lock(path: pathlib.Path, log):
    """An exclusive lock on `path`, held until the block ends; nothing of it stays behind.

    The lock file (and its folder, when this call created it and it is still
    empty) is removed when the block ends, also when it raises: a first run
    refused for want of data leaves no `data/.prepare.lock` and no empty
    `data/`. The file is removed while locked, and a launch that waited
    for it locks the file then at `path` (a new one) instead.
    """
    created = [p for p in (path.parent, *path.parent.parents) if not os.path.lexists(p)]
    waited = False
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)  # again: a refused launch may remove it
        f = open(path, "a")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not waited:
                log(f"waiting for another launch that is preparing data in {path.parent}")
                waited = True
            fcntl.flock(f, fcntl.LOCK_EX)
        if _is_current(f, path):
            break
        f.close()  # removed by the launch that held it: lock the file now at `path`
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        f.close()  # releases the lock
        for folder in created:  # the deepest first
            try:
                folder.rmdir()
            except OSError:  # not empty: it holds what was prepared, or someone else's
                break


def _is_current(f, path: pathlib.Path) -> bool:
    """Whether the open file `f` is still the file at `path` (not removed or replaced)."""
    try:
        here, there = os.fstat(f.fileno()), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)

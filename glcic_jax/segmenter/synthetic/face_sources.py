"""The real face photos synthetic masked faces are drawn on: found once, saved, read back, decoded once.

A source is a photo and the five landmarks of its largest confident face
with a plausible mouth; a training or evaluation run finds its sources once
(`find_sources`, seconds per hundred photos) and keeps them in a JSON file.
"""

import dataclasses
import functools
import json
import os
import pathlib
import tempfile

import numpy as np

from glcic_jax import images
from glcic_jax.dataset import filters
from glcic_jax.faces import detection

# Faces below this detector confidence are not used as sources.
MIN_CONFIDENCE = 0.9
_SOURCES_VERSION = 1


@dataclasses.dataclass(frozen=True)
class SourceFace:
    """A face photo on disk and its five MTCNN landmarks.

    Attributes:
      path: the photo.
      landmarks: five (x, y) pairs in photo pixels, `detection.LANDMARKS` order.
    """

    path: str
    landmarks: tuple


class SourcesError(Exception):
    """Face sources that cannot be read; the message is one line for the user."""


def find_sources(paths, detector=None, progress=True) -> list:
    """The largest confident face of each photo, as `SourceFace`s.

    Photos that do not decode, have no face at `MIN_CONFIDENCE`, or whose
    landmarks describe no plausible mouth (`filters.mouth_visible`: a mask
    placed on wrong landmarks floats) are skipped.

    Args:
      paths: photo files.
      detector: a `detection.Detector`; None makes one.
      progress: show a tqdm bar.

    Returns:
      The sources, in the order of `paths`.
    """
    from tqdm import tqdm

    detector = detector or detection.plain_mtcnn()
    sources = []
    for path in tqdm(list(paths), desc="faces", unit="photo", disable=not progress):
        try:
            rgb = images.read_rgb(path)
        except images.ImageError:
            continue
        faces = [f for f in detector.detect(rgb) if f.confidence >= MIN_CONFIDENCE]
        if not faces or not filters.mouth_visible(faces[0], (rgb.shape[1], rgb.shape[0])):
            continue
        landmarks = tuple((float(x), float(y)) for x, y in faces[0].landmarks)
        sources.append(SourceFace(path=str(path), landmarks=landmarks))
    return sources


def save_sources(sources, path) -> None:
    """Writes sources as JSON, atomically (a temporary file renamed over `path`)."""
    path = pathlib.Path(path)
    payload = {
        "version": _SOURCES_VERSION,
        "sources": [{"path": s.path, "landmarks": [list(p) for p in s.landmarks]} for s in sources],
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def load_sources(path) -> list:
    """Sources written by `save_sources`.

    Raises:
      SourcesError: missing, not JSON, or not a sources file.
    """
    try:
        payload = json.loads(pathlib.Path(path).read_text())
        if payload.get("version") != _SOURCES_VERSION:
            raise ValueError(f"version {payload.get('version')!r}, expected {_SOURCES_VERSION}")
        return [
            SourceFace(s["path"], tuple(tuple(float(c) for c in p) for p in s["landmarks"]))
            for s in payload["sources"]
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise SourcesError(f"cannot read face sources from {path}: {e}") from None


# Every source of a CPU training set stays decoded (10,000 small crops: ~400 MB).
@functools.lru_cache(maxsize=16384)
def _cached_rgb(path: str) -> np.ndarray:
    try:
        rgb = images.read_rgb(path)
    except images.ImageError as e:
        raise SourcesError(f"cannot decode face source: {e}") from None
    rgb.setflags(write=False)
    return rgb


def read_source(source: SourceFace) -> np.ndarray:
    """The source's photo, RGB uint8, read-only (decoded once, then cached).

    Raises:
      SourcesError: the file does not decode.
    """
    return _cached_rgb(source.path)

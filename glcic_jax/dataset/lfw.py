"""Labeled Faces in the Wild through scikit-learn, as a folder of photos for `prepare`.

scikit-learn is imported only here and only when LFW is asked for; without
internet its fetcher fails, and so does `fetch_lfw`, with a one-line message.
"""

import pathlib
import warnings

import numpy as np
from PIL import Image


class LfwUnavailable(Exception):
    """LFW cannot be fetched here; the message is one line for the user."""


def fetch_lfw(data_home=None, min_faces_per_person: int = 20, n_retries: int = 3) -> pathlib.Path:
    """Downloads LFW with scikit-learn and writes its 250x250 photos as PNGs.

    Uses `sklearn.datasets.fetch_lfw_people` (uncropped 250x250 colour
    images of people with at least `min_faces_per_person` photos; it holds
    them in memory as float32, ~0.75 MB each, so 20 -> ~3,000 images, 2.3 GB).

    Args:
      data_home: scikit-learn's download cache; None: scikit-learn's own
        default ($SCIKIT_LEARN_DATA, else ~/scikit_learn_data). PNGs go to
        `data_home/lfw_raw_<n>/`.
      min_faces_per_person: scikit-learn's filter.
      n_retries: download attempts.

    Returns:
      The folder of PNGs (reused when already complete).

    Raises:
      LfwUnavailable: scikit-learn missing or the download failed (offline).
    """
    try:
        from sklearn.datasets import fetch_lfw_people, get_data_home
    except ImportError as e:
        raise LfwUnavailable("fetching LFW needs scikit-learn: pip install scikit-learn") from e
    data_home = pathlib.Path(get_data_home(data_home))
    folder = data_home / f"lfw_raw_{min_faces_per_person}"
    if (folder / ".complete").exists():
        return folder
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Retry downloading ...", per try.
            lfw = fetch_lfw_people(
                data_home=str(data_home),
                funneled=False,
                resize=1.0,
                slice_=None,
                color=True,
                min_faces_per_person=min_faces_per_person,
                n_retries=max(1, n_retries),
            )
    except Exception as e:  # URLError, OSError, HTTPError, ...  # noqa: BLE001
        first = str(e).splitlines()[0] if str(e) else ""
        raise LfwUnavailable(
            f"could not fetch LFW with scikit-learn into {data_home} ({type(e).__name__}: {first});"
            " this needs internet access once"
        ) from None
    folder.mkdir(parents=True, exist_ok=True)
    scale = 255.0 if lfw.images.max() <= 1.0 else 1.0
    counts = {}
    for image, target in zip(lfw.images, lfw.target):
        name = str(lfw.target_names[target]).replace(" ", "_")
        counts[name] = counts.get(name, 0) + 1
        pixels = np.clip(np.round(image * scale), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{name}_{counts[name]:04d}.png")
    (folder / ".complete").touch()
    return folder

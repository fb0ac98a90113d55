"""Checking a prepared face set: a contact sheet, and mouths re-detected in the box.

Both read what `prepare.build` wrote (images and manifest rows), so they also
work on a set prepared earlier.
"""

import concurrent.futures
import functools
import math
import multiprocessing
import pathlib

import numpy as np
from PIL import Image, ImageDraw

from glcic_jax import images
from glcic_jax.dataset import filters
from glcic_jax.faces import align, detection
from glcic_jax.faces import framing as framing_lib


def contact_sheet(
    out_dir, rows: list[dict], size: int, n: int = 64, tile: int = 128, framing: str = "canvas"
):
    """A grid of the first `n` prepared images with the mouth box and mouth landmarks.

    Args:
      out_dir: the prepared folder (images are read from it).
      rows: manifest rows (`file`, `mouth_left`, `mouth_right`).
      size: side of the prepared images.
      n: images on the sheet.
      tile: side of one thumbnail.
      framing: the frame the images are in (`faces.framing.FRAMINGS`).

    Returns:
      The sheet as a PIL image.
    """
    rows = rows[:n]
    cols = min(8, len(rows))
    sheet = Image.new("RGB", (cols * tile, math.ceil(len(rows) / cols) * tile), "white")
    draw = ImageDraw.Draw(sheet)
    k = tile / size
    corners = np.reshape(np.asarray(align.MOUTH_BOX, np.float64), (2, 2))
    (bx0, by0), (bx1, by1) = framing_lib.canvas_points(corners, framing, tile)
    for i, row in enumerate(rows):
        ox, oy = (i % cols) * tile, (i // cols) * tile
        face = Image.fromarray(images.read_rgb(pathlib.Path(out_dir) / row["file"]))
        sheet.paste(face.resize((tile, tile), Image.Resampling.LANCZOS), (ox, oy))
        draw.rectangle((ox + bx0, oy + by0, ox + bx1, oy + by1), outline=(255, 0, 0), width=2)
        for key in ("mouth_left", "mouth_right"):
            x, y = (float(v) * k for v in row[key].split())
            draw.ellipse((ox + x - 2, oy + y - 2, ox + x + 2, oy + y + 2), fill=(0, 255, 0))
    return sheet


_DETECTOR = {}


def _mouth_in_box(path: str, size: int) -> int:
    """-1: no face found; else 1 if both mouth corners are in the box, 0 if not."""
    if "detector" not in _DETECTOR:
        _DETECTOR["detector"] = detection.plain_mtcnn()
    rgb = images.read_rgb(path)
    face, _ = detection.dominant_face(_DETECTOR["detector"].detect(rgb), 0.5, 1.1)
    if face is None:
        return -1
    mouth = np.stack([face.point("mouth_left"), face.point("mouth_right")])
    return int(filters.in_box(mouth, size=size))


def redetect_in_box(out_dir, rows: list[dict], size: int, workers: int = 1) -> dict:
    """Independent check: detects faces again on the outputs, counts mouths in the box.

    Args:
      out_dir: the prepared folder.
      rows: manifest rows to check.
      size: side of the prepared images.
      workers: processes to detect with (1: in this process).

    Returns:
      {"checked", "detected", "in_box", "fraction"}: fraction = in_box / checked
      (an output where the detector finds no face counts as outside).
    """
    paths = [str(pathlib.Path(out_dir) / row["file"]) for row in rows]
    check = functools.partial(_mouth_in_box, size=size)
    if workers <= 1:
        results = [check(p) for p in paths]
    else:
        spawn = multiprocessing.get_context("spawn")  # See prepare._results: no fork.
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=spawn) as pool:
            results = list(pool.map(check, paths, chunksize=32))
    inside = results.count(1)
    return {
        "checked": len(rows),
        "detected": len(rows) - results.count(-1),
        "in_box": inside,
        "fraction": inside / max(len(rows), 1),
    }

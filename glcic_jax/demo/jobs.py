"""Uploads and their results on disk: one folder per upload, one sub-folder per photo.

    OUTPUT/<job>/<index>/upload         the file as uploaded (never opened by its own name)
                         input.png      the photo, upright RGB
                         region.png     the filled region (white), the photo's size
                         view.png       the region tinted red, each face's box in green
                         completed.png  the completed photo
                         faces.csv      one row per face (complete.py's per-face columns)
                         meta.json      the upload's name, model, status and message

Job ids are random hex made here and photo indices are integers, and a file
is only ever asked for by one of `FILES`' fixed names, so no path a browser
sends can reach outside the output folder.
"""

import base64
import binascii
import csv
import dataclasses
import io
import json
import pathlib
import re
import secrets

import numpy as np
from PIL import Image

from glcic_jax.completion import photo, photo_folder, photo_views

FILES = ("input.png", "region.png", "view.png", "completed.png", "faces.csv")
JOB_PATTERN = re.compile(r"^[0-9a-f]{16}$")
MEDIA = {".png": "image/png", ".csv": "text/csv"}


class JobError(Exception):
    """A job, photo or file that does not exist (the page answers 404)."""


@dataclasses.dataclass
class PhotoEntry:
    """One uploaded photo as the page shows it."""

    index: int
    name: str
    model: str
    status: str  # photo_folder's: completed, no_masked_face, no_face, failed
    message: str
    faces: list  # dicts of complete.py's per-face columns
    width: int = 0
    height: int = 0


class JobStore:
    """The output folder: creates jobs, writes results, finds files."""

    def __init__(self, root):
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def new_job(self) -> str:
        job = secrets.token_hex(8)
        (self.root / job).mkdir()
        return job

    def photo_dir(self, job: str, index: int, create: bool = False) -> pathlib.Path:
        if not JOB_PATTERN.match(job) or not (self.root / job).is_dir():
            raise JobError(f"no such job {job!r}")
        folder = self.root / job / str(int(index))
        if create:
            folder.mkdir(exist_ok=True)
        elif not folder.is_dir():
            raise JobError(f"no photo {index} in job {job}")
        return folder

    def file(self, job: str, index: int, name: str) -> pathlib.Path:
        if name not in FILES:
            raise JobError(f"no file {name!r}")
        path = self.photo_dir(job, index) / name
        if not path.is_file():
            raise JobError(f"no file {name!r} for photo {index}")
        return path

    def entries(self, job: str) -> list[PhotoEntry]:
        if not JOB_PATTERN.match(job) or not (self.root / job).is_dir():
            raise JobError(f"no such job {job!r}")
        folders = sorted(
            (p for p in (self.root / job).iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
        )
        return [
            PhotoEntry(**json.loads((f / "meta.json").read_text()))
            for f in folders
            if (f / "meta.json").is_file()
        ]

    def save_upload(self, job: str, index: int, name: str, data: bytes) -> pathlib.Path:
        folder = self.photo_dir(job, index, create=True)
        path = folder / "upload"
        path.write_bytes(data)
        _write_meta(folder, PhotoEntry(index, name, "", "failed", "not read yet", []))
        return path

    def save_failure(self, job: str, index: int, name: str, model: str, message: str) -> None:
        folder = self.photo_dir(job, index, create=True)
        _write_meta(folder, PhotoEntry(index, name, model, photo_folder.FAILED, message, []))

    def save_result(self, job: str, index: int, name: str, model: str, rgb, result) -> PhotoEntry:
        """Writes a completed photo's pictures, faces and status; returns its entry."""
        folder = self.photo_dir(job, index, create=True)
        filled = [f for f in result.faces if f.filled > 0]
        if result.status != "ok":
            status, message = (
                photo_folder.NO_FACE,
                ("no face found: paint the region to fill and complete again"),
            )
        elif filled:
            status, message = (
                photo_folder.COMPLETED,
                f"{len(filled)} of {len(result.faces)} faces completed",
            )
        else:
            status, message = (
                photo_folder.NO_MASKED_FACE,
                (f"{len(result.faces)} faces found, no mask on any: paint the region to fill"),
            )
        rows = [
            dataclasses.asdict(photo_folder.FaceRow.of(name, i, f))
            for i, f in enumerate(result.faces)
        ]
        height, width = rgb.shape[:2]
        _save_png(folder / "input.png", rgb)
        _save_png(folder / "completed.png", result.completed)
        _save_png(folder / "region.png", result.region.astype(np.uint8) * 255)
        _save_png(folder / "view.png", photo_views.region_view(rgb, result))
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, photo_folder.FACE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        (folder / "faces.csv").write_text(text.getvalue(), encoding="utf-8")
        entry = PhotoEntry(index, name, model, status, message, rows, width, height)
        _write_meta(folder, entry)
        return entry

    def input_photo(self, job: str, index: int) -> np.ndarray:
        return photo.load_photo(self.file(job, index, "input.png"))


def decode_mask(data_url: str, shape) -> np.ndarray:
    """A painted region sent as a PNG data URL -> bool (H, W): white (> 127) is fill.

    Raises:
      photo.PhotoError: not a PNG data URL, not an image, or not the photo's size.
    """
    prefix = "data:image/png;base64,"
    if not isinstance(data_url, str) or not data_url.startswith(prefix):
        raise photo.PhotoError("the painted region did not arrive as a PNG")
    try:
        data = base64.b64decode(data_url[len(prefix) :], validate=True)
        with Image.open(io.BytesIO(data)) as im:
            grey = np.asarray(im.convert("L"))
    except (binascii.Error, OSError, ValueError) as e:
        raise photo.PhotoError(f"the painted region is not a readable PNG ({e})") from None
    if grey.shape != tuple(shape[:2]):
        raise photo.PhotoError(
            f"the painted region is {grey.shape[1]}x{grey.shape[0]}, the photo {shape[1]}x{shape[0]}"
        )
    return grey > 127


def _save_png(path, array) -> None:
    photo_folder.save_png(np.asarray(array, np.uint8), path)


def _write_meta(folder: pathlib.Path, entry: PhotoEntry) -> None:
    tmp = folder / "meta.json.tmp"
    tmp.write_text(json.dumps(dataclasses.asdict(entry)))
    tmp.replace(folder / "meta.json")

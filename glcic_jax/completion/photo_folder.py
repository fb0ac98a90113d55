"""A photo or a folder of photos in, completed photos and two tables out.

    photo_folder.check_output_dir(out_dir, input_root)      # before any work
    photos = photo_folder.list_photos(input_root, out_dir)
    rows = list(photo_folder.complete_photos(completer, photos, input_root, out_dir, "box"))
    summary, faces = photo_folder.write_tables(out_dir, rows)

Everything `experiments/complete.py` does with files lives here, so a test
reaches it without the script. `photo.PhotoCompleter` does the completing.

Output names. A photo `REL` (its path under the input folder) gives
`OUT/REL.png` (the completed photo) and `OUT/REL_side.png` (input | region |
completion), the folder layout kept: `face.tiff` -> `face.tiff.png`,
`face.tiff_side.png`. Keeping the source's suffix makes the names unique by
construction (two files in one folder never share a name, and an input name
ends in an image suffix, never in `_side`), and deterministic from the
photo's own name: a counter added on collision would depend on which other
files exist and in what order, so adding `face.bmp` to a folder could rename
the results of `face.jpg` on the next run.

Reading back. A rerun, or a folder walk that meets an earlier run's results,
must not complete completions. `list_photos` leaves out the output folder
and every folder holding a summary this module wrote (`SUMMARY_NAME` with
its header), and `complete_photos` refuses to write over any input photo.
The output folder may therefore lie inside the input folder, but may not be
the input folder or hold it (`check_output_dir`).

The summary (`SUMMARY_NAME` in the output folder) has one row per photo,
`SummaryRow`, written even when photos fail, atomically (a temporary file
renamed over the old one), so it is never half a table.

The per-face table (`FACES_NAME`, beside it) has one row per face the
pipeline considered, `FaceRow`: the detector's box and score, what drew the
region and how many pixels its fill wrote. The summary says how many faces
a photo had; only this table says where they were, so a region put on
something that is not a masked face (a van, a collar, a hand) or on the
wrong face can be found without opening every picture. Its rows come from
the same `SummaryRow`s (`SummaryRow.faces`) and both tables are written by
one call, `write_tables`, for the whole run, merged into the folder's
earlier tables (a rerun of a photo replaces its rows, other photos' rows
stay); a photo that failed or was not reached (Ctrl-C) has a summary row and
no face rows, and a photo without a face likewise. Both are written out in full before
either is renamed into place, and an earlier per-face table is removed just
before, so beside a summary there is its own per-face table or, after a
crash between the two renames, none: never an earlier run's.
"""

import contextlib
import csv
import dataclasses
import io
import os
import pathlib
import tempfile
import time

import numpy as np
from PIL import Image

from glcic_jax.completion import photo, photo_views
from glcic_jax.dataset import prepare

SUMMARY_NAME = "completion_summary.csv"
FACES_NAME = "completion_faces.csv"
PHOTO_SUFFIXES = prepare.SUFFIXES
# A photo's status: at least one face filled; faces found but none filled (no
# mask found on them); no face found; an error; not reached before Ctrl-C.
COMPLETED, NO_MASKED_FACE, NO_FACE = "completed", "no_masked_face", "no_face"
FAILED, INTERRUPTED = "failed", "interrupted"
STATUSES = (COMPLETED, NO_MASKED_FACE, NO_FACE, FAILED, INTERRUPTED)


@dataclasses.dataclass
class SummaryRow:
    """One photo's line in the summary table.

    Attributes:
      photo: the photo's path, as found under the input.
      output: the completed photo, relative to the output folder ("" if none).
      side_by_side: the input | region | completion picture, likewise.
      faces_found: faces detected at the completer's minimum confidence.
      faces_masked: faces the mask segmenter found a mask on (region "mask"
        with the "net" segmenter; 0 otherwise).
      faces_completed: faces whose fill changed at least one photo pixel.
      region_kind: the region asked for: "mask", "box" or "file".
      region_pixels: photo pixels filled (all faces together).
      segmenter: what drew the regions of the completed faces, "+"-joined:
        "net", "grabcut", "box" or "file" (`photo.FaceResult.segmenter`).
      seconds: wall time to read, complete and write this photo.
      status: "completed" (at least one face filled), "no_masked_face"
        (faces found, none filled: written unchanged), "no_face" (none
        found: written unchanged), "failed" or "interrupted" (not reached
        before Ctrl-C).
      error: why it failed, one line ("" otherwise).
      faces: the photo's `FaceRow`s, one per face in `faces_found` (not a
        column: `write_tables` puts them in the per-face table).
    """

    photo: str
    output: str = ""
    side_by_side: str = ""
    faces_found: int = 0
    faces_masked: int = 0
    faces_completed: int = 0
    region_kind: str = ""
    region_pixels: int = 0
    segmenter: str = ""
    seconds: float = 0.0
    status: str = ""
    error: str = ""
    faces: list["FaceRow"] = dataclasses.field(default_factory=list, metadata={"column": False})


@dataclasses.dataclass
class FaceRow:
    """One face's line in the per-face table (one per `photo.FaceResult` of a photo).

    Attributes:
      photo: the photo's path, as in the summary.
      face: its index in the photo, as `photo.PhotoResult.faces` orders them
        (0 = the largest box).
      x0, y0, x1, y1: the detector's box in photo pixels, rounded to 0.1 (for
        method "file_no_face": the user mask's bounding box).
      confidence: the detector's score, 3 decimals (0 for "file_no_face").
      segmenter: what drew the region: "net", "grabcut", "box" or "file"
        (`photo.FaceResult.segmenter`).
      method: how, in detail (`photo.FaceResult.method`): "net", "no_mask"
        (the segmenter found no mask: left alone), "mask" (GrabCut),
        "mask_fallback_box", "box", "file" or "file_no_face".
      mask_share: the segmenter's share of the face's mask crop that is mask,
        3 decimals; empty when it did not run (any region but "mask" with the
        "net" segmenter).
      region_pixels: photo pixels this face's fill wrote. Overlapping faces
        can both count a pixel, which the summary's region_pixels counts once.
      completed: 1 when the fill changed at least one photo pixel, else 0.
      donor: the donor face that lent the fill its fine detail (empty: no
        donor bank, or none reached the region).
    """

    photo: str
    face: int
    x0: float
    y0: float
    x1: float
    y1: float
    confidence: float
    segmenter: str
    method: str
    mask_share: float | str
    region_pixels: int
    completed: int
    donor: str = ""

    @classmethod
    def of(cls, photo_name: str, index: int, face: photo.FaceResult) -> "FaceRow":
        """The row of `face`, the `index`-th face of the photo `photo_name`."""
        x0, y0, x1, y1 = (round(float(v), 1) for v in face.box)
        share = "" if face.mask_share is None else round(float(face.mask_share), 3)
        return cls(
            photo_name, index, x0, y0, x1, y1, round(float(face.confidence), 3),
            face.segmenter, face.method, share, int(face.filled), int(face.filled > 0),
            (face.detail or {}).get("donor", ""),
        )  # fmt: skip


COLUMNS = tuple(f.name for f in dataclasses.fields(SummaryRow) if f.metadata.get("column", True))
FACE_COLUMNS = tuple(f.name for f in dataclasses.fields(FaceRow))


def check_output_dir(out_dir, input_root=None) -> None:
    """Creates the output folder, or says in one line why it cannot be used.

    Args:
      out_dir: the output folder (created with its parents if missing).
      input_root: the input folder when the input is a folder: the output
        may lie inside it but may not be it or contain it.

    Raises:
      photo.PhotoError: a file is in the way, the folder is the input folder
        or holds it, or it cannot be created or written to.
    """
    out_dir = pathlib.Path(out_dir)
    existing = next((p for p in (out_dir, *out_dir.parents) if os.path.lexists(p)), None)
    if existing == out_dir and not out_dir.is_dir():
        raise photo.PhotoError(f"output {out_dir} is a file, not a folder")
    if existing is not None and not existing.is_dir():
        raise photo.PhotoError(f"output folder {out_dir} cannot be created: {existing} is a file")
    if input_root is not None:
        out_real, root_real = os.path.realpath(out_dir), os.path.realpath(input_root)
        if out_real == root_real or _is_within(root_real, out_real):
            what = "is" if out_real == root_real else "holds"
            raise photo.PhotoError(
                f"output folder {out_dir} {what} the input folder {input_root}: results would "
                "mix with the photos; choose a folder outside it, or a new one inside it"
            )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=out_dir, prefix=".write-test-")
        os.close(handle)
        os.unlink(probe)
    except OSError as e:
        raise photo.PhotoError(
            f"output folder {out_dir} is not writable ({e.strerror or e})"
        ) from None


def list_photos(root, out_dir=None, exclude=()) -> list[pathlib.Path]:
    """The photos under `root`, recursively, sorted; earlier results left out.

    Args:
      root: the input folder.
      out_dir: this run's output folder; nothing in it (or linking into it) is a photo.
      exclude: files that are not photos to complete (e.g. the user's mask file).

    Returns:
      Regular files (or links to them) with an image suffix, not inside
      `out_dir` nor in a folder holding an earlier run's summary.
    """
    out_real = None if out_dir is None else os.path.realpath(out_dir)
    skip = {os.path.realpath(p) for p in exclude}
    photos = []
    for folder, subfolders, files in os.walk(root):
        here = pathlib.Path(folder)
        subfolders[:] = [d for d in subfolders if not _is_output_dir(here / d, out_real)]
        for name in files:
            path = here / name
            if path.suffix.lower() not in PHOTO_SUFFIXES or not path.is_file():
                continue
            real = os.path.realpath(path)
            if real in skip or (out_real is not None and _is_within(real, out_real)):
                continue
            photos.append(path)
    return sorted(photos)


def output_paths(photo_path, root, out_dir) -> tuple[pathlib.Path, pathlib.Path]:
    """(completed photo, side-by-side picture) for a photo under `root` (module docstring)."""
    target = pathlib.Path(out_dir) / pathlib.Path(photo_path).relative_to(root)
    return target.with_name(target.name + ".png"), target.with_name(target.name + "_side.png")


def complete_photos(completer, photos, root, out_dir, region="mask", user_mask=None, progress=None):
    """Completes and writes each photo; yields its `SummaryRow` as soon as it is done.

    A photo that fails (unreadable, too large, an error while completing or
    writing) gives a "failed" row without face rows and the next photo goes on.

    Args:
      completer: a `photo.PhotoCompleter`.
      photos: photo paths under `root` (e.g. from `list_photos`).
      root: the folder whose layout is kept under `out_dir`.
      out_dir: the output folder (`check_output_dir` first).
      region, user_mask: as for `photo.PhotoCompleter.complete`.
      progress: optional wrapper of the photo list, e.g. a tqdm bar.

    Yields:
      One `SummaryRow` per photo, in order, its `faces` filled when it was written.
    """
    out_dir = pathlib.Path(out_dir)
    inputs = {os.path.realpath(p) for p in photos}
    for path in progress(photos) if progress else photos:
        start = time.perf_counter()
        output, side = output_paths(path, root, out_dir)
        row = SummaryRow(str(path), region_kind=region)
        try:
            for target in (output, side):
                if os.path.realpath(target) in inputs:
                    raise photo.PhotoError(
                        f"{path}: refused, its result {target} is an input photo"
                    )
            rgb = photo.load_photo(path)
            result = completer.complete(rgb, region, user_mask)
            output.parent.mkdir(parents=True, exist_ok=True)
            save_png(result.completed, output)
            save_png(photo_views.side_by_side(rgb, result), side)
        except photo.PhotoError as e:
            row.status, row.error = FAILED, str(e)
        except OSError as e:  # a full disk or a folder that went away: that photo fails
            row.status, row.error = FAILED, f"{path}: cannot write its result ({e.strerror or e})"
        except Exception as e:  # noqa: BLE001 - one odd photo must not end the whole run
            message = " ".join(str(e).split())
            row.status, row.error = FAILED, f"{path}: {e.__class__.__name__}: {message}"
        else:
            completed = [face for face in result.faces if face.filled > 0]
            if result.status != "ok":
                row.status = NO_FACE
            else:
                row.status = COMPLETED if completed else NO_MASKED_FACE
            row.output = output.relative_to(out_dir).as_posix()
            row.side_by_side = side.relative_to(out_dir).as_posix()
            row.faces_found, row.faces_completed = len(result.faces), len(completed)
            row.faces_masked = sum(face.masked for face in result.faces)
            row.region_pixels = int(np.count_nonzero(result.region))
            row.segmenter = "+".join(dict.fromkeys(face.segmenter for face in completed))
            row.faces = [FaceRow.of(row.photo, i, face) for i, face in enumerate(result.faces)]
        row.seconds = round(time.perf_counter() - start, 3)
        yield row


def exit_status(counts: dict, interrupted: bool = False) -> int:
    """complete.py's exit status from its status counts.

    0: every photo completed; 3: none failed, but some had nothing to
    complete (no face found, no masked face); 1: any failed; 130: Ctrl-C.
    """
    if interrupted:
        return 130
    if counts.get(FAILED):
        return 1
    if counts.get(NO_FACE) or counts.get(NO_MASKED_FACE):
        return 3
    return 0


def save_png(rgb, path) -> None:
    """Writes a PNG whole or not at all (a temporary file renamed into place)."""
    path = pathlib.Path(path)
    with _replacing(path) as f:
        Image.fromarray(np.asarray(rgb, np.uint8)).save(f, format="PNG")


def write_tables(out_dir, rows) -> tuple[pathlib.Path, pathlib.Path]:
    """Writes the summary and the per-face table of `rows`, merged into earlier ones.

    An earlier run's rows stay for the photos this run did not do (in their
    order, first), and this run's replace the rest: photos done one call at a
    time into one folder end in one table, and a rerun of a photo leaves one
    row for it, the newest. An earlier table with other columns (another
    version's) is replaced, not merged. Both are made in memory first (an
    error there changes nothing), then each written to a temporary file; the
    earlier per-face table is removed and the two renamed into place, the
    summary first (module docstring).

    Args:
      rows: the run's `SummaryRow`s; their `faces` make the per-face table.

    Returns:
      (the summary's path, the per-face table's path), in `out_dir`.
    """
    rows = list(rows)
    out_dir = pathlib.Path(out_dir)
    summary, faces = out_dir / SUMMARY_NAME, out_dir / FACES_NAME
    done = {r.photo for r in rows}
    kept = [r for r in _earlier(summary, COLUMNS) if r["photo"] not in done]
    kept_faces = [r for r in _earlier(faces, FACE_COLUMNS) if r["photo"] not in done]
    summary_csv = _csv(COLUMNS, kept + [{c: getattr(r, c) for c in COLUMNS} for r in rows])
    faces_csv = _csv(
        FACE_COLUMNS, kept_faces + [dataclasses.asdict(f) for r in rows for f in r.faces]
    )
    with _replacing(faces) as faces_file:
        faces_file.write(faces_csv)
        faces_file.flush()  # a full disk fails here, before the summary is replaced
        with _replacing(summary) as summary_file:
            summary_file.write(summary_csv)
            _remove(faces)
    return summary, faces


def _csv(columns, dicts) -> bytes:
    """A CSV table (header, then one line per dict) as UTF-8 bytes."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, columns)
    writer.writeheader()
    writer.writerows(dicts)
    return text.getvalue().encode("utf-8")


@contextlib.contextmanager
def _replacing(path: pathlib.Path):
    """A binary file that replaces `path` when the block ends without an error.

    The temporary file is opened like any new file (so it gets the usual
    permissions, unlike mkstemp's owner-only ones) beside its target, so the
    rename stays on one file system and is atomic.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as f:
            yield f
        os.replace(temporary, path)
    except BaseException:
        _remove(temporary)
        raise


def _earlier(path, columns) -> list[dict]:
    """An earlier table's rows when it has exactly these columns, else []."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != tuple(columns):
                return []
            return list(reader)
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def read_summary(path) -> list[dict]:
    """The rows of a summary or a per-face table as dicts of strings (column -> value)."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _is_output_dir(folder: pathlib.Path, out_real) -> bool:
    """This run's output folder, or one holding a summary this module wrote."""
    if out_real is not None and os.path.realpath(folder) == out_real:
        return True
    try:
        with open(folder / SUMMARY_NAME, newline="", encoding="utf-8") as f:
            return tuple(next(csv.reader(f), ())) == COLUMNS
    except (OSError, UnicodeDecodeError, csv.Error):
        return False


def _is_within(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder and path != folder


def _remove(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass

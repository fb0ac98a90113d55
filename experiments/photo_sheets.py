r"""Contact sheets of a complete.py run: every photo's input | region | completion, numbered.

  python experiments/photo_sheets.py --run=completed/ --out=sheets/ [--per_sheet=12] \
      [--sample=120 --seed=0] [--status=completed,no_masked_face,no_face]

Reads RUN/completion_summary.csv and the NAME_side.png pictures it lists,
and writes OUT/sheet_000.png, ... (each picture shrunk to --height and
labelled with its row number and file name) plus OUT/index.csv (row number,
photo, status, faces found / masked / completed, sheet): what a person
judges the results by, one sheet at a time. When the run has its per-face
table (RUN/completion_faces.csv), each face box on the middle picture is
labelled with its index and the detector's confidence, so a box seen on a
sheet (on a hand, on the wrong face) is found in that table by photo and
index.
"""

import csv
import pathlib
import sys

import cv2
import numpy as np
from absl import app, flags
from PIL import Image

from glcic_jax import images

_RUN = flags.DEFINE_string("run", None, "complete.py's output folder.", required=True)
_OUT = flags.DEFINE_string("out", None, "Folder for the sheets.", required=True)
_PER_SHEET = flags.DEFINE_integer("per_sheet", 12, "Pictures per sheet.")
_HEIGHT = flags.DEFINE_integer("height", 200, "Height of each picture on a sheet (px).")
_WIDTH = flags.DEFINE_integer("width", 1200, "Width of a sheet (px).")
_SAMPLE = flags.DEFINE_integer(
    "sample", 0, "Only this many photos, drawn at random with --seed (0: all)."
)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of --sample.")
_STATUS = flags.DEFINE_list(
    "status", ["completed"], "Only photos with these statuses (complete.py's)."
)


def _label(picture: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((18, picture.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text[:90], (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, picture], axis=0)


def _label_faces(picture: np.ndarray, side_width: int, photo_size, faces) -> None:
    """Writes "index confidence" at each face box's corner on the middle (region) panel.

    Args:
      picture: the side-by-side picture, already shrunk for the sheet (written in place).
      side_width: the side-by-side picture's width before that shrink.
      photo_size: (width, height) of the photo, whose pixels the boxes are in.
      faces: the photo's rows of the per-face table.
    """
    panel = (side_width - 8) / 3  # input | 4 px | region | 4 px | completion
    shrink = picture.shape[1] / side_width
    sx, sy = panel / photo_size[0] * shrink, picture.shape[0] / photo_size[1]
    for face in faces:
        text = f"{face['face']} {float(face['confidence']):.3f}"
        x = round((panel + 4) * shrink + float(face["x0"]) * sx)
        y = max(9, round(float(face["y0"]) * sy) - 2)
        for colour, width in (((0, 0, 0), 3), ((255, 255, 0), 1)):
            cv2.putText(picture, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.33, colour, width,
                        cv2.LINE_AA)  # fmt: skip


def _sheet(pictures: list[np.ndarray], width: int) -> np.ndarray:
    """Pictures flowed into rows of at most `width` pixels, 4 px apart, white background."""
    rows, row, used = [], [], 0
    for p in pictures:
        if row and used + p.shape[1] + 4 > width:
            rows.append(row)
            row, used = [], 0
        row.append(p)
        used += p.shape[1] + 4
    rows.append(row)
    height = sum(max(p.shape[0] for p in r) + 4 for r in rows)
    sheet = np.full((height, width, 3), 255, np.uint8)
    y = 0
    for r in rows:
        x = 0
        for p in r:
            w = min(p.shape[1], width - x)
            sheet[y : y + p.shape[0], x : x + w] = p[:, :w]
            x += p.shape[1] + 4
        y += max(p.shape[0] for p in r) + 4
    return sheet


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    run, out = pathlib.Path(_RUN.value), pathlib.Path(_OUT.value)
    summary = run / "completion_summary.csv"
    if not summary.is_file():
        sys.exit(f"error: {summary} not found (run experiments/complete.py first)")
    with open(summary, newline="") as f:
        rows = list(csv.DictReader(f))
    faces_by_photo = {}
    if (run / "completion_faces.csv").is_file():
        with open(run / "completion_faces.csv", newline="") as f:
            for face in csv.DictReader(f):
                faces_by_photo.setdefault(face["photo"], []).append(face)
    out.mkdir(parents=True, exist_ok=True)
    wanted = set(_STATUS.value)
    if "completed" in wanted:
        wanted.add("ok")  # what tables written before the statuses were split call it
    numbered = [(i, r) for i, r in enumerate(rows) if r["status"] in wanted]
    if _SAMPLE.value and _SAMPLE.value < len(numbered):
        chosen = np.random.default_rng(_SEED.value).choice(len(numbered), _SAMPLE.value, False)
        numbered = [numbered[i] for i in sorted(chosen)]
    index, pictures, sheet_no = [], [], 0
    for number, row in numbered:
        side = run / row["side_by_side"] if row.get("side_by_side") else None
        if side is None or not side.is_file():
            continue
        picture = images.read_rgb(side)
        k = _HEIGHT.value / picture.shape[0]
        size = (max(1, round(picture.shape[1] * k)), _HEIGHT.value)
        side_width = picture.shape[1]
        picture = cv2.resize(picture, size, interpolation=cv2.INTER_AREA)
        completed = run / row["output"] if row.get("output") else None
        if faces_by_photo.get(row["photo"]) and completed is not None and completed.is_file():
            with Image.open(completed) as image:  # the photo's size, from the header only
                photo_size = image.size
            _label_faces(picture, side_width, photo_size, faces_by_photo[row["photo"]])
        name = pathlib.Path(row["photo"]).name
        pictures.append(_label(picture, f"#{number} {name}"))
        index.append(
            dict(
                number=number,
                photo=row["photo"],
                status=row["status"],
                faces_found=row.get("faces_found", ""),
                faces_masked=row.get("faces_masked", ""),
                faces_completed=row.get("faces_completed", ""),
                sheet=f"sheet_{sheet_no:03d}.png",
            )
        )
        if len(pictures) == _PER_SHEET.value:
            Image.fromarray(_sheet(pictures, _WIDTH.value)).save(out / f"sheet_{sheet_no:03d}.png")
            pictures, sheet_no = [], sheet_no + 1
    if pictures:
        Image.fromarray(_sheet(pictures, _WIDTH.value)).save(out / f"sheet_{sheet_no:03d}.png")
        sheet_no += 1
    with open(out / "index.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, list(index[0]) if index else ["number"])
        writer.writeheader()
        writer.writerows(index)
    print(f"wrote {sheet_no} sheets of {len(index)} pictures into {out}")


if __name__ == "__main__":
    app.run(main)

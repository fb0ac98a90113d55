r"""Sheets of several complete.py runs face by face, for judging by eye, blind if asked; then the tally.

  python experiments/compare_faces.py --runs=out/none,out/refined --out=cmp/ [--min_width=60]
  python experiments/compare_faces.py --runs=out/none,out/refined,out/donor --out=kit/ --blind
  python experiments/compare_faces.py --out=kit/ --tally=kit/labels.csv [--min_width=100]

Every face the first run completed (its completion_faces.csv) is cut from the
photo and from each run's result with one box; a row per face: the input,
then the runs (sheet_000.png, ...; --per_sheet rows a sheet, the face's
number and width on its input). Plain: the runs in the order given, named
in the header. --blind: the order is shuffled per face (--seed) and the
columns named A, B, C...; OUT/key.json says which is
which, and OUT/labels.csv is a table to fill in, one row per face and tile
(QUESTIONS: sharp, mouth, accept, distorted, remnant as 0/1, and a note).
--tally reads a filled table with OUT/key.json and prints the counts per
run (faces at least --min_width px wide): docs/photos.md's blind tables.
"""

import csv
import json
import pathlib
import sys

import cv2
import numpy as np
from absl import app, flags
from tqdm import tqdm

from glcic_jax.evaluation import face_comparison as fc
from glcic_jax.evaluation import figures

_RUNS = flags.DEFINE_list("runs", [], "complete.py output folders; the first one's faces are used.")
_OUT = flags.DEFINE_string("out", None, "Folder for the sheets (and the key).", required=True)
_MIN_WIDTH = flags.DEFINE_float(
    "min_width", 0.0, "Only faces at least this wide in the photo (px)."
)
_BLIND = flags.DEFINE_bool("blind", False, "Shuffle the runs per face and name them A, B, C...")
_SEED = flags.DEFINE_integer("seed", 7, "Seed of the blind order.")
_PER_SHEET = flags.DEFINE_integer("per_sheet", 4, "Faces per sheet.", lower_bound=1)
_TILE = flags.DEFINE_integer("tile", 300, "Side of each face tile (px).", lower_bound=16)
_TALLY = flags.DEFINE_string("tally", None, "A filled labels table: print the counts per run.")


def _numbered(tile, text: str) -> np.ndarray:
    """`tile` with `text` in its top-left corner, legible on any photo."""
    tile = tile.copy()
    for colour, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(tile, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, width, cv2.LINE_AA)
    return tile


def _write_sheets(out: pathlib.Path, rows: list[list[np.ndarray]], columns) -> int:
    """`figures.contact_sheet`s of --per_sheet rows each; returns how many."""
    per = _PER_SHEET.value
    for s in range(0, len(rows), per):
        sheet = figures.contact_sheet(rows, range(s, min(s + per, len(rows))), columns)
        cv2.imwrite(str(out / f"sheet_{s // per:03d}.png"), sheet[..., ::-1])
    return (len(rows) + per - 1) // per


def make_sheets(out: pathlib.Path) -> None:
    if _BLIND.value and (out / "labels.csv").exists():
        sys.exit(f"error: {out / 'labels.csv'} exists (a judge's labels?): choose another --out")
    faces = fc.completed_faces(_RUNS.value, _MIN_WIDTH.value)
    if not faces:
        sys.exit(
            "error: no face to compare: none completed at least --min_width wide in the"
            " first run, or the runs were made from different --input paths"
        )
    out.mkdir(parents=True, exist_ok=True)
    names = [pathlib.Path(r).name or str(r) for r in _RUNS.value]
    orders = fc.blind_orders(len(faces), len(names), _SEED.value) if _BLIND.value else None
    columns = ["input", *(fc.LETTERS[: len(names)] if orders else names)]
    rows, key = [], []
    for i, face in enumerate(tqdm(faces, desc="faces", unit="face")):
        tiles = fc.face_tiles(face, _TILE.value)
        order = orders[i] if orders else list(range(len(names)))
        head = _numbered(tiles[0], f"face {i} ({face['width']:.0f} px)")
        rows.append([head] + [tiles[k + 1] for k in order])
        key.append(dict(face=i, photo=face["photo"], index=face["face"], width=face["width"],
                        order={fc.LETTERS[j]: str(_RUNS.value[k]) for j, k in enumerate(order)}))  # fmt: skip
    sheets = _write_sheets(out, rows, columns)
    if orders:
        (out / "key.json").write_text(json.dumps(key, indent=1))
        with open(out / "labels.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["face", "tile", *fc.QUESTIONS, "note"])
            for k in key:
                for letter in k["order"]:
                    writer.writerow([k["face"], letter, *[""] * len(fc.QUESTIONS), ""])
    print(f"{len(faces)} faces on {sheets} sheets in {out}"
          + ("; key.json and labels.csv to fill in" if orders else ""))  # fmt: skip


def print_tally(out: pathlib.Path) -> None:
    key_path, labels_path = out / "key.json", pathlib.Path(_TALLY.value)
    for path in (key_path, labels_path):
        if not path.is_file():
            sys.exit(f"error: {path} not found")
    try:
        key = json.loads(key_path.read_text())
        with open(labels_path, newline="") as f:
            labels = list(csv.DictReader(f))
        counts = fc.tally(labels, key, _MIN_WIDTH.value)
    except (fc.ComparisonError, KeyError, TypeError, ValueError, OSError) as e:
        sys.exit(f"error: {labels_path} with {key_path}: {e!s}")
    columns = ["faces", *fc.QUESTIONS, "sharp_and_mouth"]
    print(f"faces at least {_MIN_WIDTH.value:g} px wide")
    print("| run | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for run, c in sorted(counts.items()):
        print(f"| {run} | " + " | ".join(str(c[q]) for q in columns) + " |")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    out = pathlib.Path(_OUT.value)
    try:
        if _TALLY.value:
            print_tally(out)
        elif not _RUNS.value:
            sys.exit("error: give --runs (complete.py output folders) or --tally")
        else:
            make_sheets(out)
    except fc.ComparisonError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    app.run(main)

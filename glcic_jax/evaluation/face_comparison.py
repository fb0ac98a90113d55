"""Several complete.py runs over the same photos, face by face, for judging by eye.

A number can hide what a person sees, so real photos are judged by eye:
each completed face is cut from the photo and from every run's result with
the same box, the runs side by side. For a blind judgement the runs' order
is shuffled per face and named A, B, C...; the key (which letter is which
run) is kept apart, and `tally` counts a judge's labels per run afterwards.
"""

import csv
import pathlib
import random

import cv2
import numpy as np

from glcic_jax import images

# What a judge writes per face and tile (0/1 each), then a short note.
QUESTIONS = ("sharp", "mouth", "accept", "distorted", "remnant")
LETTERS = "ABCDEFGHIJ"


class ComparisonError(Exception):
    """Runs that cannot be compared; the message is one line for the user."""


def _read_csv(path: pathlib.Path) -> list[dict]:
    if not path.is_file():
        raise ComparisonError(f"{path} not found (run experiments/complete.py first)")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def completed_faces(runs, min_width: float = 0.0) -> list[dict]:
    """The faces the first run completed (its per-face table) whose photo every run has a result for.

    Each: photo, face index, box (x0, y0, x1, y1), width, and `outputs`: each
    run's completed picture. Runs are matched by the photo's path as
    complete.py wrote it, so make them with the same --input.

    Raises:
      ComparisonError: a run without its tables, more runs than LETTERS, or a
        photo that is no longer where the table says.
    """
    runs = [pathlib.Path(r) for r in runs]
    if not runs or len(runs) > len(LETTERS):
        raise ComparisonError(f"give 1 to {len(LETTERS)} runs, not {len(runs)}")
    outputs = []
    for run in runs:
        rows = _read_csv(run / "completion_summary.csv")
        outputs.append({r["photo"]: run / r["output"] for r in rows if r.get("output")})
    faces = []
    for row in _read_csv(runs[0] / "completion_faces.csv"):
        if row.get("completed") != "1":
            continue
        box = tuple(float(row[k]) for k in ("x0", "y0", "x1", "y1"))
        found = [o.get(row["photo"]) for o in outputs]
        if any(p is None or not p.is_file() for p in found):
            continue
        if not pathlib.Path(row["photo"]).is_file():
            raise ComparisonError(
                f"photo {row['photo']} (from {runs[0] / 'completion_faces.csv'}) not found:"
                " run from the folder complete.py ran in"
            )
        if box[2] - box[0] >= min_width:
            faces.append(dict(photo=row["photo"], face=int(row["face"]), box=box,
                              width=box[2] - box[0], outputs=found))  # fmt: skip
    return faces


def crop_box(box, shape) -> tuple[int, int, int, int]:
    """A square around a face box, 1.3 x its width, moved down to hold the chin, inside `shape`."""
    x0, y0, x1, y1 = box
    w = x1 - x0
    side = min(max(8, round(1.3 * w)), shape[0], shape[1])  # square: tiles are not stretched
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + 0.1 * w
    left = int(np.clip(round(cx - side / 2), 0, max(0, shape[1] - side)))
    top = int(np.clip(round(cy - side / 2), 0, max(0, shape[0] - side)))
    return left, top, min(shape[1], left + side), min(shape[0], top + side)


def face_tiles(face: dict, tile: int = 256) -> list[np.ndarray]:
    """The photo's face, then each run's, cut with one box and scaled to `tile` px.

    Raises:
      ComparisonError: a picture that cannot be read.
    """
    paths = [face["photo"], *face["outputs"]]
    try:  # as complete.py read them: damaged data shows, it is not refused
        pictures = [images.read_rgb(p, check_damage=False) for p in paths]
    except images.ImageError as e:
        raise ComparisonError(str(e)) from None
    left, top, right, bottom = crop_box(face["box"], pictures[0].shape)
    return [
        cv2.resize(np.ascontiguousarray(p[top:bottom, left:right]), (tile, tile),
                   interpolation=cv2.INTER_AREA if right - left > tile else cv2.INTER_CUBIC)
        for p in pictures
    ]  # fmt: skip


def blind_orders(n_faces: int, n_runs: int, seed: int) -> list[list[int]]:
    """Per face, the runs' order on the sheet (a permutation of range(n_runs)), drawn with `seed`."""
    rng = random.Random(seed)
    orders = []
    for _ in range(n_faces):
        order = list(range(n_runs))
        rng.shuffle(order)
        orders.append(order)
    return orders


def tally(labels: list[dict], key: list[dict], min_width: float = 0.0) -> dict:
    """{run: {"faces": n, question: count, "sharp_and_mouth": count}} over faces >= `min_width` px.

    `labels`: a judge's rows (face, tile, the QUESTIONS as 0/1); `key`: per
    face its width and `order` ({letter: run}).

    Raises:
      ComparisonError: a label names a face or tile the key does not have,
        twice, or not as 0/1, or a tile of the key has no label.
    """
    by_face = {int(k["face"]): k for k in key}
    counts: dict = {}
    seen = set()
    for row in labels:
        face, tile = by_face.get(_as_int(row.get("face"))), row.get("tile")
        if face is None or tile not in face["order"]:
            raise ComparisonError(f"label for face {row.get('face')} tile {tile} is not in the key")
        if (face["face"], tile) in seen:
            raise ComparisonError(f"face {face['face']} tile {tile} is labelled twice")
        seen.add((face["face"], tile))
        answers = {q: (row.get(q) or "").strip() for q in QUESTIONS}
        for q, a in answers.items():
            if a not in ("0", "1"):
                raise ComparisonError(f"face {face['face']} tile {tile}: {q} is {a!r}, not 0 or 1")
        if face["width"] < min_width:
            continue
        answers = {q: int(a) for q, a in answers.items()}
        c = counts.setdefault(
            face["order"][tile], dict(faces=0, sharp_and_mouth=0, **dict.fromkeys(QUESTIONS, 0))
        )
        c["faces"] += 1
        for q in QUESTIONS:
            c[q] += answers[q]
        c["sharp_and_mouth"] += answers["sharp"] and answers["mouth"]
    missing = sum(len(k["order"]) for k in key) - len(seen)
    if missing:
        raise ComparisonError(f"{missing} tiles of the key have no label")
    return counts


def _as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None

"""Comparing complete.py runs face by face: the sheets, the blind key and the tally of a judge's labels."""

import csv
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from glcic_jax.evaluation import face_comparison as fc

ROOT = pathlib.Path(__file__).resolve().parents[1]


def fake_run(folder, photos, shade):
    """A complete.py output folder: both tables, and each photo's result a flat `shade`."""
    folder.mkdir()
    with open(folder / "completion_summary.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["photo", "output", "status"])
        for photo in photos:
            writer.writerow([photo, photo.name + ".png", "completed"])
            Image.fromarray(np.full((120, 160, 3), shade, np.uint8)).save(
                folder / (photo.name + ".png")
            )
    with open(folder / "completion_faces.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["photo", "face", "x0", "y0", "x1", "y1", "completed"])
        for i, photo in enumerate(photos):
            writer.writerow([photo, 0, 20, 10, 20 + 40 + 40 * i, 90, 1])  # widths 40, 80, ...
            writer.writerow([photo, 1, 0, 0, 10, 10, 0])  # not completed: never shown


@pytest.fixture
def runs(tmp_path):
    photos = []
    for i in range(3):
        photos.append(tmp_path / f"p{i}.jpg")
        Image.fromarray(np.full((120, 160, 3), 10 * i, np.uint8)).save(photos[-1])
    return [fake_run(tmp_path / name, photos, shade) or tmp_path / name
            for name, shade in (("none", 100), ("refined", 200))]  # fmt: skip


def test_faces_are_the_completed_ones_wide_enough_each_cut_with_one_box(runs):
    faces = fc.completed_faces(runs)
    assert [f["width"] for f in faces] == [40, 80, 120]
    assert [f["width"] for f in fc.completed_faces(runs, min_width=60)] == [80, 120]
    tiles = fc.face_tiles(faces[2], tile=64)
    assert [t.shape for t in tiles] == [(64, 64, 3)] * 3
    assert [int(t.mean()) for t in tiles] == [20, 100, 200]  # photo, then the runs in order
    left, top, right, bottom = fc.crop_box(faces[2]["box"], (120, 160))
    assert 0 <= left < right <= 160 and 0 <= top < bottom <= 120
    with pytest.raises(fc.ComparisonError, match="not found"):
        fc.completed_faces([runs[0], runs[0].parent / "missing"])
    left, top, right, bottom = fc.crop_box((0, 0, 150, 100), (120, 160))  # wider than the photo
    assert right - left == bottom - top == 120 and right <= 160  # square, inside
    pathlib.Path(faces[0]["photo"]).unlink()
    with pytest.raises(fc.ComparisonError, match="not found"):
        fc.completed_faces(runs)


def test_blind_orders_are_seeded_permutations_and_the_tally_counts_per_run():
    orders = fc.blind_orders(20, 3, seed=7)
    assert orders == fc.blind_orders(20, 3, seed=7) and all(sorted(o) == [0, 1, 2] for o in orders)
    assert len({tuple(o) for o in orders}) > 1
    key = [dict(face=0, width=50, order={"A": "x", "B": "y"}),
           dict(face=1, width=150, order={"A": "y", "B": "x"})]  # fmt: skip
    row = lambda face, tile, sharp, accept: dict(  # noqa: E731
        face=str(face), tile=tile, sharp=str(sharp), mouth="1", accept=str(accept),
        distorted="0", remnant="0")  # fmt: skip
    labels = [row(0, "A", 1, 1), row(0, "B", 0, 1), row(1, "A", 1, 0), row(1, "B", 0, 0)]
    counts = fc.tally(labels, key)
    assert counts["x"]["sharp"] == 1 and counts["x"]["accept"] == 1 and counts["x"]["faces"] == 2
    assert counts["y"]["sharp"] == 1 and counts["y"]["sharp_and_mouth"] == 1
    assert fc.tally(labels, key, min_width=100)["y"] == dict(
        faces=1, sharp=1, mouth=1, accept=0, distorted=0, remnant=0, sharp_and_mouth=1
    )
    with pytest.raises(fc.ComparisonError, match="not 0 or 1"):
        fc.tally([dict(labels[0], sharp=""), *labels[1:]], key)
    with pytest.raises(fc.ComparisonError, match="not 0 or 1"):
        fc.tally([{k: v for k, v in labels[0].items() if k != "remnant"}, *labels[1:]], key)
    with pytest.raises(fc.ComparisonError, match="not in the key"):
        fc.tally([dict(labels[0], tile="C"), *labels[1:]], key)
    with pytest.raises(fc.ComparisonError, match="twice"):
        fc.tally([*labels, labels[0]], key)
    with pytest.raises(fc.ComparisonError, match="1 tiles of the key have no label"):
        fc.tally(labels[1:], key)


def test_the_script_makes_a_blind_kit_and_tallies_it(runs, tmp_path):
    script, out = ROOT / "experiments" / "compare_faces.py", tmp_path / "kit"
    run = lambda *args: subprocess.run([sys.executable, str(script), *args],  # noqa: E731
                                       capture_output=True, text=True, timeout=120)  # fmt: skip
    made = run(f"--runs={runs[0]},{runs[1]}", f"--out={out}", "--blind", "--per_sheet=2")
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in out.glob("sheet_*.png")) == ["sheet_000.png", "sheet_001.png"]
    key = json.loads((out / "key.json").read_text())
    assert [sorted(k["order"].values()) for k in key] == [sorted(map(str, runs))] * 3
    unfilled = run(f"--out={out}", f"--tally={out / 'labels.csv'}")
    assert unfilled.returncode == 1 and unfilled.stderr.startswith("error:")
    assert "Traceback" not in unfilled.stderr
    with open(out / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:  # the judge accepts every tile of the run named "refined"
        refined = key[int(r["face"])]["order"][r["tile"]].endswith("refined")
        r.update(sharp="0", mouth="0", accept=str(int(refined)), distorted="0", remnant="0")
    with open(out / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tallied = run(f"--out={out}", f"--tally={out / 'labels.csv'}", "--min_width=60")
    assert tallied.returncode == 0, tallied.stderr
    lines = {
        line.split("|")[1].strip(): line for line in tallied.stdout.splitlines() if "|" in line
    }
    assert lines[str(runs[1])].replace(" ", "").startswith(f"|{runs[1]}|2|0|0|2|")
    assert lines[str(runs[0])].replace(" ", "").startswith(f"|{runs[0]}|2|0|0|0|")
    again = run(f"--runs={runs[0]},{runs[1]}", f"--out={out}", "--blind")
    assert again.returncode == 1 and "exists" in again.stderr  # a judge's labels are kept
    missing = run(f"--runs={tmp_path / 'nowhere'}", f"--out={out}")
    assert (
        missing.returncode == 1
        and "not found" in missing.stderr
        and "Traceback" not in missing.stderr
    )

"""experiments/complete.py as a folder tool: output names, reading back, the output folder, the tables, exit status.

The library side (glcic_jax.completion.photo_folder) is tested in-process;
one run of the script on a small folder, with the shipped model, checks what
a user sees: distinct results, the summary and per-face tables, the progress
bar, the exit status and its last line.
"""

import csv
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from glcic_jax.completion import photo, photo_folder
from glcic_jax.faces import detection

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "complete.py"


def script(*args, mock_read_only=False):
    """Runs the script; with `mock_read_only`, under a mock that makes every new file fail.

    The mock stands in for a read-only folder: the tests may run as root,
    which ignores permission bits.
    """
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    command = [sys.executable, str(SCRIPT), *args]
    if mock_read_only:
        code = (
            "import runpy, sys, tempfile\n"
            "from unittest import mock\n"
            "denied = PermissionError(13, 'Permission denied')\n"
            f"sys.argv = {[str(SCRIPT), *args]!r}\n"
            "with mock.patch.object(tempfile, 'mkstemp', side_effect=denied):\n"
            f"    runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
        )
        command = [sys.executable, "-c", code]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def one_error_line(run) -> str:
    """The run's single `error:` line; fails on a traceback or on several lines."""
    assert "Traceback" not in run.stderr, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    return lines[0]


@pytest.fixture(scope="module")
def three_faces(faces_dir):
    """Three different LFW faces, RGB uint8."""
    paths = sorted((faces_dir / "test").glob("*.jpg"))[:3]
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


@pytest.fixture(scope="module")
def folder_run(three_faces, tmp_path_factory):
    """The script (the study's box: these faces wear no mask) on a.jpg, a.png, a.tiff and an unreadable bad.jpg, output inside."""
    src = tmp_path_factory.mktemp("photos")
    for face, name in zip(three_faces, ("a.jpg", "a.png", "a.tiff")):
        Image.fromarray(face).save(src / name, quality=95)
    (src / "bad.jpg").write_bytes(b"not an image")
    out = src / "results"
    return src, out, script(f"--input={src}", f"--output={out}", "--region=box")


def test_output_names_keep_the_source_suffix(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    pairs = [
        photo_folder.output_paths(src / rel, src, out) for rel in ("a.jpg", "a.png", "sub/a.jpg")
    ]
    assert pairs[2] == (out / "sub" / "a.jpg.png", out / "sub" / "a.jpg_side.png")
    assert len({path for pair in pairs for path in pair}) == 6


def test_same_stem_photos_give_three_distinct_results(folder_run, three_faces):
    src, out, run = folder_run
    for face, name in zip(three_faces, ("a.jpg", "a.png", "a.tiff")):
        completed = np.asarray(Image.open(out / f"{name}.png"), np.float32)
        assert completed.shape == face.shape and (out / f"{name}_side.png").exists()
        # Each result is its own photo (only the mouth box changed), not another's.
        assert np.abs(completed - face).mean() < 4.0, name
    others = [np.asarray(Image.open(out / f"a.{s}.png"), np.float32) for s in ("png", "tiff")]
    assert np.abs(others[0] - others[1]).mean() > 10.0


def test_summary_has_one_row_per_photo(folder_run):
    src, out, _ = folder_run
    with open(out / photo_folder.SUMMARY_NAME, newline="") as f:
        assert tuple(next(csv.reader(f))) == photo_folder.COLUMNS
    rows = {row["photo"]: row for row in photo_folder.read_summary(out / photo_folder.SUMMARY_NAME)}
    assert sorted(rows) == sorted(str(src / n) for n in ("a.jpg", "a.png", "a.tiff", "bad.jpg"))
    for name in ("a.jpg", "a.png", "a.tiff"):
        row = rows[str(src / name)]
        assert row["status"] == "completed" and row["error"] == ""
        assert (row["output"], row["side_by_side"]) == (f"{name}.png", f"{name}_side.png")
        assert row["faces_found"] == row["faces_completed"] == "1" and row["faces_masked"] == "0"
        assert row["region_kind"] == "box" and row["segmenter"] == "box"
        assert int(row["region_pixels"]) > 1000 and float(row["seconds"]) > 0
    bad = rows[str(src / "bad.jpg")]
    assert bad["status"] == "failed" and "not a readable image" in bad["error"]
    assert bad["output"] == bad["side_by_side"] == "" and bad["faces_found"] == "0"


def test_per_face_table_has_the_detectors_box_for_each_face(folder_run):
    """One row per face found, its box and score the detector's; none for the unreadable photo."""
    src, out, _ = folder_run
    with open(out / photo_folder.FACES_NAME, newline="") as f:
        assert tuple(next(csv.reader(f))) == photo_folder.FACE_COLUMNS
    faces = photo_folder.read_summary(out / photo_folder.FACES_NAME)
    summary = photo_folder.read_summary(out / photo_folder.SUMMARY_NAME)
    summary = {row["photo"]: row for row in summary}
    photos = sorted(str(src / n) for n in ("a.jpg", "a.png", "a.tiff"))
    assert sorted(f["photo"] for f in faces) == photos
    detector = detection.Detector()
    for face in faces:
        found = detector.detect(photo.load_photo(face["photo"]))[0]  # each photo: one face
        box = [float(face[k]) for k in ("x0", "y0", "x1", "y1")]
        assert box == pytest.approx(found.box, abs=0.051)  # rounded to 0.1
        assert float(face["confidence"]) == pytest.approx(found.confidence, abs=0.0006)
        assert face["face"] == "0" and (face["segmenter"], face["method"]) == ("box", "box")
        assert face["mask_share"] == "" and face["completed"] == "1"  # no segmenter with the box
        assert face["region_pixels"] == summary[face["photo"]]["region_pixels"]


def test_one_unreadable_photo_fails_the_run(folder_run):
    _, out, run = folder_run
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr and "photos: 100%" in run.stderr  # the progress bar
    assert "failed (1): " in run.stdout and "bad.jpg" in run.stdout
    summary, faces = out / photo_folder.SUMMARY_NAME, out / photo_folder.FACES_NAME
    last = (
        f"4 photos into {out}: completed 3, no masked face 0, no face found 0, failed 1;"
        f" summary: {summary}; per face: {faces}"
    )
    assert run.stdout.splitlines()[-1] == last


def test_output_folders_inside_the_input_are_not_read_back(folder_run, tmp_path):
    src, out, _ = folder_run
    photos = [src / n for n in ("a.jpg", "a.png", "a.tiff", "bad.jpg")]
    assert photo_folder.list_photos(src, out) == photos  # a rerun into the same folder
    assert photo_folder.list_photos(src, src / "new") == photos  # an earlier run's folder
    assert photo_folder.list_photos(src, exclude=[src / "a.png"]) == [
        p for p in photos if p.name != "a.png"
    ]
    # A folder whose CSV merely has the same name is still searched.
    (tmp_path / "album").mkdir()
    (tmp_path / "album" / photo_folder.SUMMARY_NAME).write_text("name,date\n")
    Image.new("RGB", (40, 40)).save(tmp_path / "album" / "x.png")
    assert photo_folder.list_photos(tmp_path) == [tmp_path / "album" / "x.png"]


def test_results_never_overwrite_inputs(three_faces, tmp_path):
    """A photo in the output folder whose name is another photo's result stays as it is."""
    Image.fromarray(three_faces[0]).save(tmp_path / "a.jpg")
    (tmp_path / "a.jpg.png").write_bytes(b"a user's own file")
    photos = [tmp_path / "a.jpg", tmp_path / "a.jpg.png"]
    no_model = None  # both photos are refused before any completion
    rows = list(photo_folder.complete_photos(no_model, photos, tmp_path, tmp_path))
    assert rows[0].status == "failed" and "a.jpg.png is an input photo" in rows[0].error
    assert rows[1].status == "failed" and "not a readable image" in rows[1].error
    assert (tmp_path / "a.jpg.png").read_bytes() == b"a user's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "a.jpg.png"]


@pytest.mark.parametrize(
    "output, message",
    [
        ("a.png", "is a file, not a folder"),
        ("a.png/sub", "a.png is a file"),
        (".", "is the input folder"),
        ("..", "holds the input folder"),
    ],
)
def test_unusable_output_is_one_line_before_any_work(output, message, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (64, 64)).save(src / "a.png")
    run = script(f"--input={src}", f"--output={src / output}", "--checkpoint=/no/such/model")
    assert run.returncode == 2 and message in one_error_line(run)  # before loading the model
    assert sorted(p.name for p in src.iterdir()) == ["a.png"]


def test_read_only_output_is_one_line(tmp_path, monkeypatch):
    Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
    run = script(
        f"--input={tmp_path / 'a.png'}", f"--output={tmp_path / 'out'}", mock_read_only=True
    )
    assert run.returncode == 2 and "is not writable (Permission denied)" in one_error_line(run)
    denied = PermissionError(13, "Permission denied")

    def refuse(*args, **kwargs):
        raise denied

    monkeypatch.setattr(photo_folder.tempfile, "mkstemp", refuse)
    with pytest.raises(photo.PhotoError, match="not writable"):
        photo_folder.check_output_dir(tmp_path / "out")


def test_tables_are_replaced_whole_or_not_at_all(tmp_path):
    face = photo_folder.FaceRow("a.jpg", 0, 1.0, 2.0, 3.0, 4.0, 0.95, "box", "box", "", 5, 1)
    first = photo_folder.write_tables(tmp_path, [photo_folder.SummaryRow("a.jpg", faces=[face])])
    before = [path.read_bytes() for path in first]

    def rows_then_crash():
        yield photo_folder.SummaryRow("b.jpg", status=photo_folder.COMPLETED)
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError):
        photo_folder.write_tables(tmp_path, rows_then_crash())
    assert [path.read_bytes() for path in first] == before
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([photo_folder.SUMMARY_NAME, photo_folder.FACES_NAME])
    assert [r["photo"] for r in photo_folder.read_summary(first[0])] == ["a.jpg"]
    assert [r["photo"] for r in photo_folder.read_summary(first[1])] == ["a.jpg"]


class _TwoFaces:
    """A completer that finds two faces on every photo: one masked and filled, one without a mask."""

    def complete(self, rgb, region, user_mask):
        changed = np.zeros(rgb.shape[:2], bool)
        changed[20:40, 20:40] = True
        nowhere = np.full((5, 2), np.nan)
        faces = [
            photo.FaceResult((10.04, 20.06, 110.0, 140.56), 0.98771, nowhere, np.eye(2, 3), "net",
                             changed, filled=400, mask_share=0.31234,
                             detail=dict(donor="donor.jpg", distance=0.4, gain=0.9)),
            photo.FaceResult((150.0, 30.0, 190.0, 80.0), 0.7, nowhere, np.eye(2, 3), "no_mask",
                             changed, filled=0, mask_share=0.0123),
        ]  # fmt: skip
        return photo.PhotoResult("ok", rgb, changed, faces)


def test_per_face_table_follows_the_summary_through_failures_interrupts_and_reruns(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name in ("a.png", "c.png", "d.png"):
        Image.new("RGB", (200, 160), (90, 120, 150)).save(src / name)
    (src / "b.jpg").write_bytes(b"not an image")
    photos = photo_folder.list_photos(src)
    run = photo_folder.complete_photos(_TwoFaces(), photos, src, out)
    rows = [next(run) for _ in range(3)]  # a.png, b.jpg, c.png; then Ctrl-C (as complete.py)
    rows.append(photo_folder.SummaryRow(str(src / "d.png"), status=photo_folder.INTERRUPTED))
    summary, faces = photo_folder.write_tables(out, rows)
    table = photo_folder.read_summary(faces)
    expected = [
        [
            "0",
            "10.0",
            "20.1",
            "110.0",
            "140.6",
            "0.988",
            "net",
            "net",
            "0.312",
            "400",
            "1",
            "donor.jpg",
        ],
        ["1", "150.0", "30.0", "190.0", "80.0", "0.7", "net", "no_mask", "0.012", "0", "0", ""],
    ]
    for name in ("a.png", "c.png"):
        mine = [r for r in table if r["photo"] == str(src / name)]
        assert [[r[c] for c in photo_folder.FACE_COLUMNS[1:]] for r in mine] == expected
    assert {r["photo"] for r in table} == {str(src / "a.png"), str(src / "c.png")}
    for row in photo_folder.read_summary(summary):  # the two tables tell one story
        mine = [r for r in table if r["photo"] == row["photo"]]
        assert int(row["faces_found"]) == len(mine)
        assert int(row["faces_completed"]) == sum(r["completed"] == "1" for r in mine)
        assert int(row["faces_masked"]) == sum(r["method"] == "net" for r in mine)
    # A rerun into the same folder merges: a.png done again (now without a face) replaces its
    # rows, the other photos' rows stay, in their order.
    rerun = [photo_folder.SummaryRow(str(src / "a.png"), status=photo_folder.NO_FACE)]
    summary, faces = photo_folder.write_tables(out, rerun)
    after = photo_folder.read_summary(summary)
    assert [r["photo"] for r in after] == [
        str(src / n) for n in ("b.jpg", "c.png", "d.png", "a.png")
    ]
    assert after[-1]["status"] == photo_folder.NO_FACE
    assert {r["photo"] for r in photo_folder.read_summary(faces)} == {str(src / "c.png")}
    # A table of other columns (another version's) is replaced, not merged.
    summary.write_text("photo,something_else\nold.jpg,1\n")
    summary, faces = photo_folder.write_tables(out, rerun)
    assert [r["photo"] for r in photo_folder.read_summary(summary)] == [str(src / "a.png")]


def test_the_exit_status_says_what_happened():
    counts = dict.fromkeys(photo_folder.STATUSES, 0)
    assert photo_folder.exit_status({**counts, "completed": 4}) == 0
    assert photo_folder.exit_status({**counts, "completed": 3, "no_masked_face": 1}) == 3
    assert photo_folder.exit_status({**counts, "completed": 3, "no_face": 1}) == 3
    assert photo_folder.exit_status({**counts, "no_face": 2, "failed": 1}) == 1
    assert photo_folder.exit_status({**counts, "completed": 1}, interrupted=True) == 130


@pytest.mark.parametrize("value", ["0", "-0.5", "1.5"])
def test_a_detection_threshold_outside_0_1_is_one_line(value, tmp_path):
    Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
    run = script(f"--input={tmp_path / 'a.png'}", f"--output={tmp_path / 'out'}",
                 f"--min_confidence={value}", "--checkpoint=/no/such/model")  # fmt: skip
    assert run.returncode == 2 and "--min_confidence must be in (0, 1]" in one_error_line(run)


def test_the_detection_threshold_reaches_the_detector(three_faces, tmp_path):
    """The same face is found at the default threshold and not at 1.0 (MTCNN scores under 1)."""
    Image.fromarray(three_faces[0]).save(tmp_path / "a.png")
    rows = {}
    for threshold in ("0.9", "1.0"):
        out = tmp_path / f"out{threshold}"
        run = script(f"--input={tmp_path / 'a.png'}", f"--output={out}",
                     f"--min_confidence={threshold}")  # fmt: skip
        assert run.returncode == 3, run.stderr[-2000:]  # nothing completed: the face wears no mask
        rows[threshold] = photo_folder.read_summary(out / photo_folder.SUMMARY_NAME)[0]
        last = run.stdout.splitlines()[-1]
    assert rows["0.9"]["status"] == "no_masked_face" and rows["1.0"]["status"] == "no_face"
    assert "no face found (1) (the detector doubts faces behind a mask: try" in run.stdout
    assert last.startswith("1 photos into") and "no face found 1" in last

"""Tests of glcic_jax.completion.photo and experiments/complete.py on synthetic masked photos."""

import os
import pathlib
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from glcic_jax import images
from glcic_jax.completion import inference, photo, photo_folder, photo_views
from glcic_jax.face_masks import overlay
from glcic_jax.faces import align, detection

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Measured: the mask-mode region against the pasted mask's alpha on these
# photos gave IoU 0.82..0.85 (cf. test_segment); the box covers ~0.7.
MIN_MASK_IOU = 0.7
# The shipped segmenter on these three photos (surgical masks, the filled
# region, dilated): IoU 0.83..0.90 and remnant 0.0%..0.12% measured; the
# region is dilated on purpose, so IoU sits below the segment's own.
MIN_NET_IOU = 0.75
MAX_NET_REMNANT = 0.01


@pytest.fixture(scope="module")
def detector():
    return detection.Detector()


def masked_photo(face_path, detector, seed=0, size=(400, 300), scale=1.6, at=(90, 40)):
    """A face pasted into a larger non-square gradient canvas, then a face mask on it.

    Returns:
      (masked RGB uint8 (H, W, 3), alpha float32 (H, W) of the pasted mask).
    """
    width, height = size
    rgb = np.asarray(Image.open(face_path).convert("RGB"))
    rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:height, 0:width]
    canvas = np.stack([60 + 120 * xx / width, 90 + 60 * yy / height, 150 - 80 * xx / width], -1)
    canvas = canvas.astype(np.uint8)
    h, w = min(rgb.shape[0], height - at[1]), min(rgb.shape[1], width - at[0])
    canvas[at[1] : at[1] + h, at[0] : at[0] + w] = rgb[:h, :w]
    face = detector.detect(canvas)[0]
    masked, alpha, _ = overlay.paste_on_photo(canvas, face, np.random.default_rng(seed), "surgical")
    return masked, alpha


@pytest.fixture(scope="module")
def photos(faces_dir, detector):
    paths = sorted((faces_dir / "test").glob("*.jpg"))[:3]
    return [masked_photo(p, detector, seed=i) for i, p in enumerate(paths)]


@pytest.fixture(scope="module")
def completer(tiny_runs, detector):
    model = inference.Completer.from_workdir(tiny_runs["mouth"], batch_size=1)
    return photo.PhotoCompleter(model, detector)


def check_only_region_changed(original, result):
    assert result.completed.shape == original.shape and result.completed.dtype == np.uint8
    outside = ~result.region
    np.testing.assert_array_equal(result.completed[outside], original[outside])
    assert result.region.any()


def iou(a, b) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_box_mode_fills_the_mouth_box_only(photos, completer):
    masked, alpha = photos[0]
    result = completer.complete(masked, "box")
    assert result.status == "ok" and len(result.faces) == 1
    check_only_region_changed(masked, result)
    info = result.faces[0]
    assert info.method == "box" and info.affine.shape == (2, 3)
    # The photo region is the mouth box mapped back through the face's affine.
    x0, y0, x1, y1 = align.MOUTH_BOX
    corners = align.apply_affine(cv2.invertAffineTransform(info.affine), [(x0, y0), (x1, y1)])
    ys, xs = np.nonzero(result.region)
    assert abs(xs.min() - corners[0, 0]) < 2 and abs(ys.max() - corners[1, 1]) < 2
    assert iou(result.region, alpha > 0.5) > 0.5
    assert (result.completed[result.region] != masked[result.region]).mean() > 0.5


def test_grabcut_mask_mode_covers_the_pasted_mask(photos, completer):
    grabcut = photo.PhotoCompleter(completer.completer, completer.detector, segmenter="grabcut")
    for masked, alpha in photos:
        result = grabcut.complete(masked, "mask")
        check_only_region_changed(masked, result)
        assert result.faces[0].method == "mask" and result.faces[0].segmenter == "grabcut"
        assert iou(result.region, alpha > 0.5) >= MIN_MASK_IOU


def test_net_mask_mode_fills_the_whole_pasted_mask(photos, completer):
    for masked, alpha in photos:
        result = completer.complete(masked)  # region "mask", the shipped segmenter
        check_only_region_changed(masked, result)
        face = result.faces[0]
        assert face.method == "net" and face.masked and face.segmenter == "net"
        truth = alpha > 0.5
        assert (truth & ~result.region).sum() <= MAX_NET_REMNANT * truth.sum()
        assert iou(result.region, truth) >= MIN_NET_IOU


def test_face_without_a_mask_is_left_untouched(faces_dir, detector, completer):
    path = sorted((faces_dir / "test").glob("*.jpg"))[5]
    rgb = np.asarray(Image.open(path).convert("RGB"))
    rgb = cv2.resize(rgb, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
    result = completer.complete(rgb)
    assert result.status == "ok" and len(result.faces) == 1
    assert result.faces[0].method == "no_mask" and not result.faces[0].masked
    assert result.faces[0].filled == 0 and not result.region.any()
    np.testing.assert_array_equal(result.completed, rgb)


def test_file_mode_in_photo_pixels_never_leaves_the_mask(photos, completer):
    masked, alpha = photos[0]
    user = alpha > 0.5
    result = completer.complete(masked, "file", user)
    check_only_region_changed(masked, result)
    assert not (result.region & ~user).any()
    assert iou(result.region, user) > 0.9


def test_file_mode_in_aligned_pixels(photos, completer, tmp_path):
    masked, _ = photos[1]
    aligned = np.zeros((256, 256), np.uint8)
    aligned[150:210, 80:176] = 255
    Image.fromarray(aligned).save(tmp_path / "m.png")
    user = photo.load_user_mask(tmp_path / "m.png")
    result = completer.complete(masked, "file", user)
    check_only_region_changed(masked, result)
    np.testing.assert_array_equal(result.faces[0].region, aligned > 0)
    with pytest.raises(photo.PhotoError, match="photo's size"):
        completer.complete(masked, "file", np.ones((10, 20), bool))


def test_no_postprocess_and_no_face(photos, completer):
    masked, _ = photos[2]
    result = photo.PhotoCompleter(completer.completer, completer.detector, postprocess=False)
    check_only_region_changed(masked, result.complete(masked, "box"))
    yy, xx = np.mgrid[0:240, 0:320]
    gradient = np.stack([xx % 256, yy, np.full_like(xx, 90)], -1).astype(np.uint8)
    empty = completer.complete(gradient, "mask")
    assert empty.status == "no_face" and empty.faces == [] and not empty.region.any()
    np.testing.assert_array_equal(empty.completed, gradient)
    side = photo_views.side_by_side(gradient, empty)
    assert side.shape == (240, 3 * 320 + 8, 3)


def test_large_photo_keeps_its_size_and_pixels(faces_dir, detector, completer):
    path = sorted((faces_dir / "test").glob("*.jpg"))[3]
    masked, _ = masked_photo(path, detector, size=(2400, 1800), scale=8.0, at=(700, 300))
    result = completer.complete(masked, "box")
    check_only_region_changed(masked, result)
    side = photo_views.side_by_side(masked, result)
    assert side.shape[0] == 1024


def test_load_photo_applies_exif_and_refuses_bombs(tmp_path):
    image = Image.fromarray(np.zeros((20, 40, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view.
    image.save(tmp_path / "r.jpg", exif=exif)
    assert photo.load_photo(tmp_path / "r.jpg").shape == (40, 20, 3)
    with pytest.raises(photo.PhotoError, match="pixels"):
        photo.load_photo(tmp_path / "r.jpg", max_pixels=100)
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(photo.PhotoError, match="not a readable"):
        photo.load_photo(tmp_path / "bad.jpg")
    with pytest.raises(photo.PhotoError, match="mask file"):
        photo.load_user_mask(tmp_path / "bad.jpg")


def test_load_photo_takes_90_megapixels_under_the_limit(tmp_path):
    """Pillow warns from 89.5 million pixels; the photo limit (100 million) decides alone."""
    Image.new("1", (10000, 9000)).save(tmp_path / "big.png")  # 11 kB, 90 megapixels
    assert photo.load_photo(tmp_path / "big.png").shape == (9000, 10000, 3)
    with pytest.raises(photo.PhotoError, match=r"big.png: more than 80,000,000 pixels, refused"):
        photo.load_photo(tmp_path / "big.png", max_pixels=80_000_000)
    # Above Pillow's hard limit (twice its warning) the message names that limit.
    Image.new("1", (15000, 12000)).save(tmp_path / "huge.png")
    hard = 2 * Image.MAX_IMAGE_PIXELS
    assert images.pixel_limit(500_000_000) == hard
    with pytest.raises(photo.PhotoError, match=f"more than {hard:,} pixels"):
        photo.load_photo(tmp_path / "huge.png", max_pixels=500_000_000)


def test_load_photo_says_what_is_wrong_in_one_line(tmp_path):
    with pytest.raises(photo.PhotoError, match="gone.jpg: no such file"):
        photo.load_photo(tmp_path / "gone.jpg")
    (tmp_path / "folder.jpg").mkdir()
    with pytest.raises(photo.PhotoError, match="folder.jpg: not a regular file"):
        photo.load_photo(tmp_path / "folder.jpg")


def script(*args):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "complete.py"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def folder_run(photos, tiny_runs, tmp_path_factory):
    """The script with its defaults (the worn mask, the net) on two masked photos and a plain one."""
    src = tmp_path_factory.mktemp("folder") / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(photos[0][0]).save(src / "a.png")
    Image.fromarray(photos[1][0]).save(src / "sub" / "b.jpg", quality=95)
    yy, xx = np.mgrid[0:200, 0:300]
    Image.fromarray(np.stack([xx % 256, yy, xx * 0 + 90], -1).astype(np.uint8)).save(
        src / "plain.png"
    )
    out = src.parent / "out"
    run = script(f"--checkpoint={tiny_runs['mouth']}", f"--input={src}", f"--output={out}")
    return src, out, run


def test_complete_script_folder(folder_run):
    src, out, run = folder_run
    assert run.returncode == 3, run.stderr  # nothing failed, one photo had nothing to complete
    lines = run.stdout.splitlines()
    assert f"no face found: {src / 'plain.png'}" in lines  # as it happens
    said = [line for line in lines if line.startswith("no face found (1) (")]
    assert len(said) == 1 and said[0].endswith(f": {src / 'plain.png'}")  # with the hint
    summary, faces = out / "completion_summary.csv", out / "completion_faces.csv"
    assert lines[-1] == (
        f"3 photos into {out}: completed 2, no masked face 0, no face found 1, failed 0;"
        f" summary: {summary}; per face: {faces}"
    )
    for name in ("a.png", "sub/b.jpg", "plain.png"):
        completed = Image.open(out / f"{name}.png")
        assert completed.size == Image.open(src / name).size
        assert (out / f"{name}_side.png").exists()


def check_tables_agree(out) -> list[dict]:
    """Per photo of the summary: face rows = faces found, completed and masked ones likewise."""
    faces = photo_folder.read_summary(out / photo_folder.FACES_NAME)
    summary = photo_folder.read_summary(out / photo_folder.SUMMARY_NAME)
    assert {f["photo"] for f in faces} <= {row["photo"] for row in summary}
    for row in summary:
        mine = [f for f in faces if f["photo"] == row["photo"]]
        assert [f["face"] for f in mine] == [str(i) for i in range(int(row["faces_found"]))]
        assert sum(f["completed"] == "1" for f in mine) == int(row["faces_completed"])
        assert sum(f["method"] == "net" for f in mine) == int(row["faces_masked"])
        drawn = [f["segmenter"] for f in mine if f["completed"] == "1"]
        assert "+".join(dict.fromkeys(drawn)) == row["segmenter"]
    return faces


def test_per_face_table_of_a_known_masked_face(folder_run, photos, detector):
    src, out, _ = folder_run
    faces = check_tables_agree(out)
    rows = [f for f in faces if f["photo"] == str(src / "a.png")]
    found = detector.detect(photos[0][0])[0]  # a.png holds these very pixels: one face
    assert len(rows) == 1 and rows[0]["face"] == "0"
    box = [float(rows[0][k]) for k in ("x0", "y0", "x1", "y1")]
    assert box == pytest.approx(found.box, abs=0.051)  # rounded to 0.1
    assert float(rows[0]["confidence"]) == pytest.approx(found.confidence, abs=0.0006)
    assert (rows[0]["segmenter"], rows[0]["method"], rows[0]["completed"]) == ("net", "net", "1")
    assert float(rows[0]["mask_share"]) > 0.1 and int(rows[0]["region_pixels"]) > 1000
    assert [f["method"] for f in faces if f["photo"] == str(src / "sub" / "b.jpg")] == ["net"]
    assert not [f for f in faces if f["photo"] == str(src / "plain.png")]  # no face, no row


def test_a_rerun_replaces_its_photos_rows_and_keeps_the_others(folder_run, tiny_runs, tmp_path):
    """Into the same folder, one photo again with another region: its rows replaced, the rest kept."""
    src, first, _ = folder_run
    out = tmp_path / "out"
    shutil.copytree(first, out)
    before = photo_folder.read_summary(out / photo_folder.FACES_NAME)
    run = script(f"--checkpoint={tiny_runs['mouth']}", f"--input={src / 'sub'}", f"--output={out}",
                 "--region=box")  # fmt: skip
    assert run.returncode == 0, run.stderr
    faces = check_tables_agree(out)
    redone = str(src / "sub" / "b.jpg")
    assert [f for f in faces if f["photo"] != redone] == [f for f in before if f["photo"] != redone]
    mine = [f for f in faces if f["photo"] == redone]
    assert [(f["method"], f["mask_share"], f["completed"]) for f in mine] == [("box", "", "1")]
    summary = photo_folder.read_summary(out / photo_folder.SUMMARY_NAME)
    assert sorted(row["photo"] for row in summary) == sorted(
        str(src / name) for name in ("a.png", "sub/b.jpg", "plain.png")
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--input=/no/such/photo.jpg"], "input not found"),
        (["--checkpoint=/no/such/run"], "checkpoint not found"),
        (["--region=file", "--mask_file=/no/such.png"], "mask file"),
        (["--region=file"], "needs --mask_file"),
        ([], "cannot load a model"),  # /tmp has no checkpoints/
    ],
)
def test_complete_script_one_line_errors(args, message, photos, tmp_path):
    Image.fromarray(photos[0][0]).save(tmp_path / "a.png")
    base = ["--checkpoint=/tmp", f"--input={tmp_path / 'a.png'}", f"--output={tmp_path / 'o'}"]
    run = script(*base, *args)
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], run.stderr


class _Rescored:
    """A detector whose faces all get one confidence: the doubtful-detection rule's input."""

    def __init__(self, detector, confidence):
        self.detector, self.confidence = detector, confidence

    def detect(self, rgb):
        return [
            detection.Face(f.box, self.confidence, f.landmarks) for f in self.detector.detect(rgb)
        ]


def test_doubtful_detection_counts_only_with_a_mask(photos, faces_dir, detector, completer):
    doubtful = photo.PhotoCompleter(completer.completer, _Rescored(detector, 0.7))
    masked, _ = photos[0]
    result = doubtful.complete(masked)
    assert result.status == "ok" and [f.method for f in result.faces] == ["net"]
    assert result.faces[0].confidence == 0.7 and result.region.any()
    bare = np.asarray(Image.open(sorted((faces_dir / "test").glob("*.jpg"))[5]).convert("RGB"))
    result = doubtful.complete(bare)
    assert result.status == "no_face" and result.faces == []
    np.testing.assert_array_equal(result.completed, bare)
    # Below masked_min_confidence, or with another region, a doubtful face is not a face.
    for low, region in ((photo.PhotoCompleter(completer.completer, _Rescored(detector, 0.3)), "mask"),
                        (doubtful, "box")):  # fmt: skip
        assert low.complete(masked, region).status == "no_face"


def test_a_region_meeting_the_photos_edge_continues_as_its_mirror_on_the_frame():
    # The photo (100 x 100) sits at x 78..177, y 0..99 of the frame; the frame goes on below it,
    # where align.warp mirrors the photo, so a mask that meets the bottom edge shows there too.
    affine = np.array([[1.0, 0.0, 78.0], [0.0, 1.0, 0.0]])
    touching = np.zeros((100, 100), bool)
    touching[80:, 30:70] = True
    framed = photo.user_region(touching, affine, (100, 100))
    rows = np.nonzero(framed.any(axis=1))[0]
    assert rows.min() == 80 and 115 <= rows.max() <= 120  # the mirror image: rows 100..118
    assert not framed[:, :100].any() and not framed[:, 160:].any()
    short = np.zeros((100, 100), bool)
    short[60:80, 30:70] = True  # stops 20 px short of the edge: its mirror image stays context
    framed = photo.user_region(short, affine, (100, 100))
    assert np.nonzero(framed.any(axis=1))[0].max() == 79 and framed.sum() == short.sum()

"""Tests of glcic_jax.dataset.prepare and experiments/prepare_data.py.

Filters and outputs are checked with a fake detector on generated images
(no data needed); the real detector runs on a few of the shared LFW photos
copied to a temporary folder, and on whole shared sets under --runslow.
"""

import dataclasses
import json
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from glcic_jax.dataset import filters, prepare, review
from glcic_jax.faces import align, detection

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = REPO / "experiments" / "prepare_data.py"
# Noise images have no skin tones, so the occlusion filter is off for them.
SYNTHETIC = prepare.Settings(min_face=0, min_mouth_skin=0.0)


class FakeDetector:
    """A face whose five landmarks sit at fixed fractions of the image.

    The image's mean red level picks the case: > 200 no face, 150..200 two
    equal faces, otherwise one face.
    """

    UNIT = np.array([[0.4, 0.4], [0.6, 0.4], [0.5, 0.52], [0.42, 0.64], [0.58, 0.64]])

    def __init__(self, max_side=1024):
        del max_side

    def detect(self, rgb):
        h, w = rgb.shape[:2]
        red = rgb[..., 0].mean()
        face = detection.Face(
            box=(0.25 * w, 0.2 * h, 0.75 * w, 0.8 * h),
            confidence=0.99,
            landmarks=self.UNIT * np.array([w, h]),
        )
        if red > 200:
            return []
        if red > 150:
            return [face, detection.Face((0, 0, 0.5 * w, 0.6 * h), 0.99, face.landmarks)]
        return [face]


def _noise(path, seed, size=(300, 300), red_max=128, fmt=None):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 128, (12, 12, 3)).astype(np.uint8)
    small[..., 0] = np.minimum(small[..., 0], red_max)
    image = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
    image.save(path, fmt)
    return image


def _png_header(path, width, height):
    """A PNG that claims a huge size (the classic decompression bomb's header)."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


@pytest.fixture
def synthetic_source(tmp_path):
    """Ten distinct 'faces', a re-encoded duplicate, a face-less image, a crowd,
    a corrupt file, a truncated JPEG and a bomb header."""
    src = tmp_path / "raw"
    (src / "sub").mkdir(parents=True)
    for i in range(10):
        _noise(src / ("sub" if i % 2 else ".") / f"face{i:02d}.png", seed=i)
    _noise(src / "zz_copy_of_face00.jpg", seed=0)
    Image.new("RGB", (200, 200), (250, 250, 250)).save(src / "blank.png")
    Image.new("RGB", (200, 200), (180, 60, 60)).save(src / "crowd.png")
    (src / "corrupt.jpg").write_bytes(b"not an image at all")
    _noise(src / "whole.jpg", seed=99)
    (src / "truncated.jpg").write_bytes((src / "whole.jpg").read_bytes()[:400])
    (src / "whole.jpg").unlink()
    _png_header(src / "bomb.png", 40_000, 40_000)
    return src


def test_load_image_errors(tmp_path):
    (tmp_path / "text.jpg").write_text("hello")
    assert prepare.load_image(tmp_path / "text.jpg", 10**8) == (None, "corrupt")
    _png_header(tmp_path / "bomb.png", 40_000, 40_000)
    assert prepare.load_image(tmp_path / "bomb.png", 10**9) == (None, "decompression_bomb")
    _noise(tmp_path / "ok.png", 0, size=(100, 80))
    assert prepare.load_image(tmp_path / "ok.png", 5_000) == (None, "decompression_bomb")
    rgb, reason = prepare.load_image(tmp_path / "ok.png", 10**8)
    assert reason == "" and rgb.shape == (80, 100, 3) and rgb.dtype == np.uint8


def test_load_image_applies_exif_orientation(tmp_path):
    image = Image.new("RGB", (60, 30), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # Rotate 90 degrees clockwise to display.
    image.save(tmp_path / "rotated.jpg", exif=exif)
    rgb, _ = prepare.load_image(tmp_path / "rotated.jpg", 10**8)
    assert rgb.shape == (60, 30, 3)


def test_process_filters(tmp_path):
    detector = FakeDetector()
    _noise(tmp_path / "face.png", 1)
    kept = prepare.process(tmp_path / "face.png", "face.png", SYNTHETIC, detector)
    assert kept.reason == "" and kept.encoded.startswith(b"\x89PNG")
    small = prepare.process(tmp_path / "face.png", "f", prepare.Settings(min_face=200), detector)
    assert small.reason == "small_face"  # The fake face box is 150 px wide.
    Image.new("RGB", (100, 100), (250, 0, 0)).save(tmp_path / "blank.png")
    assert prepare.process(tmp_path / "blank.png", "b", prepare.Settings(), detector).reason == (
        "no_face"
    )

    class NoMouth(FakeDetector):
        UNIT = np.array([[0.4, 0.4], [0.6, 0.4], [0.5, 0.7], [0.42, 0.6], [0.58, 0.6]])

    reason = prepare.process(tmp_path / "face.png", "f", SYNTHETIC, NoMouth())
    assert reason.reason == "mouth_not_visible"

    class NearEdge(FakeDetector):
        UNIT = FakeDetector.UNIT + np.array([0.35, 0.0])

    edge = prepare.process(tmp_path / "face.png", "f", SYNTHETIC, NearEdge())
    assert edge.reason == "outside_frame" and edge.outside > 0.25


def test_process_drops_covered_mouths(tmp_path):
    skin = Image.new("RGB", (300, 300), (140, 100, 80))
    skin.save(tmp_path / "bare.png")
    covered = skin.copy()
    covered.paste((30, 30, 35), (60, 150, 240, 300))  # A black mask over the lower face.
    covered.save(tmp_path / "covered.png")
    settings = prepare.Settings(min_face=0)
    detector = FakeDetector()
    assert prepare.process(tmp_path / "bare.png", "b", settings, detector).reason == ""
    result = prepare.process(tmp_path / "covered.png", "c", settings, detector)
    assert result.reason == "mouth_occluded"
    off = prepare.Settings(min_face=0, min_mouth_skin=0.0)
    assert prepare.process(tmp_path / "covered.png", "c", off, detector).reason == ""


def test_build_outputs_manifest_and_summary(synthetic_source, tmp_path):
    settings = SYNTHETIC
    out = tmp_path / "out"
    summary = prepare.build(synthetic_source, out, settings, detector_factory=FakeDetector)
    counts = summary["dropped_counts"]
    assert counts == {
        "corrupt": 2,
        "decompression_bomb": 1,
        "no_face": 1,
        "multiple_faces": 1,
        "small_face": 0,
        "mouth_not_visible": 0,
        "mouth_occluded": 0,
        "outside_frame": 0,
        "near_duplicate": 1,
    }
    assert summary["dropped"]["near_duplicate"] == [
        {"source": "zz_copy_of_face00.jpg", "same_as": "face00.png"}
    ]
    assert (summary["kept"], summary["train"], summary["test"]) == (10, 8, 2)
    assert summary["mouth_landmarks_in_box"] == 1.0
    assert json.loads((out / "summary.json").read_text())["kept"] == 10

    rows = prepare.read_manifest(out)
    assert tuple(rows[0]) == prepare.MANIFEST_FIELDS
    assert sorted(r["split"] for r in rows) == ["test"] * 2 + ["train"] * 8
    assert {r["source"] for r in rows} == {
        *(f"face{i:02d}.png" for i in range(0, 10, 2)),
        *(f"sub/face{i:02d}.png" for i in range(1, 10, 2)),
    }
    for row in rows:
        image = Image.open(out / row["file"])
        assert image.size == (256, 256) and row["file"].startswith(row["split"] + "/")
        affine = np.array(row["affine"].split(), float).reshape(2, 3)
        source_size = Image.open(synthetic_source / row["source"]).size
        landmarks = FakeDetector.UNIT * np.array(source_size)
        expected = align.apply_affine(affine, landmarks)
        for name, point in zip(detection.LANDMARKS, expected):
            np.testing.assert_allclose(np.array(row[name].split(), float), point, atol=0.01)
        assert filters.in_box(expected[3:])
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["train", "test", "manifest.csv", "summary.json", "contact_sheet.png"]
    )
    assert Image.open(out / "contact_sheet.png").size == (8 * 128, 2 * 128)


def test_build_is_deterministic_and_refuses_to_overwrite(synthetic_source, tmp_path):
    settings = SYNTHETIC
    first, second = tmp_path / "a", tmp_path / "b"
    prepare.build(synthetic_source, first, settings, detector_factory=FakeDetector)
    prepare.build(synthetic_source, second, settings, detector_factory=FakeDetector, workers=2)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for rel in files:
        if rel.name != "summary.json":  # It names the output folder's source only.
            assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel

    with pytest.raises(prepare.PrepareError, match="not empty"):
        prepare.build(synthetic_source, first, settings, detector_factory=FakeDetector)
    before = (first / "manifest.csv").read_bytes()
    prepare.build(synthetic_source, first, settings, overwrite=True, detector_factory=FakeDetector)
    assert (first / "manifest.csv").read_bytes() == before
    (first / "notes.txt").write_text("mine")
    with pytest.raises(prepare.PrepareError, match="did not write"):
        prepare.build(
            synthetic_source, first, settings, overwrite=True, detector_factory=FakeDetector
        )
    with pytest.raises(prepare.PrepareError, match="inside the source"):
        prepare.build(synthetic_source, synthetic_source / "out", settings)


def test_sample_sources_spreads_evenly():
    items = list(range(10))
    assert prepare.sample_sources(items, 0) == items
    assert prepare.sample_sources(items, 10) == prepare.sample_sources(items, 99) == items
    assert prepare.sample_sources(items, 5) == [0, 2, 4, 6, 8]
    assert prepare.sample_sources(items, 3) == [0, 3, 6]


def test_build_max_images_prepares_a_fixed_sample(synthetic_source, tmp_path):
    settings = dataclasses.replace(SYNTHETIC, max_images=6)
    summary = prepare.build(
        synthetic_source, tmp_path / "out", settings, detector_factory=FakeDetector
    )
    found = prepare.list_sources(synthetic_source)
    sample = {p.relative_to(synthetic_source).as_posix() for p in prepare.sample_sources(found, 6)}
    assert (summary["found"], summary["inputs"], summary["settings"]["max_images"]) == (16, 6, 6)
    seen = {r["source"] for r in prepare.read_manifest(tmp_path / "out")}
    seen |= {d["source"] for drops in summary["dropped"].values() for d in drops}
    assert seen == sample


def test_split_depends_on_seed(synthetic_source, tmp_path):
    splits = []
    for seed in (0, 1):
        settings = prepare.Settings(min_face=0, min_mouth_skin=0.0, split_seed=seed)
        prepare.build(
            synthetic_source, tmp_path / str(seed), settings, detector_factory=FakeDetector
        )
        rows = prepare.read_manifest(tmp_path / str(seed))
        splits.append({r["source"] for r in rows if r["split"] == "test"})
    assert len(splits[0]) == len(splits[1]) == 2 and splits[0] != splits[1]


def _few_lfw(shared_data, dest, n):
    dest.mkdir()
    for path in sorted((shared_data / "faces" / "train").glob("*.jpg"))[:n]:
        shutil.copy(path, dest / path.name)
    return dest


def test_build_real_photos(shared_data, tmp_path):
    src = _few_lfw(shared_data, tmp_path / "raw", 12)
    summary = prepare.build(src, tmp_path / "out", prepare.Settings(min_face=0))
    assert summary["kept"] >= 10
    assert summary["mouth_landmarks_in_box"] == 1.0
    rows = prepare.read_manifest(tmp_path / "out")
    check = review.redetect_in_box(tmp_path / "out", rows, 256, workers=2)
    assert check["fraction"] >= 0.95, check
    # The study's 128 px rule drops LFW's ~100 px faces.
    summary = prepare.build(src, tmp_path / "strict", prepare.Settings())
    assert summary["dropped_counts"]["small_face"] >= 10


def test_build_portraits_with_default_settings(shared_data, tmp_path):
    """Uncropped, tilted portraits: LFW faces scaled 3x, rotated, placed in a big photo."""
    src = tmp_path / "portraits"
    src.mkdir()
    rng = np.random.default_rng(0)
    paths = sorted((shared_data / "faces" / "test").glob("*.jpg"))[:3]
    for i, path in enumerate(paths):
        face = Image.open(path).convert("RGB").resize((450, 450), Image.Resampling.LANCZOS)
        face = face.rotate((-15, 0, 20)[i], Image.Resampling.BICUBIC, fillcolor=(90, 110, 130))
        photo = Image.new("RGB", (1200, 900), (90, 110, 130))
        photo.paste(face, (int(rng.integers(0, 700)), int(rng.integers(0, 400))))
        photo.save(src / f"portrait{i}.jpg", quality=92)
    out = tmp_path / "out"
    summary = prepare.build(src, out, prepare.Settings())
    assert summary["kept"] == 3, summary["dropped_counts"]
    rows = prepare.read_manifest(out)
    for row, tilt in zip(rows, (-15, 0, 20)):
        affine = np.array(row["affine"].split(), float).reshape(2, 3)
        angle = np.degrees(np.arctan2(affine[1, 0], affine[0, 0]))
        assert abs(angle - tilt) < 5  # Undoes the tilt; the rest is the person's own (< 3).
    assert review.redetect_in_box(out, rows, 256)["fraction"] == 1.0


def _run_script(*args, env=None):
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def test_script(shared_data, tmp_path):
    src = _few_lfw(shared_data, tmp_path / "raw", 6)
    out = tmp_path / "out"
    args = (f"--source={src}", f"--out={out}", "--min_face=0", "--workers=1")
    run = _run_script(*args)
    assert run.returncode == 0, run.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kept"] == len(prepare.read_manifest(out)) >= 5
    assert summary["redetected_mouth_in_box"]["fraction"] >= 0.95
    again = _run_script(*args)
    assert again.returncode != 0
    assert again.stderr.strip().splitlines()[-1].startswith("prepare_data: ")
    assert "not empty" in again.stderr and "Traceback" not in again.stderr


_NO_NETWORK = """
import socket
def _refuse(self, address, *args, **kwargs):
    raise OSError("network disabled by the test")
socket.socket.connect = _refuse
"""


def test_script_lfw_offline_fails_in_one_line(tmp_path):
    """Sockets are disabled in the child, so this never reaches the network."""
    pytest.importorskip("sklearn", reason="--source=lfw needs scikit-learn")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(_NO_NETWORK)
    run = _run_script(
        "--source=lfw",
        f"--out={tmp_path / 'out'}",
        f"--lfw_home={tmp_path / 'cache'}",
        "--lfw_retries=1",
        env={"PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{REPO}"},
    )
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    message = run.stderr.strip().splitlines()
    assert message[-1].startswith("prepare_data: could not fetch LFW"), run.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["faces", "celeba10k"])
def test_shared_sets_mouths_in_box(shared_data, tmp_path, dataset):
    """The issue's acceptance check (celeba10k takes several minutes on 2 cores)."""
    out = tmp_path / dataset
    summary = prepare.build(shared_data / dataset, out, prepare.Settings(min_face=0), workers=2)
    assert summary["kept"] >= 0.8 * summary["inputs"]
    check = review.redetect_in_box(out, prepare.read_manifest(out), 256, workers=2)
    assert summary["mouth_landmarks_in_box"] >= 0.95
    assert check["fraction"] >= 0.95, check

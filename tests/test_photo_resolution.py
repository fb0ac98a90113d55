"""Tests of glcic_jax.evaluation.photo_resolution: the metrics on hand-made arrays, and a 2-face run."""

import csv
import math
import os
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from glcic_jax.evaluation import figures, fine_detail
from glcic_jax.evaluation import photo_resolution as pr
from glcic_jax.faces import detection

ROOT = pathlib.Path(__file__).resolve().parents[1]


def texture(shape=(64, 64), seed=0, lo=60, hi=180) -> np.ndarray:
    """Random grey texture in lo..hi (room to add an offset), RGB uint8."""
    grey = np.random.default_rng(seed).integers(lo, hi + 1, size=shape).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def checkerboard(side=64, square=2) -> np.ndarray:
    yy, xx = np.mgrid[0:side, 0:side]
    grey = np.where((yy // square + xx // square) % 2 == 0, 230, 25).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def centre_mask(side=64, margin=12) -> np.ndarray:
    mask = np.zeros((side, side), bool)
    mask[margin : side - margin, margin : side - margin] = True
    return mask


def test_an_identical_fill_has_the_truths_detail():
    truth, mask = texture(), centre_mask()
    assert fine_detail.detail_ratio(truth, truth.copy(), mask) == 1.0


def test_a_blurred_checkerboard_has_little_of_the_sharp_ones_detail():
    truth, mask = checkerboard(square=4), centre_mask()
    blurred = cv2.GaussianBlur(truth, (0, 0), 2)
    fill = truth.copy()
    fill[mask] = blurred[mask]
    ratio = fine_detail.detail_ratio(truth, fill, mask)
    assert 0.0 <= ratio < 0.01
    # The other way round: far more detail than the truth.
    assert fine_detail.detail_ratio(fill, truth, mask) > 100


def test_the_erosion_keeps_the_masks_edge_out():
    truth, mask = texture(lo=100, hi=120), centre_mask()
    fill = truth.copy()
    fill[mask] += 60  # the same texture, brighter: a step at the mask's edge only
    assert fine_detail.detail_ratio(truth, fill, mask, erode=1) == pytest.approx(1.0, abs=1e-12)
    assert fine_detail.detail_ratio(truth, fill, mask) == pytest.approx(1.0, abs=1e-12)
    assert fine_detail.detail_ratio(truth, fill, mask, erode=0) > 1.2  # the step counts without it


def test_the_inner_mask_drops_pixels_near_the_edge_and_the_photos_border():
    mask = centre_mask()  # rows and columns 12..51
    inner = fine_detail.inner_mask(mask, 2)
    assert not inner[12, 30] and not inner[13, 30] and inner[14, 30]
    assert inner[49, 30] and not inner[50, 30] and not inner[51, 30]
    assert inner.sum() == (40 - 4) ** 2
    whole = np.ones((10, 10), bool)
    assert fine_detail.inner_mask(whole, 2).sum() == 6 * 6  # the border is an edge too
    assert (fine_detail.inner_mask(mask, 0) == mask).all()


def test_no_detail_ratio_without_a_reference():
    flat = np.full((32, 32, 3), 100, np.uint8)
    mask = centre_mask(32, 8)
    assert math.isnan(fine_detail.detail_ratio(flat, texture((32, 32)), mask))  # a flat truth
    thin = np.zeros((32, 32), bool)
    thin[10:13, 5:25] = True  # three rows: nothing left after eroding 2 px
    assert math.isnan(fine_detail.detail_ratio(texture((32, 32)), texture((32, 32), 1), thin))


def test_the_laplacian_variance_of_a_flat_or_linear_image_is_zero():
    mask = centre_mask()
    assert fine_detail.laplacian_variance(np.full((64, 64, 3), 77, np.uint8), mask) == 0.0
    ramp = np.repeat(np.tile(np.arange(64, dtype=np.uint8) * 3, (64, 1))[..., None], 3, axis=-1)
    assert fine_detail.laplacian_variance(ramp, fine_detail.inner_mask(mask)) == pytest.approx(
        0.0, abs=1e-12
    )
    assert math.isnan(fine_detail.laplacian_variance(ramp, np.zeros((64, 64), bool)))
    assert fine_detail.luminance(np.full((2, 2, 3), 90.0))[0, 0] == pytest.approx(90.0)


def test_mask_scores_measure_only_the_mask_and_the_whole_image_at_256():
    truth = texture((512, 512))
    mask = np.zeros((512, 512), bool)
    mask[300:400, 150:350] = True
    fill = truth.copy()
    fill[mask] = np.clip(truth[mask].astype(int) + 10, 0, 255).astype(np.uint8)
    scores = pr.mask_scores(truth, fill, mask)
    assert scores["psnr"] == pytest.approx(10 * math.log10(1 / (10 / 255) ** 2))
    assert scores["l1"] == pytest.approx(10 / 255)
    assert scores["detail"] == pytest.approx(1.0)
    assert 0 < scores["ssim"] < 1
    # Whole image at 256: a quarter of the pixels of a mask a tenth of the photo moved.
    assert scores["psnr256"] > scores["psnr"] + 9
    assert pr.whole_image_scores(truth, truth) == (math.inf, pytest.approx(1.0))


def rows_of(values: dict) -> list[dict]:
    """Hand-made `score` rows: {method: [value per face]} for every metric."""
    rows = []
    for method, per_face in values.items():
        for i, v in enumerate(per_face):
            row = dict(face=f"f{i}", method=method, status="net", remnant=0.0)
            row.update({m: v for m in pr.METRICS})
            rows.append(row)
    return rows


def test_the_report_pairs_methods_per_face():
    rows = rows_of(
        {
            "pipeline": [0.2, 0.4, 0.6],
            "pipeline_true_mask": [0.3, 0.5, 0.7],
            "telea_true_mask": [0.1, 0.1, 0.1],
        }
    )
    d = pr.paired_difference(rows, "pipeline", "telea_true_mask", "psnr")
    assert d["mean_diff"] == pytest.approx(0.3) and d["a_better"] == 3 and d["n"] == 3
    d = pr.paired_difference(rows, "pipeline", "telea_true_mask", "lpips")
    assert d["a_better"] == 0  # lower LPIPS is better
    text = pr.report(rows)
    assert "| pipeline (the region it finds) | 3 | 0.40 | 0.400 | 0.4000 | 0.400 / 0.400 |" in text
    assert "| pipeline | telea_true_mask | psnr | +0.300 [" in text
    assert "masked input" not in text  # a method without rows gets no line
    assert "only the faces it found masked" not in text  # it found all three
    rows[0]["status"] = "no_face"  # the pipeline missed face f0
    text = pr.report(rows)
    assert "| pipeline, only the faces it found masked | 2 | 0.50 | 0.500 |" in text
    assert "status of its largest face: net 2, no_face 1" in text


def test_picks_take_the_median_and_the_highest():
    values = [0.5, 0.1, 0.9, 0.3, float("nan"), 0.7, 0.2]
    chosen = pr.picks(values, 2)
    assert chosen["worst"] == [2, 4]  # NaN counts as the worst
    assert chosen["typical"] == [3, 0]  # sorted 0.1 0.2 0.3 0.5 0.7 0.9 nan: around the middle
    assert pr.picks([0.4], 3) == {"typical": [0], "worst": [0]}


def test_a_sheet_has_a_header_and_one_row_per_face_and_fits_its_size():
    side = 50
    tiles = [[texture((side, side), seed=i * 10 + j) for j in range(6)] for i in range(3)]
    image = figures.contact_sheet(tiles, [2, 0], pr.SHEET_COLUMNS)
    assert image.shape == (22 + 2 * side + 3, 6 * side + 5 * 3, 3)
    assert (image[22 : 22 + side, :side] == tiles[2][0]).all()
    data = figures.jpeg_bytes(image, max_bytes=6_000)
    assert len(data) <= 6_000 or len(figures.jpeg_bytes(image, quality=40)) == len(data)
    assert len(figures.jpeg_bytes(image)) > len(data)


def test_the_view_box_is_a_square_inside_the_photo():
    mask = np.zeros((512, 512), bool)
    mask[300:480, 140:380] = True
    face = detection.Face((120.0, 100.0, 400.0, 470.0), 0.99, np.zeros((5, 2)))
    pasted = pr.PastedPhoto("x", texture((512, 512)), texture((512, 512)), mask, face, "cloth")
    y0, y1, x0, x1 = pr.view_box(pasted)
    assert y1 - y0 == x1 - x0 and 0 <= y0 and y1 <= 512 and 0 <= x0 and x1 <= 512
    assert y0 <= 100 and y1 >= 480 and x0 <= 120 and x1 >= 400


def test_two_faces_end_to_end(shared_data, tmp_path):
    """The script on the first two held-out faces: every method scored, sheets written."""
    if not (shared_data / pr.FACES_FOLDER / "test" / "images").is_dir():
        pytest.skip(f"{shared_data / pr.FACES_FOLDER / 'test' / 'images'} not found")
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    done = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "eval_photo_resolution.py"),
         "--n=2", "--sheet_rows=1", f"--out={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp_path / "rows.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    methods = pr.METHODS + pr.REFINED_METHODS  # the shipped refiner's rows by default
    assert len(rows) == 2 * len(methods)
    by = {(r["face"], r["method"]): r for r in rows}
    for face in {r["face"] for r in rows}:
        pipe, telea = by[face, "pipeline"], by[face, "telea_true_mask"]
        given, masked = by[face, "pipeline_true_mask"], by[face, "masked_input"]
        for r in (pipe, telea, given, masked):
            assert all(math.isfinite(float(r[m])) for m in pr.METRICS), r
        assert float(telea["remnant"]) == 0.0 and float(masked["remnant"]) == 1.0
        assert float(given["remnant"]) == 0.0  # the pipeline fills all of a mask it is given
        refined = by[face, "pipeline_true_mask_refined"]
        assert all(math.isfinite(float(refined[m])) for m in pr.METRICS), refined
        assert float(refined["remnant"]) == 0.0
        for r in (pipe, given, telea, refined):
            assert float(r["psnr"]) > float(masked["psnr"])
            assert float(r["lpips"]) < float(masked["lpips"])
        for r in (pipe, given, telea):
            assert 0.0 < float(r["detail"]) < 1.0  # all three are smoother than the face
        assert float(refined["detail"]) > float(given["detail"])  # the fine stage adds detail
    assert "| pipeline | telea_true_mask | lpips |" in (tmp_path / "summary.md").read_text()
    for name in ("typical", "worst", "worst_found"):
        path = tmp_path / f"{name}.jpg"
        assert path.stat().st_size <= 150_000
        assert Image.open(path).size == (8 * 200 + 7 * 3, 22 + 200)

"""The segmenter's and the photo pipeline's summaries on hand-made per-face rows.

glcic_jax/segmenter/evaluation.py (per style / yaw tables, dilations,
detection and "called masked" rates, the held-out sources) and
glcic_jax/evaluation/photo_pipeline.py (pipeline against Telea, example
picks); every expected number is computed by hand from the rows written here.
"""

import json
import math
import types

import numpy as np
import pytest

from glcic_jax.evaluation import photo_pipeline
from glcic_jax.segmenter import evaluation as ms
from glcic_jax.segmenter.synthetic import face_sources


def test_mean_of_skips_non_finite_values():
    rows = [{"x": 1.0}, {"x": float("nan")}, {"x": 3.0}, {"x": float("inf")}]
    assert ms.mean_of(rows, "x") == 2.0
    assert math.isnan(ms.mean_of([{"x": float("nan")}], "x"))
    assert math.isnan(ms.mean_of([], "x"))


def test_group_means_has_all_first_then_the_groups_sorted():
    rows = [
        {"style": "b", "x": 1.0},
        {"style": "a", "x": 2.0},
        {"style": "b", "x": 5.0},
        {"style": "a", "x": float("nan")},
    ]
    table = ms.group_means(rows, "style", ["x"])
    assert list(table) == ["all", "a", "b"]
    assert table["all"] == {"x": pytest.approx(8 / 3), "n": 4}
    assert table["a"] == {"x": 2.0, "n": 2}  # the NaN row counts in n, not in the mean
    assert table["b"] == {"x": 3.0, "n": 2}


def row(kind, style, yaw, iou, detected, masked, share):
    out = dict(set=kind, style=style, yaw_bin=yaw, detected=detected, masked=masked)
    out |= {k: iou for k in ms.SEGMENTER_KEYS} | {"mask_share": share}
    out |= {"remnant_m0": iou / 10, "remnant_m2": iou / 20, "spill_m0": iou, "spill_m2": 2 * iou}
    return out


def test_segmentation_summary_per_set():
    rows = [
        row("augmented", "cloth", "frontal", 0.8, True, True, 0.3),
        row("augmented", "gas", "frontal", 0.6, False, True, 0.5),
        row("plain", "cloth", "slight", 0.9, True, False, 0.4),
        row("plain", "cloth", "turned", 0.5, True, True, 0.6),
        row("strapped", "N95", "frontal", 0.7, True, True, 0.6),
    ]
    rows[-1]["net_cord_remnant"] = 0.25
    summary = ms.segmentation_summary(rows, [0.0, 0.05, 0.2, 0.1], 0.1, [0.0, 2.0])
    assert list(summary) == [
        "augmented_by_style",
        "augmented_by_yaw_bin",
        "augmented_margins",
        "augmented_detected",
        "augmented_called_masked",
        "plain_by_style",
        "plain_by_yaw_bin",
        "plain_margins",
        "plain_detected",
        "plain_called_masked",
        "strapped_by_style",
        "strapped_by_yaw_bin",
        "strapped_margins",
        "strapped_detected",
        "strapped_called_masked",
        "unmasked_called_masked",
        "unmasked_share_quantiles",
        "masked_share_quantiles",
    ]
    by_style = summary["augmented_by_style"]
    assert list(by_style) == ["all", "cloth", "gas"]
    assert by_style["all"]["net_iou"] == pytest.approx(0.7) and by_style["all"]["n"] == 2
    assert by_style["gas"]["grabcut_spill"] == pytest.approx(0.6)
    assert summary["plain_by_yaw_bin"]["turned"] == {k: 0.5 for k in ms.SEGMENTER_KEYS} | {"n": 1}
    assert summary["plain_by_style"]["cloth"]["net_iou"] == pytest.approx(0.7)
    margins = summary["augmented_margins"]
    assert list(margins) == ["remnant_m0", "remnant_m2", "spill_m0", "spill_m2"]
    assert margins["remnant_m0"] == pytest.approx(0.07)
    assert margins["spill_m2"] == pytest.approx(1.4)
    assert summary["augmented_detected"] == 0.5 and summary["plain_detected"] == 1.0
    assert summary["augmented_called_masked"] == 1.0 and summary["plain_called_masked"] == 0.5
    assert summary["unmasked_called_masked"] == 0.5  # 0.2 and 0.1 reach min_share 0.1
    assert summary["strapped_by_style"]["N95"]["net_cord_remnant"] == 0.25
    # Linear quantiles of (0, 0.05, 0.1, 0.2) and of the masked (0.3, 0.4, 0.5, 0.6, 0.6).
    assert summary["unmasked_share_quantiles"] == pytest.approx([0.075, 0.17, 0.197, 0.2])
    assert summary["masked_share_quantiles"] == pytest.approx([0.3, 0.304, 0.34, 0.5])
    json.dumps(summary)  # summary.json takes it as it is


def sources(n):
    return [face_sources.SourceFace(f"/d/{i}.jpg", ((float(i), 0.0),) * 5) for i in range(n)]


def test_held_out_sources_reads_the_cache_and_shuffles_by_seed(tmp_path, monkeypatch):
    cache = tmp_path / "test_sources.json"
    face_sources.save_sources(sources(5), cache)

    def no_detection(paths):
        raise AssertionError("the cache exists: nothing to detect")

    monkeypatch.setattr(face_sources, "find_sources", no_detection)
    first = ms.held_out_sources(["/d/0.jpg"], cache, seed=3)
    assert sorted(s.path for s in first) == [f"/d/{i}.jpg" for i in range(5)]
    assert first == ms.held_out_sources([], cache, seed=3)
    assert [s.path for s in first] != [f"/d/{i}.jpg" for i in range(5)]


def test_held_out_sources_finds_and_caches_when_there_is_no_cache(tmp_path, monkeypatch):
    cache = tmp_path / "test_sources.json"
    found = []
    monkeypatch.setattr(
        face_sources, "find_sources", lambda paths: found.append(paths) or sources(2)
    )
    result = ms.held_out_sources(["/a.jpg", "/b.jpg"], cache, seed=0)
    assert found == [["/a.jpg", "/b.jpg"]]
    assert sorted(s.path for s in result) == ["/d/0.jpg", "/d/1.jpg"]
    assert face_sources.load_sources(cache) == sources(2)


def test_pipeline_summary_pairs_the_pipeline_with_telea():
    rows = [
        dict(pipeline_psnr=20.0, telea_psnr=18.0, pipeline_ssim=0.5, telea_ssim=0.4),
        dict(pipeline_psnr=22.0, telea_psnr=21.0, pipeline_ssim=0.7, telea_ssim=0.7),
        dict(pipeline_psnr=float("nan"), telea_psnr=15.0, pipeline_ssim=0.6, telea_ssim=0.3),
    ]
    for r, lpips in zip(rows, (0.2, 0.3, 0.1)):
        r |= dict(pipeline_lpips=lpips, telea_lpips=lpips + 0.1)
    summary = photo_pipeline.pipeline_summary(rows)
    assert list(summary) == ["pipeline_psnr", "pipeline_ssim", "pipeline_lpips"]
    psnr = summary["pipeline_psnr"]
    assert psnr["pipeline"] == 21.0  # the NaN face is skipped
    assert psnr["telea"] == 18.0
    assert psnr["difference"]["mean"] == 1.5  # (2 + 1) / 2
    assert (psnr["difference"]["n"], psnr["difference"]["n_dropped"]) == (2, 1)
    assert summary["pipeline_ssim"]["difference"]["mean"] == pytest.approx(0.4 / 3)
    assert summary["pipeline_lpips"]["difference"]["mean"] == pytest.approx(-0.1)


def test_example_picks_are_lfw_faces_around_the_median_and_the_lowest():
    paths = ["faces/a", "celeba10k/b", "faces/c", "faces/d", "faces/e", "faces/f"]
    faces = [types.SimpleNamespace(source=f"/data/{p}.jpg") for p in paths]
    values = [5.0, 0.0, 1.0, 3.0, 9.0, 7.0]  # the CelebA face, lowest, is never shown
    # LFW by value: 2 (1), 3 (3), 0 (5), 5 (7), 4 (9).
    assert photo_pipeline.example_picks(faces, values, 2) == {"typical": [3, 0], "worst": [2, 3]}
    assert photo_pipeline.example_picks(faces, values, 1) == {"typical": [0], "worst": [2]}


def test_region_scores_count_the_cords_left_unfilled():
    truth = np.zeros((10, 10), bool)
    truth[2:6, 2:6] = True
    cords = np.zeros((10, 10), bool)
    cords[8, 0:10] = True  # a 10 px cord, part of the truth
    truth |= cords
    filled = truth.copy()
    filled[8, 6:] = False  # 4 of its pixels left
    scores = ms.region_scores(truth, filled, truth, cords)
    assert scores["cord_remnant"] == pytest.approx(0.4)
    assert scores["remnant"] == pytest.approx(4 / 26)
    assert math.isnan(ms.region_scores(truth, filled, truth)["cord_remnant"])

"""Evaluation: the fixed evaluation set, paired comparisons, and evaluate.py/compare.py end to end."""

import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from glcic_jax.dataset import folders
from glcic_jax.evaluation import (
    comparison,
    evalset,
    metrics,
    paired,
    scoring,
    summaries,
    sweep,
    tables,
)
from glcic_jax.runs import CheckpointError

ROOT = pathlib.Path(__file__).resolve().parents[1]
NUM_IMAGES = 8


# ---------------------------------------------------------------------------
# Paired differences on synthetic numbers
# ---------------------------------------------------------------------------


def test_paired_difference_known_shift_and_direction():
    b = np.linspace(10.0, 20.0, 30)
    a = b + 2.0
    d = paired.paired_difference(a, b, "psnr_hole")  # higher is better
    assert d["mean_diff"] == pytest.approx(2.0)
    assert d["ci_low"] == pytest.approx(2.0) and d["ci_high"] == pytest.approx(2.0)
    assert (d["a_better"], d["b_better"], d["ties"], d["n"]) == (30, 0, 0, 30)
    assert d["p_value"] == pytest.approx(2 / 2**30)
    assert paired.verdict(d, "psnr_hole") == "a better"
    # The same numbers as an error (lower is better): b wins every image.
    d = paired.paired_difference(a, b, "l1_hole")
    assert (d["a_better"], d["b_better"]) == (0, 30)
    assert paired.verdict(d, "l1_hole") == "b better"


def test_paired_difference_drops_nan_pairs_and_counts_ties():
    a = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 6.0])
    b = np.array([0.0, 2.0, 3.0, np.inf, 4.0, 7.0])
    d = paired.paired_difference(a, b, "feature_distance")
    assert (d["n"], d["n_dropped"], d["ties"]) == (4, 2, 1)
    assert d["mean_diff"] == pytest.approx((1 + 0 + 1 - 1) / 4)
    assert d["ci_low"] <= d["mean_diff"] <= d["ci_high"]
    # feature_distance: lower is better, so a (larger) is better only where a < b.
    assert (d["a_better"], d["b_better"]) == (1, 2)
    none = paired.paired_difference([np.nan], [1.0], "psnr_hole")
    assert math.isnan(none["mean_diff"]) and none["n"] == 0 and none["p_value"] == 1.0


def test_noisy_difference_without_effect_is_not_a_verdict():
    rng = np.random.default_rng(0)
    b = rng.normal(15, 2, 200)
    a = b + rng.normal(0, 1, 200)  # no true difference
    d = paired.paired_difference(a, b, "psnr_hole")
    assert d["ci_low"] < 0 < d["ci_high"]
    assert paired.verdict(d, "psnr_hole") == "no clear difference"
    assert paired.verdict(d, "feature_matches") == "-"


def test_comparison_pairs_grow_without_changing_earlier_ones():
    assert paired.comparison_pairs(["random", "mouth"]) == [("mouth", "random")]
    three = paired.comparison_pairs(["random", "mouth", "control"])
    assert three == [("mouth", "random"), ("control", "random"), ("control", "mouth")]


def test_summary_row_and_csv_round_trip(tmp_path):
    per = {"psnr_hole": np.array([10.0, 12.0, 14.0, np.inf]), "l1_hole": np.array([0.1] * 4)}
    row = summaries.summary_row(per, step=5, method="telea")
    assert row["n_images"] == 4 and row["psnr_hole_n"] == 3
    assert row["psnr_hole_ci_low"] <= row["psnr_hole_mean"] == 12.0 <= row["psnr_hole_ci_high"]
    tables.write_csv(tmp_path / "s.csv", [row])
    (back,) = tables.read_csv(tmp_path / "s.csv")
    assert (back["step"], back["method"], back["psnr_hole_mean"]) == (5, "telea", 12.0)
    merged = tables.merge_rows(
        [dict(step=5, method="telea", v=1), dict(step=10, method="telea", v=2)],
        [dict(step=5, method="telea", v=3)],
        ("step", "method"),
    )
    assert [r["v"] for r in merged] == [2, 3]


# ---------------------------------------------------------------------------
# The evaluation set
# ---------------------------------------------------------------------------


def test_eval_holes_are_fixed_and_match_the_regimes():
    boxes, holes = evalset.eval_holes("mouth", 3, 64)
    assert holes.shape == (3, 64, 64) and holes.dtype == bool
    assert (holes == holes[0]).all()
    # The study's box (x 56, y 128, 144 x 96 on the 256 canvas) at 64 px.
    assert holes[0, 32:56, 14:50].all() and holes[0].sum() == 24 * 36
    b1, h1 = evalset.eval_holes("random", 20, 64)
    b2, h2 = evalset.eval_holes("random", 20, 64)
    np.testing.assert_array_equal(h1, h2)  # fixed by HOLE_SEED
    assert len({tuple(b) for b in b1}) > 1
    with pytest.raises(ValueError, match="unknown hole set"):
        evalset.eval_holes("eyes", 1, 64)


def test_build_eval_set_takes_the_first_test_images(faces_dir):
    es = evalset.build_eval_set(faces_dir, 32, "random", num_images=4)
    assert es.images.shape == (4, 32, 32, 3) and es.images.dtype == np.uint8
    assert es.holes.shape == (4, 32, 32) and es.boxes.shape == (4, 4)
    assert [pathlib.Path(f).name for f in es.files] == sorted(
        p.name for p in (faces_dir / "test").iterdir()
    )[:4]
    # Baselines and a perfect completion scored on it.
    base = scoring.run_baselines(es, np.full(3, 0.5))
    assert set(base) == set(scoring.BASELINE_METHODS)
    perfect = scoring.score(es, es.float_images())
    assert set(perfect) == set(metrics.METRIC_KEYS)
    assert np.all(perfect["l1_hole"] == 0) and np.all(np.isinf(perfect["psnr_hole"]))


# ---------------------------------------------------------------------------
# End to end on two tiny runs
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tiny_runs):
    """Two tiny runs (conftest), checkpoints at steps 5 and 10."""
    return tiny_runs


def script(name, *args):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, str(ROOT / "experiments" / name), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


def check_summary_rows(rows, methods, steps):
    assert {(r["step"], r["method"]) for r in rows} == {(s, m) for s in steps for m in methods}
    for r in rows:
        assert r["n_images"] == NUM_IMAGES
        for m in metrics.METRIC_KEYS:
            assert f"{m}_mean" in r and f"{m}_n" in r
            if r[f"{m}_n"] > 0:
                assert r[f"{m}_ci_low"] <= r[f"{m}_mean"] <= r[f"{m}_ci_high"]


def test_evaluate_script(runs, faces_dir):
    workdir = runs["mouth"]
    result = script(
        "evaluate.py",
        f"--workdir={workdir}",
        f"--data_dir={faces_dir}",
        "--mask=mouth",
        f"--num_images={NUM_IMAGES}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = workdir / "eval"
    rows = tables.read_csv(out / "metrics.csv")
    check_summary_rows(rows, ["mouth-trained", "mean", "telea", "ns"], [5, 10])
    per_image = tables.read_csv(out / "per_image.csv")
    assert len(per_image) == 2 * 4 * NUM_IMAGES
    for name in ["mouth_grid.png"] + [f"mouth_{m}.png" for m in metrics.REPORTED_METRICS]:
        assert (out / name).stat().st_size > 1000, name

    # A clear one-line error, no traceback (each start of the script costs
    # seconds, so the other errors are checked in-process below).
    result = script(
        "evaluate.py",
        f"--workdir={workdir}",
        f"--data_dir={faces_dir}",
        "--mask=mouth",
        "--steps=7",
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr == f"error: no checkpoint at step(s) [7] in {workdir}: have [5, 10]\n"


def test_missing_workdir_data_and_steps_raise_user_errors(runs, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        sweep.checkpoint_steps(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="no checkpoints in"):
        sweep.checkpoint_steps(tmp_path)
    with pytest.raises(folders.DataError, match="does not exist"):
        evalset.build_eval_set(tmp_path / "nope", 32, "mouth")
    assert comparison.common_steps(runs) == [5, 10]
    assert comparison.common_steps(runs, [10]) == [10]


def test_compare_script(runs, faces_dir, tmp_path):
    result = script(
        "compare.py",
        f"--random={runs['random']}",
        f"--mouth={runs['mouth']}",
        f"--data_dir={faces_dir}",
        f"--out={tmp_path}",
        f"--num_images={NUM_IMAGES}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    models = ["random-trained", "mouth-trained"]
    summary = tables.read_csv(tmp_path / "summary.csv")
    for hole_set in ("mouth", "random"):
        rows = [r for r in summary if r["hole_set"] == hole_set]
        check_summary_rows(rows, models + list(scoring.BASELINE_METHODS), [5, 10])
    diffs = tables.read_csv(tmp_path / "differences.csv")
    assert len(diffs) == 2 * 2 * len(metrics.METRIC_KEYS)  # hole sets x steps x metrics
    for d in diffs:
        assert (d["a"], d["b"]) == ("mouth-trained", "random-trained")
        if d["n"] > 0:
            assert d["ci_low"] <= d["mean_diff"] <= d["ci_high"]
            assert d["a_better"] + d["b_better"] + d["ties"] == d["n"]
            assert 0 < d["p_value"] <= 1
    report = (tmp_path / "report.md").read_text()
    for section in (
        "## Setup",
        "## Metrics",
        "## " + comparison.QUESTIONS["mouth"],
        "## " + comparison.QUESTIONS["random"],
        "### mouth-trained minus random-trained, per image, at step 10",
        f"the first {NUM_IMAGES} readable images",
        "| telea |",
        "| ns |",
    ):
        assert section in report, section
    for image in ("mouth_panel.png", "mouth_grid.png", "random_panel.png", "random_grid.png"):
        assert f"]({image})" in report
        assert (tmp_path / image).stat().st_size > 1000


def test_compare_script_three_model_folders(runs, faces_dir, tmp_path):
    """Exported model folders stand in for workdirs; a third model adds its two pairs."""
    from glcic_jax.completion import model_io

    folders = {}
    for label, run in (("random", runs["random"]), ("mouth", runs["mouth"]),
                       ("random_mouthsize", runs["random"])):  # fmt: skip
        folders[label] = tmp_path / "models" / label
        for step in (5, 10):
            model_io.export_checkpoint(run, step, folders[label] / model_io.step_file_name(step))
    out = tmp_path / "report"
    result = script(
        "compare.py",
        *(f"--{label}={folder}" for label, folder in folders.items()),
        f"--data_dir={faces_dir}",
        f"--out={out}",
        f"--num_images={NUM_IMAGES}",
        "--hole_sets=mouth",
        "--steps=10",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    diffs = tables.read_csv(out / "differences.csv")
    pairs = {(d["a"], d["b"]) for d in diffs}
    assert pairs == {
        ("mouth-trained", "random-trained"),
        ("random_mouthsize-trained", "random-trained"),
        ("random_mouthsize-trained", "mouth-trained"),
    }
    # The control here is the random run itself: identical completions, zero differences.
    same = [d for d in diffs if d["a"] == "random_mouthsize-trained" and d["b"] == "random-trained"]
    assert all(d["mean_diff"] == 0 for d in same if d["metric"] == "psnr_hole")
    assert "### random_mouthsize-trained minus mouth-trained" in (out / "report.md").read_text()

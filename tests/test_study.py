"""experiments/study.py end to end on the suite's tiny runs: seeds, populations, report, resume."""

import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from glcic_jax import runs
from glcic_jax.evaluation import seed_study, study_scores, tables

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _study(*args):
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "experiments" / "study.py"), *args],
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def study_runs(tiny_runs, tmp_path_factory):
    """Two seeds of three regimes from the two tiny runs (10 steps, at the end of their schedule).

    Seed 1 swaps the runs, so the seeds disagree: mouth - random changes sign between replicates.
    """
    root = tmp_path_factory.mktemp("study-runs")
    layout = {
        0: {"mouth": "mouth", "random": "random", "random_mouthsize": "random"},
        1: {"mouth": "random", "random": "mouth", "random_mouthsize": "mouth"},
    }
    for seed, regimes in layout.items():
        for regime, source in regimes.items():
            shutil.copytree(tiny_runs[source], root / f"seed{seed}" / regime)
    return root


def test_study_scores_two_populations_writes_the_report_and_reuses_its_scores(
    study_runs, faces_dir, shared_data, tmp_path
):
    out = tmp_path / "report"
    celeba = shared_data / "celeba10k"
    args = [
        f"--data_dir={faces_dir}",
        f"--populations=lfw={faces_dir},celeba={celeba}",
        f"--runs={study_runs}",
        f"--out={out}",
        "--config=tiny",
        "--seeds=2",
        "--num_images=6",
        "--fractions=0.5,1",
        "--resamples=200",
    ]
    first = _study(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "done (step 10)" in first.stdout  # nothing trained further
    scores = sorted(p.relative_to(out / "scores").as_posix() for p in out.glob("scores/*/*.csv"))
    assert len(scores) == 2 * 2 * 3 and "lfw/seed1_random_mouthsize.csv" in scores
    rows = tables.read_csv(out / "scores" / "lfw" / "seed0_mouth.csv")
    assert {r["step"] for r in rows} == {5, 10} and len(rows) == 12
    assert all(0 <= r["lpips_hole"] < 1 and np.isfinite(r["psnr_hole"]) for r in rows)
    assert rows[0]["person"] == study_scores.person_of(rows[0]["image"]) != rows[0]["image"]

    report = (out / "report.md").read_text()
    for heading in ("## Findings", "## lfw at step 10", "## celeba at step 10"):
        assert heading in report
    assert (out / "curves.png").stat().st_size > 10_000
    stats_rows = tables.read_csv(out / "statistics.csv")
    pair = [r for r in stats_rows if r["population"] == "lfw" and r["step"] == 10
            and r["metric"] == "psnr_hole" and r["statistic"] == "mouth - random"]  # fmt: skip
    (pair,) = pair
    replicates = [float(x) for x in pair["replicates"].split()]
    # The swapped seeds give opposite replicates, so the claim cannot hold.
    assert replicates[0] == pytest.approx(-replicates[1]) and pair["holds"] == "False"
    assert {r["statistic"] for r in stats_rows if r["step"] == 5} == {"size share"}

    stamps = {p: p.stat().st_mtime_ns for p in out.glob("scores/*/*.csv")}
    again = _study(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in out.glob("scores/*/*.csv")} == stamps
    assert (out / "report.md").read_text() == report
    # Other faces (fewer of them): every run is scored again, never mixed with the old scores.
    fewer = _study(
        *[a for a in args if not a.startswith("--num_images")], "--num_images=4", "--score_only"
    )
    assert fewer.returncode == 0, fewer.stderr[-2000:]
    assert "done (step" not in fewer.stdout  # no run even looked at for training
    assert len(tables.read_csv(out / "scores" / "celeba" / "seed1_random.csv")) == 2 * 4
    assert "first 4 test faces" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--populations=lfw", "--populations takes NAME=DIR items, not 'lfw'"),
        ("--populations=x=/nonexistent", "population x: /nonexistent/test does not exist"),
        ("--seeds=0", "--seeds must be >= 1, not 0"),
        ("--fractions=0", "--fractions must be in (0, 1]"),
        ("--train_only --score_only", "--train_only and --score_only exclude each other"),
    ],
)
def test_study_refuses_bad_flags_in_one_line(flag, message, faces_dir, tmp_path):
    result = _study(f"--data_dir={faces_dir}", f"--runs={tmp_path / 'r'}", *flag.split())
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {message}"]
    assert not (tmp_path / "r").exists()


def test_collect_refuses_runs_scored_on_other_faces():
    row = dict(population="p", seed=0, step=1, person="a") | {m: 1.0 for m in study_scores.METRICS}
    rows = [row | dict(regime="mouth", image="a.png"), row | dict(regime="random", image="b.png")]
    with pytest.raises(seed_study.StudyError, match="other faces"):
        seed_study.collect(rows)


def test_a_claim_holds_only_when_every_replicate_agrees():
    rng = np.random.default_rng(0)
    faces = 60
    base = rng.normal(20, 1, faces)

    def pop(offsets):
        values = {}
        for regime, per_seed in offsets.items():
            for seed, off in enumerate(per_seed):
                for metric in study_scores.METRICS:
                    values[regime, seed, 1, metric] = base + off + rng.normal(0, 0.1, faces)
        names = [f"f{i}" for i in range(faces)]
        return seed_study.PopulationScores(names, names, values)

    agree = pop({"mouth": [2.0, 2.1, 1.9], "random": [0, 0.1, -0.1], "random_mouthsize": [1, 1, 1]})
    split = pop(
        {"mouth": [2.0, 2.1, -1.0], "random": [0, 0.1, -0.1], "random_mouthsize": [1, 1, 1]}
    )
    held = seed_study.analyse_step(agree, 1, "psnr_hole", n_resamples=300)["pairs"][0]
    assert held["name"] == "mouth - random" and held["holds"] and held["low"] > 0
    assert held["a_better"] == faces and held["p"] < 1e-10
    not_held = seed_study.analyse_step(split, 1, "psnr_hole", n_resamples=300)["pairs"][0]
    assert not not_held["holds"] and not_held["replicates"][2] < 0
    # The faces-only interval of the seed means is narrower than the one over seeds and faces.
    width = not_held["high"] - not_held["low"]
    assert width > 3 * (not_held["faces_high"] - not_held["faces_low"])
    one = pop({"mouth": [2.0], "random": [0.0], "random_mouthsize": [1.0]})
    assert (
        seed_study.analyse_step(one, 1, "psnr_hole", n_resamples=300)["pairs"][0]["holds"] is None
    )
    share = seed_study.analyse_step(agree, 1, "psnr_hole", n_resamples=300)["size_share"]
    assert share["share"] == pytest.approx(0.5, abs=0.05) and share["low"] < 0.5 < share["high"]


@pytest.mark.slow
def test_study_trains_three_regimes_in_chunks_and_compares(faces_dir, tmp_path):
    run_dir, out = tmp_path / "runs", tmp_path / "report"
    args = [
        "--config=tiny", f"--data_dir={faces_dir}", f"--runs={run_dir}", f"--out={out}",
        "--chunk=25", "--num_images=8", "--seeds=1", "--resamples=200", "--compare_report",
    ]  # fmt: skip
    result = _study(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    for regime in ("mouth", "random", "random_mouthsize"):
        with runs.RunReader(run_dir / "seed0" / regime) as run:
            assert run.latest_step() == 40  # the tiny preset's total, reached in two chunks
        first_chunk = f"{regime} seed 0: steps 0 to 25 of 40"
        assert f"{regime} seed 0: steps 25 to 40" in result.stdout.split(first_chunk)[1]
    assert "## " + faces_dir.name + " at step 40" in (out / "report.md").read_text()
    diffs = tables.read_csv(out / "seed0" / "differences.csv")
    assert {d["a"] for d in diffs} == {"mouth-trained", "random_mouthsize-trained"}
    # A finished study is not retrained.
    again = _study(*args, "--train_only")
    assert again.returncode == 0 and again.stdout.count("seed 0: done (step 40)") == 3


@pytest.mark.slow
def test_a_budget_stops_training_at_a_round_with_every_run_at_equal_steps(faces_dir, tmp_path):
    run_dir, out = tmp_path / "runs", tmp_path / "report"
    args = [
        "--config=tiny", f"--data_dir={faces_dir}", f"--runs={run_dir}", f"--out={out}",
        "--chunk=10", "--num_images=6", "--seeds=1", "--resamples=200", "--budget_s=1",
        "--launch_flags=--config.checkpoint_every=5",
    ]  # fmt: skip
    result = _study(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "training stops" in result.stdout and result.stdout.count("steps 0 to 10") == 3
    for regime in ("mouth", "random", "random_mouthsize"):
        with runs.RunReader(run_dir / "seed0" / regime) as run:
            assert run.latest_step() == 10 and run.steps() == [5, 10]
    assert "Steps compared: 5, 10." in (out / "report.md").read_text()
    # A run stopped off the boundary (a kill) is brought to it with the others, not past them.
    ahead = subprocess.run(
        [sys.executable, str(REPO_ROOT / "launch.py"), "--mask=mouth", "--config=tiny",
         f"--data_dir={faces_dir}", f"--workdir={run_dir / 'seed0' / 'mouth'}", "--resume",
         "--steps_per_run=3", "--config.checkpoint_every=5"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ahead.returncode == 0, ahead.stderr[-2000:]
    result = _study(*args, "--train_only")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "mouth seed 0: steps 13 to 20" in result.stdout
    assert result.stdout.count("steps 10 to 20") == 2
    for regime in ("mouth", "random", "random_mouthsize"):
        with runs.RunReader(run_dir / "seed0" / regime) as run:
            assert run.latest_step() == 20


@pytest.mark.parametrize(
    "name, person",
    [
        ("test__Aaron_Peirsol_0002.png", "Aaron_Peirsol"),
        ("Sammy_Davis_Jr._0001.jpg", "Sammy_Davis_Jr."),
        ("test__009003.png", "test__009003"),  # CelebA's numbers name no one
        ("test__1234.png", "test__1234"),
    ],
)
def test_people_are_read_from_lfw_names_only(name, person):
    assert study_scores.person_of(name) == person

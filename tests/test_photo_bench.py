"""glcic_jax.perf.photo_bench and experiments/bench_photos.py: the photo pipeline's cost per photo."""

import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glcic_jax.perf import photo_bench

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_the_counter_counts_a_compilation_once_per_shape():
    counter = photo_bench.CompileCounter().listen()
    f = jax.jit(lambda x: jnp.sin(x) * 3.0 + 0.25)
    f(np.ones(7, np.float32)).block_until_ready()
    assert counter.count == 1 and counter.seconds > 0
    f(np.zeros(7, np.float32)).block_until_ready()
    assert counter.count == 1
    f(np.ones(9, np.float32)).block_until_ready()
    assert counter.count == 2


def test_mixed_sizes_alternate_sides_over_the_faces():
    photos = [np.full((100, 80, 3), i, np.uint8) for i in range(3)]
    made = photo_bench.mixed_sizes(photos, 7, sides=(64, 200))
    assert [side for side, _ in made] == [64, 200, 64, 200, 64, 200, 64]
    assert [max(rgb.shape[:2]) for _, rgb in made] == [side for side, _ in made]
    assert made[1][1].shape == (200, 160, 3) and int(made[4][1][0, 0, 0]) == 1


def test_summary_rows_keep_the_first_photo_apart_and_group_sizes():
    costs = [photo_bench.PhotoCost(300, 5.0, 4, 1)] + [
        photo_bench.PhotoCost(side, s, 0, 1)
        for side, s in [(250, 1.0), (256, 3.0), (900, 2.0), (5000, 4.0)]
    ]
    rows = photo_bench.summary_rows(costs, sides=(256, 1024))
    assert [(r["photos"], r["side"], r["n"]) for r in rows] == [
        ("first", 300, 1), ("later", 256, 2), ("later", 1024, 2)
    ]  # fmt: skip
    assert rows[0]["compiles"] == 4 and rows[1]["median_s"] == 2.0 and rows[2]["compiles"] == 0
    assert photo_bench.summary_rows([]) == []


@pytest.mark.slow
def test_the_script_completes_mixed_sizes_without_compiling_after_the_first(shared_data):
    result = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "bench_photos.py"), "--n=4", "--sides=256,900"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "0 in the 3 later ones" in result.stdout

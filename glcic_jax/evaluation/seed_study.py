"""The study's statistics over training seeds and faces: what holds when the study is run again.

One seed per regime cannot say whether a difference belongs to the regime
or to the seed (docs/results.md: the size share moved 30..63% between
checkpoints of one run). Here every regime has several seeds; seed k of all
three regimes is replicate k of the whole study. From per-image rows
(``study_scores``) this computes, per population, metric and step:

- each regime's mean with a hierarchical interval (``stats.hierarchical_bootstrap_ci``:
  seeds resampled per regime, faces, or whole people, shared by the regimes);
- each pair's difference with that interval, the faces-only interval of the
  seed-averaged faces beside it (what one would report without seeds), the
  difference in every replicate, and the sign test over faces;
- the share of the mouth model's lead over the random one that the
  size-matched control recovers, with its interval and per replicate.

A claim *holds* when its hierarchical interval excludes zero and every
replicate has the same sign as the whole; reports list the claims that hold
apart from those that do not. With one seed per regime nothing is tested
across seeds (`holds` is None).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from glcic_jax.evaluation import metrics, stats, study_scores

REGIMES = ("mouth", "random", "random_mouthsize")
CONTROL = "random_mouthsize"
# (a, b, what a - b measures), in report order.
PAIRS = (
    ("mouth", "random", "mouth - random"),
    (CONTROL, "random", "control - random (size)"),
    ("mouth", CONTROL, "mouth - control (position)"),
)


@dataclasses.dataclass
class PopulationScores:
    """One population's per-image values.

    Attributes:
      images: the faces, in the order of every array.
      people: who is in each face (a person with two photos is resampled whole).
      values: (regime, seed, step, metric) -> float64 (faces,).
    """

    images: list
    people: list
    values: dict

    def seeds(self, regime: str) -> list[int]:
        return sorted({k[1] for k in self.values if k[0] == regime})

    def steps(self) -> list[int]:
        return sorted({k[2] for k in self.values})

    def matrix(self, regime: str, step: int, metric: str) -> np.ndarray:
        """(seeds, faces) values of one regime at one step."""
        return np.stack([self.values[regime, s, step, metric] for s in self.seeds(regime)])


class StudyError(ValueError):
    """Scores that cannot be compared (different faces, a missing regime or step)."""


def collect(rows: Sequence[Mapping]) -> dict[str, PopulationScores]:
    """study_scores rows of every run -> population -> PopulationScores.

    Raises:
      StudyError: runs of one population scored on different faces.
    """
    by_run: dict = {}
    for r in rows:
        by_run.setdefault(
            (r["population"], r["regime"], int(r["seed"]), int(r["step"])), []
        ).append(r)
    out: dict[str, PopulationScores] = {}
    for (population, regime, seed, step), mine in by_run.items():
        images = [r["image"] for r in mine]
        pop = out.setdefault(population, PopulationScores(images, [r["person"] for r in mine], {}))
        if images != pop.images:
            raise StudyError(
                f"{population}: {regime} seed {seed} step {step} was scored on other faces"
                " than the first run (score every run with the same --num_images)"
            )
        for m in study_scores.METRICS:
            pop.values[regime, seed, step, m] = np.array([float(r[m]) for r in mine])
    return out


def common_steps(pop: PopulationScores) -> list[int]:
    """Steps every regime and seed of the population was scored at."""
    runs = {(k[0], k[1]) for k in pop.values}
    return [s for s in pop.steps() if all((r, sd, s, "psnr_hole") in pop.values for r, sd in runs)]


def _better(metric: str) -> float:
    return 1.0 if metrics.direction(metric) == "higher" else -1.0


def _finite_faces(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Faces with a finite value in every run (the feature distance is NaN without matches)."""
    return np.all([np.isfinite(a).all(axis=0) for a in arrays], axis=0)


def _holds(point: float, low: float, high: float, replicates: Sequence[float]) -> bool | None:
    """True when the interval lies on the point's side of 0 and every replicate agrees; None
    with one replicate (nothing is tested across seeds)."""
    if len(replicates) < 2:
        return None
    sign = np.sign(point)
    inside = sign * low > 0 and sign * high > 0
    return bool(sign != 0 and inside and all(np.sign(replicates) == sign))


def analyse_step(
    pop: PopulationScores,
    step: int,
    metric: str,
    n_resamples: int = stats.BOOTSTRAP_RESAMPLES,
    share_only: bool = False,
) -> dict:
    """Every statistic of one population, step and metric (see the module docstring).

    With `share_only`, only the size share (the report's per-step column).

    Returns:
      {"n_faces", "n_people", "regimes": {regime: {...}}, "pairs": [{...}], "size_share": {...}}
    """
    missing = [r for r in REGIMES if not pop.seeds(r)]
    if missing:
        raise StudyError(f"no scores for {', '.join(missing)}")
    full = {r: pop.matrix(r, step, metric) for r in REGIMES}
    keep = _finite_faces(list(full.values()))
    if not keep.any():
        raise StudyError(f"{metric} at step {step}: no face has a finite value in every run")
    arr = {r: a[:, keep] for r, a in full.items()}
    groups = np.asarray(pop.people)[keep]
    boot = dict(groups=groups, n_resamples=n_resamples)
    n_rep = min(a.shape[0] for a in arr.values())
    out = {
        "n_faces": int(keep.sum()),
        "n_people": len(set(groups)),
        "regimes": {},
        "pairs": [],
    }
    for r, a in ({} if share_only else arr).items():
        mean, lo, hi = stats.hierarchical_bootstrap_ci(a, **boot)
        out["regimes"][r] = dict(mean=mean, low=lo, high=hi, seeds=a.mean(axis=1).tolist())
    for a, b, name in () if share_only else PAIRS:
        diff = lambda m: m[0] - m[1]  # noqa: E731
        point, lo, hi = stats.hierarchical_bootstrap_ci([arr[a], arr[b]], diff, **boot)
        faces_only = [arr[a].mean(0, keepdims=True), arr[b].mean(0, keepdims=True)]
        _, flo, fhi = stats.hierarchical_bootstrap_ci(faces_only, diff, **boot)
        replicates = [float(arr[a][k].mean() - arr[b][k].mean()) for k in range(n_rep)]
        # The sign test over faces (seed means): "a better" in the metric's direction.
        sa, sb = (arr[a].mean(0), arr[b].mean(0))
        test = stats.sign_test(sa, sb) if _better(metric) > 0 else stats.sign_test(sb, sa)
        out["pairs"].append(
            dict(a=a, b=b, name=name, diff=point, low=lo, high=hi, faces_low=flo, faces_high=fhi)
            | dict(replicates=replicates, a_better=test.n_positive, b_better=test.n_negative)
            | dict(p=test.p_value, holds=_holds(point, lo, hi, replicates))
        )
    share = lambda m: (m[2] - m[1]) / (m[0] - m[1])  # noqa: E731  (control - random) / (mouth - random)
    three = [arr["mouth"], arr["random"], arr[CONTROL]]
    point, lo, hi = stats.hierarchical_bootstrap_ci(three, share, **boot)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_rep = [share(np.array([x[k].mean() for x in three])) for k in range(n_rep)]
    out["size_share"] = dict(share=point, low=lo, high=hi, replicates=per_rep)
    return out


def seed_curves(pop: PopulationScores, metric: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """regime -> (steps, (seeds, steps) means): the study's curves, one per seed."""
    steps = common_steps(pop)
    curves = {}
    for r in REGIMES:
        means = [[np.nanmean(pop.values[r, s, t, metric]) for t in steps] for s in pop.seeds(r)]
        curves[r] = (np.array(steps), np.array(means))
    return curves

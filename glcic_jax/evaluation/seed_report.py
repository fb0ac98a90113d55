"""The seed study's report: findings stated only as far as they hold, tables, one figure.

``write_report`` turns ``seed_study`` analyses into ``report.md`` (readable
on its own), ``statistics.csv`` (one row per population x step x metric x
statistic) and ``curves.png`` (the metrics against the step, one band per
regime over its seeds: the study's similarity-vs-iterations plot).
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from glcic_jax.evaluation import metrics, seed_study, tables

LABELS = {"mouth": "mouth", "random": "random", "random_mouthsize": "control"}
CURVE_METRICS = ("feature_distance", "psnr_hole", "lpips_hole")
_DIGITS = {"psnr_hole": 2, "feature_distance": 2}
_HOLDS = {True: "yes", False: "**no**", None: "n/a (one seed)"}


def _f(x: float, metric: str, signed: bool = False) -> str:
    d = _DIGITS.get(metric, 3)
    return f"{x:+.{d}f}" if signed else f"{x:.{d}f}"


def _ci(point, low, high, metric, signed=False) -> str:
    return f"{_f(point, metric, signed)} [{_f(low, metric, signed)}, {_f(high, metric, signed)}]"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if np.isfinite(x) else "n/a"


def _claim(pair: Mapping, metric: str) -> str:
    better = (
        pair["a"] if (pair["diff"] > 0) == (metrics.direction(metric) == "higher") else pair["b"]
    )
    worse = pair["b"] if better == pair["a"] else pair["a"]
    return f"{LABELS[better]} beats {LABELS[worse]} on {metric}"


def findings(analyses: Mapping, final: Mapping[str, int]) -> list[str]:
    """Markdown bullets: per population, the pair claims at the last step that hold across
    seeds, then those that do not, one sub-bullet each."""
    lines = []
    for population, by_step in analyses.items():
        held, not_held, untested = [], [], []
        for metric, result in by_step[final[population]].items():
            for pair in result["pairs"]:
                interval = _ci(pair["diff"], pair["low"], pair["high"], metric, True)
                claim = f"  - {_claim(pair, metric)} ({pair['name']}: {interval})"
                {True: held, False: not_held, None: untested}[pair["holds"]].append(claim)
        if untested:
            lines.append(f"- **{population}**, one seed per regime: nothing is tested across seeds;"
                         " the intervals are over faces only")  # fmt: skip
            lines += untested
            continue
        lines.append(f"- **{population}**, holds across seeds:" + ("" if held else " nothing"))
        lines += held
        lines.append(
            f"- **{population}**, does not hold (the interval crosses zero or a replicate"
            " disagrees):" + ("" if not_held else " nothing")
        )
        lines += not_held
    return lines


def _population_section(population: str, by_step: Mapping, final: int) -> list[str]:
    at_end = by_step[final]
    some = next(iter(at_end.values()))
    lines = [
        f"## {population} at step {final:,}",
        "",
        f"{some['n_faces']} faces of {some['n_people']} people (fewer for a metric that is NaN on some faces:"
        " the feature distance needs 10 matches). Mean over seeds and faces, 95% hierarchical interval.",
        "",
        "| metric | better | " + " | ".join(LABELS[r] for r in seed_study.REGIMES) + " |",
        "|---|---|" + "---|" * len(seed_study.REGIMES),
    ]
    for metric, res in at_end.items():
        cells = [_ci(res["regimes"][r]["mean"], res["regimes"][r]["low"], res["regimes"][r]["high"], metric)
                 for r in seed_study.REGIMES]  # fmt: skip
        lines.append(f"| {metric} | {metrics.direction(metric)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Paired differences a - b: hierarchical interval (seeds and faces), the faces-only interval of the"
        " seed-averaged faces, a - b in each replicate (seed k of both), faces where a / b is better"
        " (seed means; sign test p), and whether the claim holds across seeds.",
        "",
        "| metric | a - b | difference [seeds and faces] | faces only | replicates | a / b better, p | holds |",
        "|---|---|---|---|---|---|---|",
    ]
    for metric, res in at_end.items():
        for p in res["pairs"]:
            reps = ", ".join(_f(x, metric, True) for x in p["replicates"])
            lines.append(
                f"| {metric} | {p['name']} | {_ci(p['diff'], p['low'], p['high'], metric, True)} | "
                f"[{_f(p['faces_low'], metric, True)}, {_f(p['faces_high'], metric, True)}] | {reps} | "
                f"{p['a_better']} / {p['b_better']}, {p['p']:.2g} | {_HOLDS[p['holds']]} |"
            )
    steps = sorted(by_step)
    lines += [
        "",
        "The share of the mouth model's lead over the random one that the size-matched control recovers,"
        " (control - random) / (mouth - random), per metric: at the last step with its interval and per"
        " replicate, then at each compared step.",
        "",
        "| metric | share [seeds and faces] | replicates | "
        + " | ".join(f"step {s:,}" for s in steps)
        + " |",
        "|---|---|---|" + "---|" * len(steps),
    ]
    for metric, res in at_end.items():
        s = res["size_share"]
        reps = ", ".join(_pct(x) for x in s["replicates"])
        per_step = " | ".join(
            _pct(by_step[t][metric]["size_share"]["share"]) if metric in by_step[t] else "n/a"
            for t in steps
        )
        lines.append(
            f"| {metric} | {_pct(s['share'])} [{_pct(s['low'])}, {_pct(s['high'])}] | {reps} | {per_step} |"
        )
    return lines + [""]


def plot_curves(populations: Mapping[str, seed_study.PopulationScores], path) -> None:
    """Metrics against the step, one column per population: a line per regime (mean over
    seeds), its band from the lowest to the highest seed, each seed as a thin line."""
    metrics_ = CURVE_METRICS
    fig = Figure(figsize=(3.6 * len(populations), 2.6 * len(metrics_) + 0.5), layout="constrained")
    axes = fig.subplots(len(metrics_), len(populations), squeeze=False)
    for col, (population, pop) in enumerate(populations.items()):
        for row, metric in enumerate(metrics_):
            ax = axes[row, col]
            for regime, (steps, means) in seed_study.seed_curves(pop, metric).items():
                (line,) = ax.plot(steps, means.mean(0), marker="o", label=LABELS[regime])
                ax.fill_between(
                    steps, means.min(0), means.max(0), color=line.get_color(), alpha=0.2
                )
                for seed_curve in means:
                    ax.plot(steps, seed_curve, color=line.get_color(), linewidth=0.5, alpha=0.6)
            ax.set_title(
                f"{population}: {metric} ({metrics.direction(metric)} is better)", fontsize=8
            )
            ax.set_xlabel("training step", fontsize=7)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=8)
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def statistic_rows(analyses: Mapping) -> list[dict]:
    """Flat rows for statistics.csv."""
    rows = []
    for population, by_step in analyses.items():
        for step, by_metric in by_step.items():
            for metric, res in by_metric.items():
                keys = dict(population=population, step=step, metric=metric, n_faces=res["n_faces"])
                for r, v in res["regimes"].items():
                    rows.append(keys | dict(statistic=f"mean {r}", value=v["mean"], low=v["low"], high=v["high"],
                                            replicates=" ".join(f"{x:.6g}" for x in v["seeds"])))  # fmt: skip
                for p in res["pairs"]:
                    rows.append(keys | dict(statistic=p["name"], value=p["diff"], low=p["low"], high=p["high"],
                                            replicates=" ".join(f"{x:.6g}" for x in p["replicates"]),
                                            holds=p["holds"], sign_p=p["p"]))  # fmt: skip
                s = res["size_share"]
                rows.append(keys | dict(statistic="size share", value=s["share"], low=s["low"], high=s["high"],
                                        replicates=" ".join(f"{x:.6g}" for x in s["replicates"])))  # fmt: skip
    return rows


def write_report(
    out, populations: Mapping, analyses: Mapping, setup: Sequence[str], command: str
) -> pathlib.Path:
    """report.md, statistics.csv and curves.png into `out`; returns report.md's path.

    Args:
      populations: population -> seed_study.PopulationScores.
      analyses: population -> step -> metric -> seed_study.analyse_step result.
      setup: lines describing the runs (preset, seeds, steps).
      command: the command that regenerates the report.
    """
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    final = {p: max(by_step) for p, by_step in analyses.items()}
    tables.write_csv(out / "statistics.csv", statistic_rows(analyses))
    plot_curves(populations, out / "curves.png")
    lines = [
        "# The study over seeds: what holds when it is run again",
        "",
        "```",
        command,
        "```",
        "",
        *setup,
        "",
        "A claim holds when its 95% hierarchical interval (seeds resampled per regime, then faces or whole"
        " people, shared by the regimes) excludes zero and every replicate (seed k of all three regimes)"
        " has the same sign.",
        "",
        "## Findings",
        "",
        *findings(analyses, final),
        "",
        "![metrics against the step, one band per regime over its seeds](curves.png)",
        "",
    ]
    for population, by_step in analyses.items():
        lines += _population_section(population, by_step, final[population])
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path

"""The discriminator's outputs during training: d_real and d_fake against the step, per run.

  python experiments/plot_discriminator.py --runs=runs/fair-uniform,runs/fair-hole \
      --labels="real patches: uniform,real patches: hole" --out=docs/images/real_patches.png

d_real and d_fake are the mean sigmoid outputs on the real and the completed
images of each logged window (metrics.jsonl); they exist from phase 2 on.
One panel per run, phases 2 and 3 shaded from the run's config.json, so a
discriminator that separates real from fake outright shows as two lines
pinned at 1 and 0.
"""

import json
import pathlib
import sys

from absl import app, flags
from matplotlib.figure import Figure

_RUNS = flags.DEFINE_list("runs", None, "Run folders (metrics.jsonl and config.json).")
_LABELS = flags.DEFINE_list("labels", None, "A title per run (default: the folder names).")
_OUT = flags.DEFINE_string("out", None, "PNG to write.")
flags.mark_flags_as_required(["runs", "out"])

# Phase shading: the discriminator alone (2), then joint training (3).
_PHASE_COLORS = {2: "tab:orange", 3: "tab:green"}


def read_run(workdir: pathlib.Path) -> tuple[list[dict], dict]:
    """The records that carry discriminator outputs, and the run's config."""
    records = []
    for line in (workdir / "metrics.jsonl").read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill
        if "d_real" in record:
            records.append(record)
    return records, json.loads((workdir / "config.json").read_text())


def draw_run(ax, records: list[dict], config: dict, title: str) -> None:
    """d_real and d_fake against the step over the shaded phases 2 and 3."""
    p2_start = config["phase1_steps"]
    p3_start = p2_start + config["phase2_steps"]
    spans = {2: (p2_start, p3_start), 3: (p3_start, config["total_steps"])}
    for phase, (start, end) in spans.items():
        if end > start:
            ax.axvspan(start, end, color=_PHASE_COLORS[phase], alpha=0.08, linewidth=0)
            ax.text((start + end) / 2, 0.5, f"phase {phase}", ha="center", fontsize=7, alpha=0.6)
    steps = [r["step"] for r in records]
    for key, color in (("d_real", "tab:blue"), ("d_fake", "tab:red")):
        ax.plot(steps, [r[key] for r in records], color=color, label=key, marker=".")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("training step", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def main(argv):
    del argv
    runs = [pathlib.Path(r) for r in _RUNS.value]
    labels = _LABELS.value or [r.name for r in runs]
    if len(labels) != len(runs):
        sys.exit(f"error: {len(runs)} runs but {len(labels)} labels")
    for run in runs:
        if not (run / "metrics.jsonl").is_file() or not (run / "config.json").is_file():
            sys.exit(f"error: {run} has no metrics.jsonl and config.json")
    fig = Figure(figsize=(4 * len(runs), 3.5), layout="constrained")
    axes = fig.subplots(1, len(runs), sharey=True, squeeze=False)[0]
    for ax, run, label in zip(axes, runs, labels):
        records, config = read_run(run)
        draw_run(ax, records, config, label)
    axes[0].set_ylabel("mean D output (sigmoid)", fontsize=8)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=len(names), fontsize=8)
    out = pathlib.Path(_OUT.value)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)
    print(out)


if __name__ == "__main__":
    app.run(main)

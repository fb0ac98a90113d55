"""The fine stage's training curves: its losses, and the critic's scores on real and refined crops.

  python experiments/plot_refiner.py --run=runs/refiner --out=docs/images/refiner_training.png

Left: L1 over the hole and LPIPS of the crop (the refiner's two
reconstruction terms). Right: the critic's mean score on real crops and on
refined ones (hinge loss: a critic that wins outright holds real at +1 and
above and refined at -1 and below, and the refiner's adversarial term then
stops helping).
"""

import json
import pathlib
import sys

from absl import app, flags
from matplotlib.figure import Figure

_RUN = flags.DEFINE_string("run", "runs/refiner", "Refiner run folder (metrics.jsonl).")
_OUT = flags.DEFINE_string("out", None, "PNG to write.", required=True)


def read_records(workdir: pathlib.Path) -> list[dict]:
    """The logged windows of a refiner run, in step order (a line cut short by a kill is skipped)."""
    records = []
    for line in (workdir / "metrics.jsonl").read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if "critic_real" in record:
            records.append(record)
    return sorted(records, key=lambda r: r["step"])


def main(argv):
    del argv
    run = pathlib.Path(_RUN.value)
    if not (run / "metrics.jsonl").is_file():
        sys.exit(f"error: {run} has no metrics.jsonl")
    records = read_records(run)
    if not records:
        sys.exit(f"error: {run}/metrics.jsonl holds no refiner records")
    steps = [r["step"] for r in records]
    fig = Figure(figsize=(9, 3.3), layout="constrained")
    losses, critic = fig.subplots(1, 2)
    for key, color in (("l1", "tab:blue"), ("lpips", "tab:purple")):
        losses.plot(steps, [r[key] for r in records], color=color, label=key, linewidth=1)
    losses.set_title("refiner: reconstruction terms", fontsize=9)
    for key, color in (("critic_real", "tab:green"), ("critic_fake", "tab:red")):
        critic.plot(steps, [r[key] for r in records], color=color, label=key, linewidth=1)
    critic.axhline(1.0, color="grey", linewidth=0.6, linestyle="--")
    critic.axhline(-1.0, color="grey", linewidth=0.6, linestyle="--")
    critic.set_title("critic: mean score, real and refined crops", fontsize=9)
    for ax in (losses, critic):
        ax.set_xlabel("training step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    out = pathlib.Path(_OUT.value)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    print(out)


if __name__ == "__main__":
    app.run(main)

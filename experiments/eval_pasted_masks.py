r"""Scores completion models on held-out faces wearing pasted masks, given the true mask.

  python experiments/eval_pasted_masks.py --out=DIR        # shipped photo model, mouth64, Telea
  python experiments/eval_pasted_masks.py --model=a=runs/A --model=b=B.npz --blend --out=DIR
  python experiments/eval_pasted_masks.py --prepared=data/celeba10k-maskcrop --n=500 --out=DIR

Faces: a folder of photos (default: the lab mirror's faces/test, LFW faces no
model trained on), or with --prepared the source photos of a prepared
folder's test split. Writes DIR/rows.csv (one row per face and method),
DIR/summary.md (means, each model against Telea and against the first
--model paired per face, colour
error by skin bin with the dark/light ratio), DIR/sheet.png (masked input,
each method, the face) and the first model's typical.png and worst.png (by
its PSNR, beside Telea). --blend scores each model also after the
paper's post-processing, as the photo pipeline applies it. Wiring only: the
protocol is glcic_jax/evaluation/pasted_masks.py.
"""

import collections
import csv
import json
import pathlib
import sys

import numpy as np
from absl import app, flags, logging
from PIL import Image

from glcic_jax import locations

_MODELS = flags.DEFINE_multi_string(
    "model",
    None,
    "LABEL=RUN[@STEP] or RUN (a run, model folder or model file, at its latest step or STEP;"
    " repeatable). Default: the shipped photo model and the study's mouth64.",
)
_FACES = flags.DEFINE_string(
    "faces", None, "Folder of held-out photos (default: the mirror's faces/test)."
)
_PREPARED = flags.DEFINE_string(
    "prepared", None, "Instead of --faces: the source photos of this prepared folder's test split."
)
_N = flags.DEFINE_integer("n", 120, "Faces (the first N photos, sorted).", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 7000, "Seed of the pasted masks' jitter.")
_BLEND = flags.DEFINE_bool("blend", False, "Also score each model after the post-processing.")
_OUT = flags.DEFINE_string("out", None, "Output folder.", required=True)
_SHEET = flags.DEFINE_integer("sheet", 12, "Faces on the contact sheet.")

METRICS = ("psnr", "ssim", "lpips", "feature_distance", "delta_e", "colour_cast")
# metrics.direction's names of the metrics where higher is better.
_PAIRED_NAMES = {"psnr": "psnr_hole", "ssim": "ssim_hole"}


def _photos() -> list[pathlib.Path]:
    from glcic_jax.dataset import prepare

    if _PREPARED.value:
        folder = pathlib.Path(_PREPARED.value)
        try:
            rows = prepare.read_manifest(folder)
            source = json.loads((folder / "summary.json").read_text())["source"]
        except (OSError, ValueError, KeyError) as e:
            sys.exit(f"eval_pasted_masks: {folder} is not a prepared folder ({e})")
        return [pathlib.Path(source) / r["source"] for r in rows if r["split"] == "test"]
    folder = pathlib.Path(_FACES.value or locations.mirror() / "faces" / "test")
    if not folder.is_dir():
        sys.exit(f"eval_pasted_masks: no folder {folder} (pass --faces=DIR)")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def _models() -> dict:
    from glcic_jax.completion import inference

    specs = _MODELS.value or [
        f"photo={inference.PHOTO_MODEL}",
        f"mouth64={inference.PRETRAINED}",
    ]
    out = {}
    for spec in specs:
        label, _, run = spec.rpartition("=")
        run, _, step = run.partition("@")
        label = label or pathlib.Path(run).stem
        out[label] = inference.Completer.load(run, int(step) if step else None, batch_size=16)
    return out


def _mean(values) -> float:
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def summary(rows, labels) -> str:
    from glcic_jax.evaluation import paired, pasted_masks

    by = collections.defaultdict(dict)
    for r in rows:
        by[r["method"]][r["face"]] = r
    lines = ["| method | n | " + " | ".join(METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
    for method, faces in by.items():
        cells = " | ".join(f"{_mean(r[m] for r in faces.values()):.3f}" for m in METRICS)
        lines.append(f"| {method} | {len(faces)} | {cells} |")
    lines += ["", "Against Telea in the same frame, paired per face (95% bootstrap interval):", ""]
    lines += ["| model | metric | difference | better than Telea |", "|---|---|---|---|"]
    for method, faces in by.items():
        telea = next(iter(faces.values()))["baseline"]
        if not telea:
            continue
        names = sorted(set(faces) & set(by[telea]))
        for metric in ("psnr", "lpips", "delta_e"):
            a = np.array([faces[n][metric] for n in names])
            b = np.array([by[telea][n][metric] for n in names])
            d = paired.paired_difference(a, b, _PAIRED_NAMES.get(metric, metric))
            lines.append(
                f"| {method} | {metric} | {d['mean_diff']:+.3f} [{d['ci_low']:+.3f},"
                f" {d['ci_high']:+.3f}] | {d['a_better']} / {d['n']} |"
            )
    first = labels[0]
    if len(labels) > 1:
        lines += ["", f"Against {first}, paired per face (95% bootstrap interval):", ""]
        lines += [f"| model | metric | difference | better than {first} |", "|---|---|---|---|"]
        for method in labels[1:]:
            names = sorted(set(by[method]) & set(by[first]))
            for metric in ("psnr", "ssim", "lpips", "feature_distance"):
                a = np.array([by[method][n][metric] for n in names])
                b = np.array([by[first][n][metric] for n in names])
                d = paired.paired_difference(a, b, _PAIRED_NAMES.get(metric, metric))
                lines.append(
                    f"| {method} | {metric} | {d['mean_diff']:+.3f} [{d['ci_low']:+.3f},"
                    f" {d['ci_high']:+.3f}] | {d['a_better']} / {d['n']} |"
                )
    lines += ["", "Colour error by the visible skin's lightness (L* bins"]
    lines[-1] += f" {pasted_masks.SKIN_BINS}):"
    lines += [
        "",
        "| method | bin | n | delta_e | colour_cast | psnr |",
        "|---|---|---|---|---|---|",
    ]
    for method, faces in by.items():
        bins = collections.defaultdict(list)
        for r in faces.values():
            bins[r["skin_bin"]].append(r)
        for name in (*pasted_masks.SKIN_LABELS, "unknown"):
            rs = bins.get(name, [])
            if rs:
                lines.append(
                    f"| {method} | {name} | {len(rs)} | {_mean(r['delta_e'] for r in rs):.2f} |"
                    f" {_mean(r['colour_cast'] for r in rs):.2f} | {_mean(r['psnr'] for r in rs):.2f} |"
                )
        dark = _mean(r["delta_e"] for r in bins.get("dark", []))
        light = _mean(r["delta_e"] for r in bins.get("light", []))
        lines.append(f"| {method} | dark / light delta_e | | {dark / light:.2f} | | |")
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    logging.set_verbosity(logging.ERROR)  # Orbax logs every checkpoint read at INFO
    from glcic_jax.completion import postprocess  # noqa: F401  (OpenCV before JAX's threads)
    from glcic_jax.evaluation import pasted_masks
    from glcic_jax.faces import overlay
    from glcic_jax.runs import CheckpointError

    photos = _photos()[: _N.value]
    if not photos:
        sys.exit("eval_pasted_masks: no photos")
    try:
        overlay.load_templates()
        models = _models()
    except (overlay.OverlayError, CheckpointError, ValueError) as e:
        sys.exit(f"eval_pasted_masks: {e}")
    out = pathlib.Path(_OUT.value)
    out.mkdir(parents=True, exist_ok=True)
    faces, skipped = pasted_masks.held_out_faces(photos, _SEED.value)
    print(f"{len(faces)} faces ({len(skipped)} photos without a face at 0.9)")
    rows, frames = pasted_masks.score(models, faces)
    if _BLEND.value:
        blended, more = pasted_masks.score(models, faces, blend=True)
        for r in blended:
            if not r["method"].startswith("telea@"):
                r["method"] += "+blend"
                rows.append(r)
        frames.update({k + "+blend": v for k, v in more.items() if not k.startswith("telea@")})
    with open(out / "rows.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    text = summary(rows, list(models))
    (out / "summary.md").write_text(text)
    print(text)
    labels = list(frames)
    n = len(faces)
    picks = np.linspace(0, n - 1, min(_SHEET.value, n)).round().astype(int)
    Image.fromarray(pasted_masks.sheet(frames, labels, picks)).save(out / "sheet.png")
    # The first model's typical (around its median PSNR) and worst faces, with Telea beside it.
    first = next(iter(models))
    by_face = {r["face"]: r["psnr"] for r in rows if r["method"] == first}
    order = sorted(range(n), key=lambda i: by_face.get(faces[i].name, np.inf))
    k = min(6, n)
    pair = [first, next(m for m in labels if m.startswith("telea@"))]
    for name, chosen in (("typical", order[n // 2 - k // 2 :][:k]), ("worst", order[:k])):
        Image.fromarray(pasted_masks.sheet(frames, pair, chosen)).save(out / f"{name}.png")
    print(f"sheets in {out}: sheet.png (columns: masked, {', '.join(labels)}, face);"
          f" typical.png and worst.png (masked, {first}, Telea, face)")  # fmt: skip


if __name__ == "__main__":
    app.run(main)

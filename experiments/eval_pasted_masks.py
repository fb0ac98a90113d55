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


def main(argv):
    del argv
    logging.set_verbosity(logging.ERROR)  # Orbax logs every checkpoint read at INFO
    from glcic_jax.completion import postprocess  # noqa: F401  (OpenCV before JAX's threads)
    from glcic_jax.evaluation import pasted_masks, tables
    from glcic_jax.face_masks import overlay
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
    print(f"{len(faces)} faces ({len(skipped)} photos unreadable or without a face at 0.9)")
    if not faces:
        sys.exit("eval_pasted_masks: no face found in any photo")
    rows, frames = pasted_masks.score(models, faces)
    if _BLEND.value:
        blended, more = pasted_masks.score(models, faces, blend=True)
        for r in blended:
            if not r["method"].startswith("telea@"):
                r["method"] += "+blend"
                rows.append(r)
        frames.update({k + "+blend": v for k, v in more.items() if not k.startswith("telea@")})
    tables.write_csv(out / "rows.csv", rows)
    text = pasted_masks.report(rows, list(models))
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

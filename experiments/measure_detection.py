"""Face detection recall on masked faces, real and synthetic, and false positives.

  python experiments/measure_detection.py [--rwmfd=RWMFD/RWMFD_part_1] \
      [--faces=../shared/data/faces] [--variants=mtcnn,default] [--limit=N] \
      [--missed_sheet=/tmp/missed_sheet.png]

Sets (every one optional: a missing folder is skipped with a note):
  real       RWMFD photos (*/*.jpg): one masked person each, or a scene with
             several. Found = at least one detection at the threshold (the
             photos have no boxes to match).
  synthetic  LFW test crops: the face is detected unmasked (plain MTCNN, the
             dominant face at 0.9), a template of each frontal style is pasted
             on it (`overlay.paste_on_photo`), and the masked photo is searched
             again. Found = a detection at the threshold overlapping the
             unmasked box (IoU >= 0.3).
  negatives  photos without a face: the clothes below the face of RWMFD
             photos where plain MTCNN found exactly one face at 0.95 (from 0.5
             face heights under the chin down, 1.5 face widths wide; at least
             64 px each way), and the natural images shipped with
             scikit-image and scikit-learn (whole and their central half),
             none showing a face. A false positive = a negative with any
             detection at the threshold.

Variants are `detection.Detector` settings (`scoring.VARIANTS`); "mtcnn" is the
detector as shipped except that O-Net keeps scores from 0.5, so that recall
can be read below its own 0.7. For each variant: recall per set (and per
template style) at --thresholds, false positives, the real photos' best
confidences, ms per real photo, and the lowest threshold (step 0.01) with no
false positive, with the real recall there. The last variant's misses on the
real photos at --sheet_threshold go to --missed_sheet (up to 40, captioned
with their best confidence) for looking at; nothing is written elsewhere.

Wiring only: the sets' making, the counting and the masked-face rule are in
glcic_jax/evaluation/detection.py; this script reads the photos and prints.
"""

import os
import pathlib

import numpy as np
import skimage.data
import sklearn.datasets
from absl import app, flags
from PIL import Image
from tqdm import tqdm

from glcic_jax import images, locations
from glcic_jax.evaluation import detection as scoring
from glcic_jax.face_masks import overlay
from glcic_jax.faces import detection

VARIANTS = scoring.VARIANTS
# The natural images of scikit-image without a face (astronaut and camera have one).
SKIMAGE_NEGATIVES = (
    "brick", "cell", "chelsea", "chessboard_RGB", "clock_motion", "coffee", "coins", "color",
    "grass", "gravel", "horse", "hubble_deep_field", "ihc", "logo", "microaneurysms", "moon",
    "motorcycle_left", "page", "retina", "rocket", "text",
)  # fmt: skip
MISSED_ON_SHEET = 40

_RWMFD = flags.DEFINE_string(
    "rwmfd", None, "Real masked photos: RWMFD_part_1 of X-zhangyang/Real-World-Masked-Face-Dataset."
)
_FACES = flags.DEFINE_string("faces", None, "LFW crops folder with test/ (default: the mirror's).")
_VARIANTS = flags.DEFINE_list("variants", ["mtcnn", "default"], f"Of {', '.join(VARIANTS)}.")
_THRESHOLDS = flags.DEFINE_list("thresholds", ["0.5", "0.7", "0.8", "0.9"], "Recall thresholds.")
_LIMIT = flags.DEFINE_integer("limit", None, "Keep N real photos and N LFW faces (evenly spread).")
_MISSED = flags.DEFINE_string("missed_sheet", "/tmp/missed_sheet.png", "Contact sheet of misses.")
_SHEET_THRESHOLD = flags.DEFINE_float("sheet_threshold", 0.9, "A miss scores below this.")
_MASKED_RULE = flags.DEFINE_list(
    "masked_rule",
    ["0.5", "0.6", "0.7", "0.8"],
    "Also score complete.py's rule with the shipped mask segmenter at these"
    " masked_min_confidence values: a face at min_confidence, or from the value up with a mask"
    " found on it (empty: skip).",
)


def real_photos(folder: pathlib.Path, limit) -> list[scoring.Photo]:
    paths = scoring.spread(sorted(folder.glob("*/*.jpg")), limit)
    return [
        scoring.Photo(p.relative_to(folder).as_posix(), images.read_rgb(p), "real") for p in paths
    ]


def synthetic_photos(faces: pathlib.Path, plain: detection.Detector, limit) -> list[scoring.Photo]:
    photos = []
    for i, path in enumerate(scoring.spread(sorted((faces / "test").glob("*.jpg")), limit)):
        rgb = images.read_rgb(path)
        photos += scoring.masked_copies(path.name, rgb, plain, seed=i)
    return photos


def negative_photos(real: list[scoring.Photo], plain: detection.Detector) -> list[scoring.Photo]:
    photos = scoring.clothes_negatives(tqdm(real, desc="negatives", leave=False), plain)
    folder = pathlib.Path(skimage.data.__file__).parent
    natural = [(n, images.read_rgb(next(folder.glob(f"{n}.*")))) for n in SKIMAGE_NEGATIVES]
    natural += zip(("china", "flower"), sklearn.datasets.load_sample_images().images)
    return photos + scoring.natural_negatives(natural)


def recall_row(label: str, scores: np.ndarray, thresholds) -> str:
    cells = " ".join(f"{r:7.1%}" for r in scoring.recall(scores, thresholds))
    return f"  {label:<16} n={len(scores):<5} {cells}"


def main(argv):
    del argv
    unknown = sorted(set(_VARIANTS.value) - set(VARIANTS))
    if unknown:
        raise app.UsageError(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    thresholds = [float(t) for t in _THRESHOLDS.value]
    plain = detection.Detector(**detection.MTCNN_ALONE)
    rwmfd = pathlib.Path(_RWMFD.value or "")
    faces = pathlib.Path(_FACES.value) if _FACES.value else locations.find("faces")
    real = real_photos(rwmfd, _LIMIT.value) if _RWMFD.value and rwmfd.is_dir() else []
    synthetic = (
        synthetic_photos(faces, plain, _LIMIT.value) if faces and (faces / "test").is_dir() else []
    )
    negatives = negative_photos(real, plain)
    print(f"real {len(real)} ({rwmfd}), synthetic {len(synthetic)} ({faces}), negatives "
          f"{len(negatives)} ({sum(p.name.startswith('clothes:') for p in negatives)} clothes)")  # fmt: skip
    header = " ".join(f"{t:>7}" for t in thresholds)
    for name in _VARIANTS.value:
        detector = detection.Detector(**VARIANTS[name])
        real_scores, ms = scoring.score(detector, tqdm(real, desc=f"{name} real", leave=False))
        synth_scores, _ = scoring.score(
            detector, tqdm(synthetic, desc=f"{name} synthetic", leave=False)
        )
        neg_scores, neg_ms = scoring.score(
            detector, tqdm(negatives, desc=f"{name} negatives", leave=False)
        )
        print(f"\n{name}: Detector(**{VARIANTS[name]})")
        print(f"  {'recall at':<16} {'':7} {header}")
        print(recall_row("real", real_scores, thresholds))
        print(recall_row("synthetic", synth_scores, thresholds))
        by_style = scoring.scores_by_group(synthetic, synth_scores, overlay.FRONTAL)
        for style, style_scores in by_style.items():
            print(recall_row(f"  {style}", style_scores, thresholds))
        fps = " ".join(f"{n:7d}" for n in scoring.false_positives(neg_scores, thresholds))
        print(f"  {'false positives':<16} n={len(neg_scores):<5} {fps}")
        bins = ", ".join(
            f"[{a:.2f},{min(b, 1):.2f}{')' if b < 1 else ']'}: {c}"
            for a, b, c in scoring.confidence_histogram(real_scores)
        )
        print(f"  real best confidence: {bins}")
        print(f"  ms per photo: real {ms:.0f}, negatives {neg_ms:.0f}")
        t = scoring.lowest_clean_threshold(neg_scores)
        if t is not None and len(real):
            (real_recall,), (synth_recall,) = (
                scoring.recall(s, [t]) for s in (real_scores, synth_scores)
            )
            print(f"  lowest threshold without false positives: {t:.2f} "
                  f"(real {real_recall:.1%}, synthetic {synth_recall:.1%})")  # fmt: skip
    if _MASKED_RULE.value:
        from glcic_jax.completion import photo as photo_lib
        from glcic_jax.segmenter import mask_net

        net = mask_net.MaskNet.from_file(photo_lib.SEGMENTER_FILE)
        detector = detection.Detector()
        rules = [float(t) for t in _MASKED_RULE.value]
        print(
            f"\ncomplete.py's rule (Detector(), a face at {photo_lib.MIN_CONFIDENCE}, or from"
            " masked_min_confidence up with a mask found on it):"
        )
        print(f"  {'masked_min_confidence':<22} " + " ".join(f"{t:>7}" for t in rules))
        for label, photos in (("real", real), ("synthetic", synthetic), ("negatives", negatives)):
            if not photos:
                continue
            sure, masked = scoring.masked_rule(
                detector, net, tqdm(photos, desc=f"rule {label}", leave=False),
                photo_lib.MIN_CONFIDENCE,
            )  # fmt: skip
            found = scoring.rule_found(sure, masked, rules)
            if label == "negatives":
                print(f"  {'false positives':<22} " + " ".join(f"{int(f.sum()):7d}" for f in found))
            else:
                print(f"  {label + ' recall':<22} " + " ".join(f"{f.mean():7.1%}" for f in found))
    if real and _MISSED.value:
        missed = scoring.missed(real, real_scores, _SHEET_THRESHOLD.value)
        sheet = scoring.contact_sheet(missed[:MISSED_ON_SHEET])
        if sheet is not None:
            Image.fromarray(sheet).save(_MISSED.value)
        print(f"\n{len(missed)} real photos below {_SHEET_THRESHOLD.value} with {name}; "
              f"up to {MISSED_ON_SHEET} in {_MISSED.value}")  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    app.run(main)

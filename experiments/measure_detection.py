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

Variants are `detection.Detector` settings (VARIANTS); "mtcnn" is the
detector as shipped except that O-Net keeps scores from 0.5, so that recall
can be read below its own 0.7. For each variant: recall per set (and per
template style) at --thresholds, false positives, the real photos' best
confidences, ms per real photo, and the lowest threshold (step 0.01) with no
false positive, with the real recall there. The last variant's misses on the
real photos at --sheet_threshold go to --missed_sheet (up to 40, captioned
with their best confidence) for looking at; nothing is written elsewhere.
"""

import dataclasses
import os
import pathlib
import time

import cv2
import numpy as np
import skimage.data
import sklearn.datasets
from absl import app, flags
from PIL import Image
from tqdm import tqdm

from glcic_jax import locations
from glcic_jax.face_masks import overlay
from glcic_jax.faces import detection

VARIANTS = {
    "mtcnn": {"upscale_to": 0, "steps_threshold": (0.6, 0.7, 0.5), "mirror": False},
    "upscale": {"steps_threshold": (0.6, 0.7, 0.5), "mirror": False},
    "upscale_steps": {"mirror": False},
    "default": {},
}
# The natural images of scikit-image without a face (astronaut and camera have one).
SKIMAGE_NEGATIVES = (
    "brick", "cell", "chelsea", "chessboard_RGB", "clock_motion", "coffee", "coins", "color",
    "grass", "gravel", "horse", "hubble_deep_field", "ihc", "logo", "microaneurysms", "moon",
    "motorcycle_left", "page", "retina", "rocket", "text",
)  # fmt: skip
# RWMFD photos whose clothes crop shows a face all the same (checked by eye):
# an advert with a printed masked face below the subject.
NOT_NEGATIVE = ("0001/0014.jpg", "0001/0148.jpg")
MATCH_IOU = 0.3
CONFIDENCE_BINS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01)

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
MIN_RULE_CONFIDENCE = 0.5  # MTCNN's last stage keeps nothing below (detection.MTCNN_STEPS)


@dataclasses.dataclass
class Photo:
    """A test image and what counts as finding its face."""

    name: str
    rgb: np.ndarray
    group: str  # "real", a template style, or "negative"
    face_box: tuple | None = None  # synthetic: the unmasked face's box


def read_rgb(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def spread(items: list, limit) -> list:
    """`limit` items evenly spread over the list (all of them without a limit)."""
    return items[:: max(1, len(items) // limit)][:limit] if limit else items


def real_photos(folder: pathlib.Path, limit) -> list[Photo]:
    paths = spread(sorted(folder.glob("*/*.jpg")), limit)
    return [Photo(p.relative_to(folder).as_posix(), read_rgb(p), "real") for p in paths]


def synthetic_photos(faces: pathlib.Path, plain: detection.Detector, limit) -> list[Photo]:
    photos = []
    for i, path in enumerate(spread(sorted((faces / "test").glob("*.jpg")), limit)):
        rgb = read_rgb(path)
        face, _ = detection.dominant_face(plain.detect(rgb), 0.9)
        if face is None:
            continue
        for style in overlay.FRONTAL:
            template = overlay.pick_variant(face.landmarks, style)
            masked, _, _ = overlay.paste_on_photo(rgb, face, np.random.default_rng(i), template)
            photos.append(Photo(f"{path.name}:{style}", masked, style, face.box))
    return photos


def clothes_crop(rgb, box) -> np.ndarray | None:
    """The region under a face: its wearer's clothes, no face (module docstring)."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    left, right, top = max(0, int(x0 - bw / 2)), min(w, int(x1 + bw / 2)), int(y1 + bh / 2)
    if h - top < 64 or right - left < 64:
        return None
    return np.ascontiguousarray(rgb[top:, left:right])


def negative_photos(real: list[Photo], plain: detection.Detector) -> list[Photo]:
    photos = []
    for p in tqdm(real, desc="negatives", leave=False):
        faces = plain.detect(p.rgb)
        if p.name in NOT_NEGATIVE or len(faces) != 1 or faces[0].confidence < 0.95:
            continue
        crop = clothes_crop(p.rgb, faces[0].box)
        if crop is not None:
            photos.append(Photo(f"clothes:{p.name}", crop, "negative"))
    folder = pathlib.Path(skimage.data.__file__).parent
    natural = [(n, read_rgb(next(folder.glob(f"{n}.*")))) for n in SKIMAGE_NEGATIVES]
    natural += zip(("china", "flower"), sklearn.datasets.load_sample_images().images)
    for name, rgb in natural:
        h, w = rgb.shape[:2]
        centre = np.ascontiguousarray(rgb[h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2])
        photos += [Photo(name, rgb, "negative"), Photo(f"{name}:centre", centre, "negative")]
    return photos


def best_confidence(photo: Photo, faces: list[detection.Face]) -> float:
    """The photo's score: its best detection, or (synthetic) the best one on the face."""
    if photo.face_box is not None:
        faces = [f for f in faces if detection.box_iou(f.box, photo.face_box) >= MATCH_IOU]
    return max((f.confidence for f in faces), default=0.0)


def score(detector, photos: list[Photo], desc: str) -> tuple[np.ndarray, float]:
    """Best confidence per photo, and the mean ms per photo."""
    scores, seconds = [], 0.0
    for p in tqdm(photos, desc=desc, leave=False):
        start = time.perf_counter()
        faces = detector.detect(p.rgb)
        seconds += time.perf_counter() - start
        scores.append(best_confidence(p, faces))
    return np.array(scores), 1000 * seconds / max(1, len(photos))


def masked_rule(detector, net, photos: list[Photo], desc: str) -> tuple[np.ndarray, np.ndarray]:
    """Per photo: whether a face scores min_confidence, and the best score of a masked face.

    complete.py's rule finds a photo's face at masked_min_confidence t when
    the first is true or the second is at least t.
    """
    from glcic_jax.completion import photo as photo_lib

    sure, masked = [], []
    for p in tqdm(photos, desc=desc, leave=False):
        faces = detector.detect(p.rgb)
        if p.face_box is not None:
            faces = [f for f in faces if detection.box_iou(f.box, p.face_box) >= MATCH_IOU]
        sure.append(any(f.confidence >= photo_lib.MIN_CONFIDENCE for f in faces))
        doubtful = [f for f in faces if MIN_RULE_CONFIDENCE <= f.confidence]
        masked.append(
            max((f.confidence for f in doubtful if net.segment(p.rgb, f).masked), default=0.0)
        )
    return np.array(sure, bool), np.array(masked)


def recall_row(label: str, scores: np.ndarray, thresholds) -> str:
    cells = " ".join(f"{np.mean(scores >= t):7.1%}" for t in thresholds)
    return f"  {label:<16} n={len(scores):<5} {cells}"


def missed_sheet(photos, scores, threshold, path, count=40, tile=192) -> int:
    """Writes up to `count` real photos scoring below `threshold`, captioned; returns the misses."""
    missed = [(p, s) for p, s in zip(photos, scores) if s < threshold]
    tiles = []
    for p, s in missed[:count]:
        k = tile / max(p.rgb.shape[:2])
        size = (max(1, round(p.rgb.shape[1] * k)), max(1, round(p.rgb.shape[0] * k)))
        canvas = np.zeros((tile + 14, tile, 3), np.uint8)
        canvas[14 : 14 + size[1], : size[0]] = cv2.resize(p.rgb, size, interpolation=cv2.INTER_AREA)
        cv2.putText(canvas, f"{p.name} {s:.2f}", (2, 11), 0, 0.35, (255, 255, 255), 1)
        tiles.append(canvas)
    if tiles:
        while len(tiles) % 8:
            tiles.append(np.zeros_like(tiles[0]))
        rows = [np.concatenate(tiles[i : i + 8], 1) for i in range(0, len(tiles), 8)]
        Image.fromarray(np.concatenate(rows, 0)).save(path)
    return len(missed)


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
        real_scores, ms = score(detector, real, f"{name} real")
        synth_scores, _ = score(detector, synthetic, f"{name} synthetic")
        neg_scores, neg_ms = score(detector, negatives, f"{name} negatives")
        print(f"\n{name}: Detector(**{VARIANTS[name]})")
        print(f"  {'recall at':<16} {'':7} {header}")
        print(recall_row("real", real_scores, thresholds))
        print(recall_row("synthetic", synth_scores, thresholds))
        for style in overlay.FRONTAL:
            picked = np.array([p.group == style for p in synthetic], bool)
            if picked.any():
                print(recall_row(f"  {style}", synth_scores[picked], thresholds))
        fps = " ".join(f"{int(np.sum(neg_scores >= t)):7d}" for t in thresholds)
        print(f"  {'false positives':<16} n={len(neg_scores):<5} {fps}")
        counts, _ = np.histogram(real_scores, CONFIDENCE_BINS)
        bins = ", ".join(
            f"[{a:.2f},{min(b, 1):.2f}{')' if b < 1 else ']'}: {c}"
            for a, b, c in zip(CONFIDENCE_BINS, CONFIDENCE_BINS[1:], counts)
        )
        print(f"  real best confidence: {bins}")
        print(f"  ms per photo: real {ms:.0f}, negatives {neg_ms:.0f}")
        clean = [t for t in np.arange(0.5, 1.0, 0.01) if not np.any(neg_scores >= t)]
        if clean and len(real):
            t = clean[0]
            print(f"  lowest threshold without false positives: {t:.2f} "
                  f"(real {np.mean(real_scores >= t):.1%}, synthetic "
                  f"{np.mean(synth_scores >= t) if len(synth_scores) else float('nan'):.1%})")  # fmt: skip
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
            sure, masked = masked_rule(detector, net, photos, f"rule {label}")
            found = [sure | (masked >= t) for t in rules]
            if label == "negatives":
                print(f"  {'false positives':<22} " + " ".join(f"{int(f.sum()):7d}" for f in found))
            else:
                print(f"  {label + ' recall':<22} " + " ".join(f"{f.mean():7.1%}" for f in found))
    if real and _MISSED.value:
        n = missed_sheet(real, real_scores, _SHEET_THRESHOLD.value, _MISSED.value)
        print(f"\n{n} real photos below {_SHEET_THRESHOLD.value} with {name}; "
              f"up to 40 in {_MISSED.value}")  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    app.run(main)

"""Scoring the face detector on masked faces: recall and false positives at thresholds.

The shipped `faces.detection.Detector` settings and complete.py's masked-face
rule (`--masked_min_confidence`) were chosen from these numbers
(experiments/measure_detection.py prints them). They live here so that the
counting can be checked without a detector: the functions that count take
what a detector already found (best confidences per photo, lists of faces),
and only `score` and `masked_rule` run one.

Sets, each a list of `Photo`:
  real       masked people (RWMFD); found = any detection at the threshold
             (the photos have no boxes to match).
  synthetic  `masked_copies`: a frontal template of each style pasted on a
             face plain MTCNN finds unmasked; found = a detection at the
             threshold overlapping the unmasked box (IoU >= `MATCH_IOU`).
  negatives  photos without a face (`clothes_negatives`, `natural_negatives`);
             a false positive = a negative with any detection at the threshold.
"""

import dataclasses
import time

import cv2
import numpy as np

from glcic_jax.face_masks import overlay
from glcic_jax.faces import detection

# `detection.Detector` settings compared; "mtcnn" is the detector as shipped
# except that O-Net keeps scores from 0.5, so that recall can be read below its own 0.7.
VARIANTS = {
    "mtcnn": {"upscale_to": 0, "steps_threshold": (0.6, 0.7, 0.5), "mirror": False},
    "upscale": {"steps_threshold": (0.6, 0.7, 0.5), "mirror": False},
    "upscale_steps": {"mirror": False},
    "default": {},
}
# RWMFD photos whose clothes crop shows a face all the same (checked by eye):
# an advert with a printed masked face below the subject.
NOT_NEGATIVE = ("0001/0014.jpg", "0001/0148.jpg")
MATCH_IOU = 0.3
CONFIDENCE_BINS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01)
MIN_RULE_CONFIDENCE = 0.5  # MTCNN's last stage keeps nothing below (detection.MTCNN_STEPS)
# A clothes crop needs this many pixels each way to be a fair negative.
MIN_CROP_SIDE = 64
# Candidate thresholds for the lowest one without a false positive.
CLEAN_THRESHOLDS = np.arange(0.5, 1.0, 0.01)


@dataclasses.dataclass
class Photo:
    """A test image and what counts as finding its face."""

    name: str
    rgb: np.ndarray
    group: str  # "real", a template style, or "negative"
    face_box: tuple | None = None  # synthetic: the unmasked face's box


# ---------------------------------------------------------------- the sets


def spread(items: list, limit) -> list:
    """`limit` items evenly spread over the list (all of them without a limit)."""
    return items[:: max(1, len(items) // limit)][:limit] if limit else items


def masked_copies(name: str, rgb, plain: detection.Detector, seed: int) -> list[Photo]:
    """The synthetic set's photos of one unmasked face: one per frontal template style.

    Args:
      name: the photo's file name; each copy is named `name:style`.
      rgb: the unmasked photo.
      plain: the detector that places the face (plain MTCNN: its dominant face at 0.9).
      seed: seeds the template's jitter.

    Returns:
      One `Photo` per style of `overlay.FRONTAL`, none when no face is found.
    """
    face, _ = detection.dominant_face(plain.detect(rgb), 0.9)
    if face is None:
        return []
    photos = []
    for style in overlay.FRONTAL:
        template = overlay.pick_variant(face.landmarks, style)
        masked, _, _ = overlay.paste_on_photo(rgb, face, np.random.default_rng(seed), template)
        photos.append(Photo(f"{name}:{style}", masked, style, face.box))
    return photos


def clothes_crop(rgb, box) -> np.ndarray | None:
    """The region under a face: its wearer's clothes, no face.

    From 0.5 face heights under the chin down, 1.5 face widths wide (clipped
    to the photo); None when under `MIN_CROP_SIDE` pixels either way.
    """
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    left, right, top = max(0, int(x0 - bw / 2)), min(w, int(x1 + bw / 2)), int(y1 + bh / 2)
    if h - top < MIN_CROP_SIDE or right - left < MIN_CROP_SIDE:
        return None
    return np.ascontiguousarray(rgb[top:, left:right])


def clothes_negative(photo: Photo, faces: list[detection.Face]) -> Photo | None:
    """The clothes of a real photo as a negative, when plain MTCNN found exactly one sure face.

    Args:
      photo: a real photo.
      faces: plain MTCNN's detections on it.

    Returns:
      `clothes:NAME`, or None for a photo in `NOT_NEGATIVE`, one without
      exactly one face at 0.95, or a crop too small.
    """
    if photo.name in NOT_NEGATIVE or len(faces) != 1 or faces[0].confidence < 0.95:
        return None
    crop = clothes_crop(photo.rgb, faces[0].box)
    return None if crop is None else Photo(f"clothes:{photo.name}", crop, "negative")


def clothes_negatives(real, plain: detection.Detector) -> list[Photo]:
    """`clothes_negative` of each real photo (an iterable, e.g. a progress bar) that has one."""
    photos = []
    for p in real:
        negative = clothes_negative(p, plain.detect(p.rgb))
        if negative is not None:
            photos.append(negative)
    return photos


def natural_negatives(named_images) -> list[Photo]:
    """Each (name, rgb) image without a face, whole and its central half (`name:centre`)."""
    photos = []
    for name, rgb in named_images:
        h, w = rgb.shape[:2]
        centre = np.ascontiguousarray(rgb[h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2])
        photos += [Photo(name, rgb, "negative"), Photo(f"{name}:centre", centre, "negative")]
    return photos


# ---------------------------------------------------------------- counting


def faces_on(faces: list[detection.Face], face_box=None) -> list[detection.Face]:
    """The detections that count for a photo: all, or those on its face (IoU >= `MATCH_IOU`)."""
    if face_box is None:
        return list(faces)
    return [f for f in faces if detection.box_iou(f.box, face_box) >= MATCH_IOU]


def best_confidence(faces: list[detection.Face], face_box=None) -> float:
    """A photo's score: its best detection, or (synthetic) the best one on the face; 0 if none."""
    return max((f.confidence for f in faces_on(faces, face_box)), default=0.0)


def score(detector, photos) -> tuple[np.ndarray, float]:
    """Runs the detector on each photo: (best confidence per photo, mean ms per photo).

    Args:
      detector: has `detect(rgb) -> list[Face]`.
      photos: `Photo`s, any iterable (e.g. wrapped in a progress bar).
    """
    scores, seconds, n = [], 0.0, 0
    for p in photos:
        start = time.perf_counter()
        faces = detector.detect(p.rgb)
        seconds += time.perf_counter() - start
        scores.append(best_confidence(faces, p.face_box))
        n += 1
    return np.array(scores), 1000 * seconds / max(1, n)


def recall(scores, thresholds) -> list[float]:
    """Share of photos whose score reaches each threshold (NaN for no photos)."""
    scores = np.asarray(scores, np.float64)
    if not scores.size:
        return [float("nan")] * len(thresholds)
    return [float(np.mean(scores >= t)) for t in thresholds]


def false_positives(negative_scores, thresholds) -> list[int]:
    """Number of negatives with a detection reaching each threshold."""
    negative_scores = np.asarray(negative_scores, np.float64)
    return [int(np.sum(negative_scores >= t)) for t in thresholds]


def scores_by_group(photos: list[Photo], scores, groups) -> dict[str, np.ndarray]:
    """{group: the scores of its photos}, in the order of `groups`, for groups with photos."""
    scores = np.asarray(scores)
    out = {}
    for group in groups:
        picked = np.array([p.group == group for p in photos], bool)
        if picked.any():
            out[group] = scores[picked]
    return out


def confidence_histogram(scores) -> list[tuple[float, float, int]]:
    """(low, high, count) of the scores in each of `CONFIDENCE_BINS` (the last one holds 1.0)."""
    counts, _ = np.histogram(np.asarray(scores, np.float64), CONFIDENCE_BINS)
    return [(lo, hi, int(c)) for lo, hi, c in zip(CONFIDENCE_BINS, CONFIDENCE_BINS[1:], counts)]


def lowest_clean_threshold(negative_scores) -> float | None:
    """The lowest of `CLEAN_THRESHOLDS` no negative reaches, or None."""
    negative_scores = np.asarray(negative_scores, np.float64)
    return next((t for t in CLEAN_THRESHOLDS if not np.any(negative_scores >= t)), None)


def missed(photos: list[Photo], scores, threshold: float) -> list[tuple[Photo, float]]:
    """(photo, score) of the photos scoring below `threshold`, in order."""
    return [(p, float(s)) for p, s in zip(photos, scores) if s < threshold]


def contact_sheet(captioned: list[tuple[Photo, float]], tile: int = 192) -> np.ndarray | None:
    """Photos in rows of 8 tiles of `tile` px, each captioned with its name and score.

    Returns:
      RGB uint8, or None for no photos.
    """
    tiles = []
    for p, s in captioned:
        k = tile / max(p.rgb.shape[:2])
        size = (max(1, round(p.rgb.shape[1] * k)), max(1, round(p.rgb.shape[0] * k)))
        canvas = np.zeros((tile + 14, tile, 3), np.uint8)
        canvas[14 : 14 + size[1], : size[0]] = cv2.resize(p.rgb, size, interpolation=cv2.INTER_AREA)
        cv2.putText(canvas, f"{p.name} {s:.2f}", (2, 11), 0, 0.35, (255, 255, 255), 1)
        tiles.append(canvas)
    if not tiles:
        return None
    while len(tiles) % 8:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i : i + 8], 1) for i in range(0, len(tiles), 8)]
    return np.concatenate(rows, 0)


# ---------------------------------------------------------------- complete.py's masked-face rule


def rule_evidence(faces, is_masked, sure_confidence: float, face_box=None) -> tuple[bool, float]:
    """What complete.py's rule needs of one photo's detections.

    Args:
      faces: the detector's faces on the photo.
      is_masked: `face -> bool`, whether the segmenter finds a mask on it;
        asked only of faces from `MIN_RULE_CONFIDENCE` up.
      sure_confidence: the photo completer's `min_confidence`.
      face_box: (synthetic) only detections on this box count.

    Returns:
      (whether a face reaches `sure_confidence`, the best confidence of a
      face from `MIN_RULE_CONFIDENCE` up with a mask found on it, else 0).
    """
    faces = faces_on(faces, face_box)
    sure = any(f.confidence >= sure_confidence for f in faces)
    doubtful = [f for f in faces if MIN_RULE_CONFIDENCE <= f.confidence]
    return sure, max((f.confidence for f in doubtful if is_masked(f)), default=0.0)


def masked_rule(detector, net, photos, sure_confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """`rule_evidence` of each photo, running the detector and the segmenter `net`.

    Args:
      detector: has `detect(rgb) -> list[Face]`.
      net: has `segment(rgb, face).masked` (a `segmenter.mask_net.MaskNet`).
      photos: `Photo`s, any iterable (e.g. wrapped in a progress bar).
      sure_confidence: the photo completer's `min_confidence`.

    Returns:
      (bool array: a sure face, float array: the best masked face's confidence).
    """
    sure, masked = [], []
    for p in photos:
        evidence = rule_evidence(
            detector.detect(p.rgb),
            lambda f, rgb=p.rgb: net.segment(rgb, f).masked,
            sure_confidence,
            p.face_box,
        )
        sure.append(evidence[0])
        masked.append(evidence[1])
    return np.array(sure, bool), np.array(masked)


def rule_found(sure, masked, rules) -> list[np.ndarray]:
    """Per masked_min_confidence in `rules`: which photos the rule finds a face on.

    The rule finds one when a face is sure or a masked face reaches the value.
    """
    sure, masked = np.asarray(sure, bool), np.asarray(masked, np.float64)
    return [sure | (masked >= t) for t in rules]

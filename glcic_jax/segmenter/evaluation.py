"""Scoring mask segmentation where the truth is known: held-out masked faces, region scores.

Two held-out sets of masked faces, both from faces the segmenter never
trained on (the test splits):

- "augmented": `synthetic.synthesize(split="test")` rendered at `PHOTO_SIDE`
  and used as a photo: the held-out template colours and prints, lighting,
  blur, noise and JPEG of the test families (faces/synthetic.py says which).
- "plain": the template pasted on the test photo itself, enlarged to
  `PHOTO_SIDE` first (`overlay.paste_on_photo`, MaskTheFace's own colours),
  which also gives the clean face under the mask: the pipeline's PSNR, SSIM
  and LPIPS over the mask's pixels are measured on this set.

A face is found by the detector on the masked photo (a miss is counted);
where it misses, the clean photo's detection places the crop so the
segmenters are still scored on every face.

Region scores against the true mask (alpha > 0.5), in photo pixels:
  iou      |pred & truth| / |pred | truth| of the segment itself (undilated)
  remnant  share of the truth the filled region (dilated) leaves unfilled
  spill    share of the filled region outside the truth

The whole photo pipeline on the same faces: `evaluation.photo_pipeline`.
"""

import dataclasses
import math

import cv2
import numpy as np

from glcic_jax.face_masks import overlay
from glcic_jax.faces import align, detection, mask_crop
from glcic_jax.segmenter import grabcut as segment
from glcic_jax.segmenter import mask_net
from glcic_jax.segmenter.synthetic import generator as synthetic

PHOTO_SIDE = 256
LPIPS_SIDE = 64  # the mask's bounding box is scaled to this for LPIPS
# Yaw bins from `synthetic.Sample.yaw` / the nose offset, in eye distances.
YAW_BINS = ((0.0, 0.06, "frontal"), (0.06, 0.12, "slight"), (0.12, math.inf, "turned"))


def yaw_bin(yaw: float) -> str:
    a = abs(yaw)
    return next(name for lo, hi, name in YAW_BINS if lo <= a < hi)


def style_of(template: str | None) -> str:
    if template is None:
        return "none"
    return template.removesuffix("_left").removesuffix("_right")


def region_scores(segment_region, filled_region, truth) -> dict:
    """iou (of the segment), remnant and spill (of the filled region) against the truth."""
    truth = np.asarray(truth, bool)
    seg = np.asarray(segment_region, bool)
    filled = np.asarray(filled_region, bool)
    union = (seg | truth).sum()
    return dict(
        iou=float((seg & truth).sum() / union) if union else 1.0,
        remnant=float((truth & ~filled).sum() / truth.sum()) if truth.any() else 0.0,
        spill=float((filled & ~truth).sum() / filled.sum()) if filled.any() else 0.0,
    )


def grabcut_region(rgb, face) -> np.ndarray:
    """GrabCut's region (`segment.segment_mask`, dilated as it ships) in photo pixels."""
    affine = align.alignment(face, align.CANVAS)
    aligned = np.asarray(align.warp(rgb, affine, align.CANVAS))
    landmarks = align.apply_affine(affine, face.landmarks)
    region, _ = segment.segment_mask(aligned, landmarks)
    # A square map and its affine back into the photo, undilated: the segmenter's own mapping.
    return mask_net.to_photo(region.astype(np.float32), affine, rgb.shape, 0.0)


@dataclasses.dataclass
class MaskedFace:
    """One held-out test face: the masked photo, the truth, and what made it."""

    photo: np.ndarray  # RGB uint8 (PHOTO_SIDE, PHOTO_SIDE, 3)
    truth: np.ndarray  # bool, the mask's pixels
    clean: np.ndarray | None  # the same photo without the mask ("plain" set only)
    template: str | None
    yaw: float
    landmarks: np.ndarray  # of the clean face, in photo pixels (the fallback placement)
    source: str = ""  # the face photo it was made from


def augmented_faces(sources, n: int, seed: int, templates_dir=None) -> list[MaskedFace]:
    """n held-out masked faces with the test augmentations, as `PHOTO_SIDE` photos."""
    rng = np.random.default_rng(seed)
    affine_size = PHOTO_SIDE
    out = []
    for i in range(n):
        source = sources[i % len(sources)]
        rgb = synthetic.read_source(source)
        sample = synthetic.synthesize(
            rgb, source.landmarks, rng, affine_size, split="test", templates_dir=templates_dir,
            unmasked=0.0,
        )  # fmt: skip
        affine = mask_crop.landmarks_affine(source.landmarks, affine_size)
        landmarks = align.apply_affine(affine, np.asarray(source.landmarks))
        out.append(
            MaskedFace(
                sample.image, sample.label, None, sample.template, sample.yaw, landmarks,
                source.path,
            )
        )  # fmt: skip
    return out


def plain_faces(sources, n: int, seed: int, templates_dir=None) -> list[MaskedFace]:
    """n held-out faces wearing an unaltered template, pasted on the enlarged test photo."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        source = sources[i % len(sources)]
        rgb = synthetic.read_source(source)
        k = PHOTO_SIDE / max(rgb.shape[:2])
        size = (round(rgb.shape[1] * k), round(rgb.shape[0] * k))
        big = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
        landmarks = np.asarray(source.landmarks, np.float64) * k  # pixel centres: close enough
        face = detection.Face((0.0, 0.0, 0.0, 0.0), 1.0, landmarks)
        style = overlay.FRONTAL[i % len(overlay.FRONTAL)]
        canvas_landmarks = align.apply_affine(align.alignment(face), landmarks)
        template = overlay.pick_variant(canvas_landmarks, style)
        masked, alpha, template = overlay.paste_on_photo(
            big, face, rng, template=template, templates_dir=templates_dir
        )
        yaw = overlay.yaw_offset(landmarks)
        out.append(MaskedFace(masked, alpha > 0.5, big, template, yaw, landmarks, source.path))
    return out


def find_face(detector, masked: MaskedFace, min_confidence: float):
    """(face, detected): the detection on the masked photo nearest the truth, else the clean one."""
    truth_eyes = masked.landmarks[:2].mean(0)
    faces = [f for f in detector.detect(masked.photo) if f.confidence >= min_confidence]
    if faces:
        best = min(faces, key=lambda f: np.linalg.norm(f.landmarks[:2].mean(0) - truth_eyes))
        eye_dist = np.linalg.norm(masked.landmarks[1] - masked.landmarks[0])
        if np.linalg.norm(best.landmarks[:2].mean(0) - truth_eyes) < eye_dist:
            return best, True
    return detection.Face((0.0, 0.0, 0.0, 0.0), 1.0, masked.landmarks), False


def score_segmenters(net: mask_net.MaskNet, detector, faces, min_confidence=0.9, margins=()):
    """One row per face: detection, mask share, and region scores of the net and GrabCut.

    `margins` (canvas pixels) adds the net's remnant and spill at each extra
    dilation, for choosing the shipped margin.
    """
    rows = []
    for masked in faces:
        face, detected = find_face(detector, masked, min_confidence)
        found = net.segment(masked.photo, face)
        raw = mask_net.to_photo(found.crop_probability, found.affine, masked.photo.shape, 0.0)
        row = dict(
            source=masked.source,
            template=masked.template,
            style=style_of(masked.template),
            yaw_bin=yaw_bin(masked.yaw),
            detected=detected,
            mask_share=found.mask_share,
            masked=found.masked,
        )
        filled = found.region if found.masked else np.zeros_like(raw)
        row.update({f"net_{k}": v for k, v in region_scores(raw, filled, masked.truth).items()})
        for m in margins:
            dilated = mask_net.to_photo(found.crop_probability, found.affine, masked.photo.shape, m)
            scores = region_scores(raw, dilated, masked.truth)
            row[f"remnant_m{m:g}"], row[f"spill_m{m:g}"] = scores["remnant"], scores["spill"]
        grab = grabcut_region(masked.photo, face)
        row.update({f"grabcut_{k}": v for k, v in region_scores(grab, grab, masked.truth).items()})
        rows.append(row)
    return rows


def unmasked_shares(net: mask_net.MaskNet, detector, sources, n: int, min_confidence=0.9):
    """The net's mask share on n held-out faces without a mask (for the masked threshold)."""
    shares = []
    for source in sources[:n]:
        rgb = synthetic.read_source(source)
        faces = [f for f in detector.detect(rgb) if f.confidence >= min_confidence]
        face = (
            faces[0] if faces else detection.Face((0, 0, 0, 0), 1.0, np.asarray(source.landmarks))
        )
        shares.append(net.segment(rgb, face).mask_share)
    return np.asarray(shares)


def resolution_ceiling(sizes=(64, 96, 128, 160), n: int = 60, seed: int = 0, templates_dir=None):
    """IoU of a perfect probability map shrunk to each crop size and scaled back up.

    Jittered frontal templates on the canonical face, rendered at 640 px
    (twice the canvas box) as the truth: what a segmenter of that input size
    could reach at best.
    """
    rng = np.random.default_rng(seed)
    side = 640
    affine = mask_crop.from_canvas(side)
    points = align.apply_affine(affine, overlay.face_points(overlay.CANONICAL))
    scores = {s: [] for s in sizes}
    for i in range(n):
        template = overlay.FRONTAL[i % len(overlay.FRONTAL)]
        colour, alpha, (y0, x0) = overlay.warp_template(
            template, overlay.jitter(points, rng), (side, side), templates_dir
        )
        truth = np.zeros((side, side), np.float32)
        truth[y0 : y0 + alpha.shape[0], x0 : x0 + alpha.shape[1]] = alpha
        hard = truth > 0.5
        for s in sizes:
            small = cv2.resize(truth, (s, s), interpolation=cv2.INTER_AREA)
            back = cv2.resize(small, (side, side), interpolation=cv2.INTER_LINEAR) > 0.5
            scores[s].append((back & hard).sum() / (back | hard).sum())
    return {s: float(np.mean(v)) for s, v in scores.items()}

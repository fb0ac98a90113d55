"""Scoring mask segmentation where the truth is known: held-out masked faces, region scores.

Two held-out sets of masked faces, both from faces the segmenter never
trained on (the test splits):

- "augmented": `synthetic.synthesize(split="test")` rendered at `PHOTO_SIDE`
  and used as a photo: the held-out template colours and prints, lighting,
  blur, noise and JPEG of the test families (segmenter/synthetic/generator.py says which).
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

Summaries of those per-face rows (`segmentation_summary`: means per template
style and yaw bin, remnant and spill per dilation, detection and "called
masked" rates) take the rows as they are, so they are checked without a network.

The whole photo pipeline on the same faces: `evaluation.photo_pipeline`.
"""

import collections
import dataclasses
import math
import pathlib

import cv2
import numpy as np

from glcic_jax.face_masks import overlay
from glcic_jax.faces import align, detection, mask_crop
from glcic_jax.segmenter import grabcut as segment
from glcic_jax.segmenter import mask_net
from glcic_jax.segmenter.synthetic import face_sources, scene
from glcic_jax.segmenter.synthetic import generator as synthetic
from glcic_jax.segmenter.synthetic import straps as straps_lib

PHOTO_SIDE = 256
LPIPS_SIDE = 64  # the mask's bounding box is scaled to this for LPIPS
# Yaw bins from `synthetic.Sample.yaw` / the nose offset, in eye distances.
YAW_BINS = ((0.0, 0.06, "frontal"), (0.06, 0.12, "slight"), (0.12, math.inf, "turned"))
HELD_OUT_SETS = ("augmented", "plain", "strapped")
SUMMARY_GROUPS = ("style", "yaw_bin")
# The region scores averaged per group: the network's and GrabCut's.
SEGMENTER_KEYS = (
    "net_iou",
    "net_remnant",
    "net_spill",
    "grabcut_iou",
    "grabcut_remnant",
    "grabcut_spill",
    "net_cord_remnant",
    "grabcut_cord_remnant",
)


def yaw_bin(yaw: float) -> str:
    a = abs(yaw)
    return next(name for lo, hi, name in YAW_BINS if lo <= a < hi)


def style_of(template: str | None) -> str:
    if template is None:
        return "none"
    return template.removesuffix("_left").removesuffix("_right")


def region_scores(segment_region, filled_region, truth, cords=None) -> dict:
    """iou (of the segment), remnant and spill (of the filled region) against the truth.

    With `cords` (bool, the ear loops' or ties' pixels, part of the truth),
    also cord_remnant: the share of them the filled region leaves (NaN without).
    """
    truth = np.asarray(truth, bool)
    seg = np.asarray(segment_region, bool)
    filled = np.asarray(filled_region, bool)
    union = (seg | truth).sum()
    return dict(
        iou=float((seg & truth).sum() / union) if union else 1.0,
        remnant=float((truth & ~filled).sum() / truth.sum()) if truth.any() else 0.0,
        spill=float((filled & ~truth).sum() / filled.sum()) if filled.any() else 0.0,
        cord_remnant=(
            float((cords & ~filled).sum() / cords.sum())
            if cords is not None and cords.any()
            else float("nan")
        ),
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
    cords: np.ndarray | None = None  # bool, its ear loops' or ties' pixels ("strapped" set only)


def held_out_sources(paths, cache, seed: int) -> list:
    """The faces of the held-out photos, shuffled: `face_sources.find_sources`, cached.

    Finding the faces runs the detector on every photo, so the sources are
    kept in `cache` and read from it when it exists.

    Args:
      paths: the test photos.
      cache: a JSON file (`face_sources.save_sources`).
      seed: seeds the order.

    Returns:
      `face_sources.SourceFace`s in a random order fixed by `seed`.
    """
    cache = pathlib.Path(cache)
    if cache.exists():
        sources = face_sources.load_sources(cache)
    else:
        sources = face_sources.find_sources(paths)
        face_sources.save_sources(sources, cache)
    order = np.random.default_rng(seed).permutation(len(sources))
    return [sources[i] for i in order]


def augmented_faces(sources, n: int, seed: int, templates_dir=None) -> list[MaskedFace]:
    """n held-out masked faces with the test augmentations, as `PHOTO_SIDE` photos."""
    rng = np.random.default_rng(seed)
    affine_size = PHOTO_SIDE
    out = []
    for i in range(n):
        source = sources[i % len(sources)]
        rgb = face_sources.read_source(source)
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


def plain_faces(sources, n: int, seed: int, templates_dir=None, straps=False) -> list[MaskedFace]:
    """n held-out faces wearing an unaltered template, pasted on the enlarged test photo.

    With `straps` (the "strapped" set) each mask also has its ear loops or
    ties (`synthetic.straps`: 2 to 5 px at `PHOTO_SIDE`, lit like the mask),
    part of the truth; they come from their own stream, so the faces and
    masks are the plain set's of the same seed.
    """
    rng = np.random.default_rng(seed)
    strap_rng = np.random.default_rng([seed, 1])
    out = []
    for i in range(n):
        source = sources[i % len(sources)]
        rgb = face_sources.read_source(source)
        k = PHOTO_SIDE / max(rgb.shape[:2])
        size = (round(rgb.shape[1] * k), round(rgb.shape[0] * k))
        big = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
        landmarks = np.asarray(source.landmarks, np.float64) * k  # pixel centres: close enough
        face = detection.Face((0.0, 0.0, 0.0, 0.0), 1.0, landmarks)
        style = overlay.FRONTAL[i % len(overlay.FRONTAL)]
        canvas_landmarks = align.apply_affine(align.alignment(face), landmarks)
        template = overlay.pick_variant(canvas_landmarks, style)
        points, template = overlay.photo_points(face, rng, template)
        masked, alpha = overlay.paste(big, points, template, templates_dir)
        truth, cords = alpha > 0.5, None
        if straps:
            hom = overlay.homography(template, points, templates_dir)
            attach = straps_lib.corners(template, hom, templates_dir)
            kind = straps_lib.kind_for(template)
            colour, cord_alpha = straps_lib.draw(
                scene.FaceFrame.of(landmarks), attach, kind, strap_rng, masked.shape
            )
            colour = colour * overlay.light_factor(big, points)
            blended = masked + (colour - masked) * cord_alpha[..., None]
            masked = np.clip(np.round(blended), 0, 255).astype(np.uint8)
            cords = (cord_alpha > 0.5) & ~truth
            truth = truth | cords
        yaw = overlay.yaw_offset(landmarks)
        out.append(
            MaskedFace(masked, truth, big, template, yaw, landmarks, source.path, cords)
        )  # fmt: skip
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
        scores = region_scores(raw, filled, masked.truth, masked.cords)
        row.update({f"net_{k}": v for k, v in scores.items()})
        for m in margins:
            dilated = mask_net.to_photo(found.crop_probability, found.affine, masked.photo.shape, m)
            scores = region_scores(raw, dilated, masked.truth)
            row[f"remnant_m{m:g}"], row[f"spill_m{m:g}"] = scores["remnant"], scores["spill"]
        grab = grabcut_region(masked.photo, face)
        scores = region_scores(grab, grab, masked.truth, masked.cords)
        row.update({f"grabcut_{k}": v for k, v in scores.items()})
        rows.append(row)
    return rows


def unmasked_shares(net: mask_net.MaskNet, detector, sources, n: int, min_confidence=0.9):
    """The net's mask share on n held-out faces without a mask (for the masked threshold)."""
    shares = []
    for source in sources[:n]:
        rgb = face_sources.read_source(source)
        faces = [f for f in detector.detect(rgb) if f.confidence >= min_confidence]
        face = (
            faces[0] if faces else detection.Face((0, 0, 0, 0), 1.0, np.asarray(source.landmarks))
        )
        shares.append(net.segment(rgb, face).mask_share)
    return np.asarray(shares)


def mean_of(rows: list[dict], key: str) -> float:
    """Mean of `key` over the rows where it is finite; NaN when none is."""
    values = [r[key] for r in rows if np.isfinite(r[key])]
    return float(np.mean(values)) if values else float("nan")


def group_means(rows: list[dict], group: str, keys) -> dict:
    """{"all" and each value of `group`, sorted: {key: `mean_of`, "n": rows}}."""
    out = {"all": {k: mean_of(rows, k) for k in keys} | {"n": len(rows)}}
    groups = collections.defaultdict(list)
    for r in rows:
        groups[r[group]].append(r)
    for name, rs in sorted(groups.items()):
        out[name] = {k: mean_of(rs, k) for k in keys} | {"n": len(rs)}
    return out


def segmentation_summary(rows: list[dict], unmasked, min_share: float, margins) -> dict:
    """The segmenter's tables from `score_segmenters` rows of both held-out sets.

    Args:
      rows: per-face rows, each with "set" (one of `HELD_OUT_SETS`).
      unmasked: `unmasked_shares` (faces without a mask).
      min_share: the net's mask share from which a face is called masked.
      margins: the dilations the rows were scored at.

    Returns:
      Per set: "{set}_by_style" and "{set}_by_yaw_bin" (`group_means` of
      `SEGMENTER_KEYS`), "{set}_margins" (mean remnant and spill per
      dilation), "{set}_detected" and "{set}_called_masked" (shares of
      faces); then "unmasked_called_masked" (the share of unmasked faces at
      `min_share` or more) and the quantiles of the unmasked (0.5, 0.9, 0.99,
      1) and masked (0, 0.01, 0.1, 0.5) faces' mask shares.
    """
    summary = {}
    for kind in HELD_OUT_SETS:
        sel = [r for r in rows if r["set"] == kind]
        for group in SUMMARY_GROUPS:
            summary[f"{kind}_by_{group}"] = group_means(sel, group, SEGMENTER_KEYS)
        margin_keys = [f"remnant_m{m:g}" for m in margins] + [f"spill_m{m:g}" for m in margins]
        summary[f"{kind}_margins"] = {k: mean_of(sel, k) for k in margin_keys}
        summary[f"{kind}_detected"] = float(np.mean([r["detected"] for r in sel]))
        summary[f"{kind}_called_masked"] = float(np.mean([r["masked"] for r in sel]))
    unmasked = np.asarray(unmasked)
    summary["unmasked_called_masked"] = float(np.mean(unmasked >= min_share))
    summary["unmasked_share_quantiles"] = np.quantile(unmasked, [0.5, 0.9, 0.99, 1.0]).tolist()
    masked_shares = np.array([r["mask_share"] for r in rows])
    summary["masked_share_quantiles"] = np.quantile(masked_shares, [0.0, 0.01, 0.1, 0.5]).tolist()
    return summary


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

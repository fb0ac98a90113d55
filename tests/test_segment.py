"""Tests of glcic_jax.segmenter.grabcut: the worn face mask found on synthetic masked faces."""

import numpy as np
import pytest
from PIL import Image

from glcic_jax.face_masks import overlay
from glcic_jax.faces import align, detection
from glcic_jax.segmenter import grabcut as segment

# Measured on 60 LFW test faces under random templates (seeded): IoU mean
# 0.80 (min 0.49, the gas respirators whose cartridges stick out), coverage
# of the pasted mask 0.95; the 12 faces here gave mean 0.79.
MIN_MEAN_IOU = 0.7
MIN_MEAN_COVERAGE = 0.85


def iou(a, b) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture(scope="module")
def masked_faces(faces_dir):
    """12 aligned faces wearing random templates: (masked, alpha, landmarks, template)."""
    detector, rng = detection.Detector(), np.random.default_rng(1)
    out = []
    for path in sorted((faces_dir / "test").glob("*.jpg"))[:12]:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        face = detector.detect(rgb)[0]
        affine = align.alignment(face)
        landmarks = align.apply_affine(affine, face.landmarks)
        aligned = np.asarray(align.warp(rgb, affine))
        masked, alpha, name = overlay.render_masked(aligned, rng, landmarks)
        out.append((masked, alpha, landmarks, name))
    return out


def test_segment_finds_pasted_masks(masked_faces):
    ious, coverage = [], []
    for masked, alpha, landmarks, _ in masked_faces:
        region, method = segment.segment_mask(masked, landmarks)
        assert region.shape == (256, 256) and region.dtype == bool and method == "mask"
        truth = alpha > 0.5
        ious.append(iou(region, truth))
        coverage.append((region & truth).sum() / truth.sum())
    assert np.mean(ious) >= MIN_MEAN_IOU, ious
    assert np.mean(coverage) >= MIN_MEAN_COVERAGE, coverage
    assert min(ious) > 0.4


def test_canonical_landmarks_by_default(masked_faces):
    masked, alpha, _, _ = next(f for f in masked_faces if not f[3].startswith("gas"))
    region, _ = segment.segment_mask(masked)
    assert iou(region, alpha > 0.5) > 0.5


def test_implausible_segment_falls_back_to_the_box(masked_faces, monkeypatch):
    monkeypatch.setattr(segment, "MAX_AREA", 0.01)
    region, method = segment.segment_mask(masked_faces[0][0], masked_faces[0][2])
    assert method == "mask_fallback_box"
    np.testing.assert_array_equal(region, segment.box_region())


def test_box_region_is_the_mouth_box():
    region = segment.box_region(64)
    ys, xs = np.nonzero(region)
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (14, 32, 50, 56)


def test_trimap_keeps_the_eyes_out_and_the_seed_in():
    import cv2

    aligned = np.full((256, 256, 3), 128, np.uint8)
    labels = segment.trimap(aligned, overlay.CANONICAL)
    assert (labels[:100] == cv2.GC_BGD).all()
    assert labels[170, 128] == cv2.GC_FGD

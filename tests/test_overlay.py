"""Tests of glcic_jax.face_masks.overlay: anchors, face points, rendered masks and the hole bank."""

import numpy as np
import pytest
from PIL import Image

from glcic_jax.face_masks import overlay
from glcic_jax.faces import align, detection
from glcic_jax.holes import overlay_bank


@pytest.fixture(scope="module")
def templates_dir(shared_data):
    path = shared_data / "mask_overlays"
    if not path.is_dir():
        pytest.skip(f"mask overlays not found at {path}")
    return path


def test_every_template_file_has_anchors(templates_dir):
    names = {p.stem for p in templates_dir.glob("*.png")}
    assert names == set(overlay.TEMPLATES)
    loaded = overlay.load_templates(templates_dir)
    for rgba, anchors in loaded.values():
        assert rgba.shape[2] == 4 and max(rgba.shape[:2]) <= 512 and anchors.shape == (6, 2)


def test_canonical_face_points_are_the_documented_ones():
    points = overlay.face_points(overlay.CANONICAL)
    expected = [(49, 140), (128, 118), (207, 140), (63, 192), (128, 232), (193, 192)]
    np.testing.assert_allclose(points, expected, atol=1.0)


def test_face_points_follow_rotation_and_scale():
    angle = np.radians(20.0)
    rot = 1.5 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = overlay.CANONICAL @ rot.T + [30.0, -10.0]
    np.testing.assert_allclose(
        overlay.face_points(moved), overlay.face_points(overlay.CANONICAL) @ rot.T + [30, -10]
    )


def test_pick_variant_turns_with_the_nose():
    assert overlay.pick_variant(overlay.CANONICAL, "cloth") == "cloth"
    left, right = overlay.CANONICAL.copy(), overlay.CANONICAL.copy()
    left[2, 0] -= 20
    right[2, 0] += 20
    assert overlay.pick_variant(left, "cloth") == "cloth_left"
    assert overlay.pick_variant(right, "cloth") == "cloth_right"


def test_missing_templates_dir_is_a_clear_error(tmp_path):
    with pytest.raises(overlay.OverlayError, match="not found"):
        overlay_bank.mask_bank(32, 2, 0, templates_dir=tmp_path / "nope")


def test_mask_bank_shapes_boxes_and_determinism(templates_dir):
    masks, boxes = overlay_bank.mask_bank(64, 40, seed=3, templates_dir=templates_dir)
    assert masks.shape == (40, 64, 64) and masks.dtype == np.float32
    assert boxes.shape == (40, 4) and boxes.dtype == np.int32
    assert set(np.unique(masks)) <= {0.0, 1.0}
    for mask, (top, left, height, width) in zip(masks, boxes):
        ys, xs = np.nonzero(mask)
        assert (top, left, height, width) == (ys.min(), xs.min(), np.ptp(ys) + 1, np.ptp(xs) + 1)
        # A face mask: the lower face (the turned templates on a frontal face
        # reach up to y ~88 of 256, just under the eyes at 96) and over the mouth.
        assert top >= 64 * 80 / 256 and mask[44, 32] == 1.0
    again, _ = overlay_bank.mask_bank(64, 40, seed=3, templates_dir=templates_dir)
    other, _ = overlay_bank.mask_bank(64, 40, seed=4, templates_dir=templates_dir)
    np.testing.assert_array_equal(masks, again)
    assert not np.array_equal(masks, other)
    coverage = masks.mean(axis=(1, 2))
    assert 0.1 < coverage.min() and coverage.max() < 0.5
    assert len({m.tobytes() for m in masks}) == 40  # Jitter: all different.


def test_mask_bank_scales_with_image_size(templates_dir):
    small, _ = overlay_bank.mask_bank(32, 8, seed=0, templates_dir=templates_dir)
    large, _ = overlay_bank.mask_bank(128, 8, seed=0, templates_dir=templates_dir)
    shrunk = large.reshape(8, 32, 4, 32, 4).mean(axis=(2, 4))
    assert np.abs(shrunk - small).mean() < 0.05


def test_render_masked_changes_only_the_alpha_area(faces_dir, templates_dir):
    rgb = np.asarray(Image.open(sorted((faces_dir / "test").glob("*.jpg"))[0]).convert("RGB"))
    face = detection.Detector().detect(rgb)[0]
    affine = align.alignment(face)
    aligned = np.asarray(align.warp(rgb, affine))
    landmarks = align.apply_affine(affine, face.landmarks)
    rng = np.random.default_rng(0)
    masked, alpha, name = overlay.render_masked(
        aligned, rng, landmarks, templates_dir=templates_dir
    )
    assert name in overlay.TEMPLATES and masked.shape == aligned.shape
    np.testing.assert_array_equal(masked[alpha == 0], aligned[alpha == 0])
    cover = alpha > 0.5
    assert cover[176, 128] and not cover[:90].any()  # Mouth covered, eyes free.
    assert 0.1 < cover.mean() < 0.5


@pytest.mark.parametrize("nose_shift", [0.0, 20.0])
def test_every_template_lands_on_the_face(templates_dir, nose_shift):
    """Turned templates on frontal points, or a turned face, must not fold away (affine fallback)."""
    landmarks = overlay.CANONICAL.copy()
    landmarks[2, 0] += nose_shift
    points = overlay.face_points(landmarks)
    for name in overlay.TEMPLATES:
        _, alpha, (y0, x0) = overlay.warp_template(name, points, (256, 256), templates_dir)
        area = (alpha > 0.5).sum() / 256**2
        assert 0.08 < area < 0.5, (name, area)

"""Hole samplers stay in bounds and follow the study's ranges; patches contain the hole."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glcic_jax import holes
from glcic_jax.nets import hole_filling


def test_random_holes_cover_the_studys_ranges():
    boxes = np.asarray(holes.sample_canvas_boxes(jax.random.key(0), "random", 20_000))
    top, left, h, w = boxes.T
    for corner in (top, left):
        assert corner.min() == 5 and corner.max() == 145
    for side in (h, w):
        assert side.min() == 48 and side.max() == 96
    assert (top + h).max() <= 241 and (left + w).max() <= 241
    # Uniform: each of the 141 corner values turns up about 20000/141 times.
    counts = np.bincount(top - 5, minlength=141)
    assert counts.min() > 80 and counts.max() < 210


def test_mouth_hole_is_the_studys_box():
    boxes = np.asarray(holes.sample_canvas_boxes(jax.random.key(0), "mouth", 3))
    assert (boxes == [128, 56, 96, 144]).all()
    assert holes.scale_boxes(boxes, 64)[0].tolist() == [32, 14, 24, 36]
    assert holes.scale_boxes(boxes, 256)[0].tolist() == [128, 56, 96, 144]


def test_mouth_sized_control_holes():
    boxes = np.asarray(holes.sample_canvas_boxes(jax.random.key(0), "random_mouthsize", 20_000))
    top, left, h, w = boxes.T
    assert (h == 96).all() and (w == 144).all()
    assert top.min() == 5 and (top + h).max() == 241
    assert left.min() == 5 and (left + w).max() == 241


def test_launcher_offers_every_regime():
    import launch

    assert tuple(launch.FLAGS["mask"].parser.enum_values) == holes.REGIMES


def test_unknown_regime_is_refused():
    with pytest.raises(ValueError, match="unknown mask regime"):
        holes.sample_canvas_boxes(jax.random.key(0), "square", 1)


@pytest.mark.parametrize("size", [32, 64, 128, 256])
@pytest.mark.parametrize("regime", holes.BOX_REGIMES)
def test_scaled_holes_in_bounds_and_inside_the_local_patch(size, regime):
    boxes = holes.sample_boxes(jax.random.key(1), regime, 2000, size)
    m = np.asarray(holes.boxes_to_masks(boxes, size))
    assert m.shape == (2000, size, size, 1)
    np.testing.assert_array_equal(m.sum(axis=(1, 2, 3)), boxes[:, 2] * boxes[:, 3])
    p = holes.patch_size(size)
    origins = np.asarray(holes.hole_patch_origins(boxes, size, p))
    boxes = np.asarray(boxes)
    assert (origins >= 0).all() and (origins + p <= size).all()
    assert (origins <= boxes[:, :2]).all()
    assert (origins + p >= boxes[:, :2] + boxes[:, 2:]).all()


def test_real_patches_are_uniform_over_valid_positions():
    origins = np.asarray(holes.random_patch_origins(jax.random.key(0), 5000, 64, 40))
    assert origins.min() == 0 and origins.max() == 64 - 40


def test_the_papers_local_patch_holds_the_random_holes_only():
    """local_patch=128 (the paper's): half the image side at every size."""
    for size in (64, 256):
        assert holes.patch_size(size, 128) == size // 2
    size, p = 256, holes.patch_size(256, 128)
    for regime, holds in (("random", True), ("mouth", False)):
        boxes = np.asarray(holes.sample_boxes(jax.random.key(1), regime, 500, size))
        origins = np.asarray(holes.hole_patch_origins(boxes, size, p))
        assert (origins + p <= size).all()
        inside = (origins <= boxes[:, :2]) & (origins + p >= boxes[:, :2] + boxes[:, 2:])
        assert inside.all() == holds


def test_crop_and_fill():
    images = jnp.arange(2 * 8 * 8 * 3, dtype=jnp.float32).reshape(2, 8, 8, 3)
    crops = holes.crop_patches(images, jnp.asarray([[1, 2], [3, 0]]), 4)
    np.testing.assert_array_equal(crops[0], images[0, 1:5, 2:6])
    np.testing.assert_array_equal(crops[1], images[1, 3:7, 0:4])
    hole = holes.boxes_to_masks(jnp.asarray([[2, 2, 3, 3]] * 2), 8)
    x = hole_filling.fill_holes(images, hole, jnp.asarray([0.1, 0.2, 0.3]))
    assert x.shape == (2, 8, 8, 4)
    np.testing.assert_allclose(x[0, 3, 3], [0.1, 0.2, 0.3, 1.0])
    np.testing.assert_array_equal(x[0, 0, 0, :3], images[0, 0, 0])
    assert x[0, 0, 0, 3] == 0.0


def test_overlay_holes_come_from_the_bank(shared_data):
    bank = holes.hole_bank("overlay", 64, 12, seed=0)
    bank_masks, bank_boxes = (np.asarray(a) for a in bank)
    assert bank_masks.shape == (12, 64, 64) and bank_boxes.shape == (12, 4)
    hole, boxes = holes.sample_holes(jax.random.key(0), "overlay", 50, 64, bank)
    hole, boxes = np.asarray(hole), np.asarray(boxes)
    assert hole.shape == (50, 64, 64, 1) and set(np.unique(hole)) <= {0.0, 1.0}
    for m, (top, left, h, w) in zip(hole[..., 0], boxes):
        ys, xs = np.nonzero(m)
        assert (ys.min(), xs.min(), ys.max() + 1 - ys.min(), xs.max() + 1 - xs.min()) == (
            top, left, h, w
        )  # fmt: skip
        # a face mask covers the lower face: nose to chin, centred
        assert 20 <= top + h / 2 <= 56 and 22 <= left + w / 2 <= 42
    assert holes.hole_bank("mouth", 64, 12, seed=0) is None
    with pytest.raises(ValueError, match="hole bank"):
        holes.sample_holes(jax.random.key(0), "overlay", 2, 64)

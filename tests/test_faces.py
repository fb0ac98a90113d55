"""Tests of glcic_jax.faces.detection: face choice, mouth check, the alignment affine and the warp."""

import math

import cv2
import numpy as np
import pytest
from PIL import Image

from glcic_jax.dataset import filters
from glcic_jax.faces import align, detection


def _face(eye_l, eye_r, nose, mouth_l, mouth_r, box=(0, 0, 100, 100), confidence=0.99):
    points = np.array([eye_l, eye_r, nose, mouth_l, mouth_r], np.float64)
    return detection.Face(box=box, confidence=confidence, landmarks=points)


def _rotated_face(angle_deg, center=(200.0, 150.0), eye_dist=40.0, eye_mouth=45.0):
    """An upright face model rotated by angle_deg about `center`."""
    upright = np.array(
        [
            [-eye_dist / 2, 0],
            [eye_dist / 2, 0],
            [0, eye_mouth * 0.55],
            [-eye_dist * 0.45, eye_mouth],
            [eye_dist * 0.45, eye_mouth],
        ]
    )
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return _face(*(upright @ rot.T + np.array(center)), box=(150, 100, 250, 230))


def test_mouth_hole_is_the_study_box():
    """x=56, y=128, 144 wide, 96 high: one box, in the canvas's and the holes' conventions."""
    from glcic_jax import holes

    assert align.MOUTH_BOX == (56, 128, 200, 224)
    assert holes.MOUTH_HOLE == (128, 56, 96, 144)  # (top, left, height, width)


@pytest.mark.parametrize("angle", [-30.0, -7.5, 0.0, 12.0, 25.0])
def test_alignment_levels_eyes_and_places_mouth(angle):
    face = _rotated_face(angle)
    affine = align.alignment(face)
    out = align.apply_affine(affine, face.landmarks)
    assert out[0, 1] == pytest.approx(out[1, 1], abs=1e-6)  # Eyes level.
    mouth = (out[3] + out[4]) / 2
    assert mouth[1] == pytest.approx(align.MOUTH_TARGET[1], abs=1e-6)
    assert abs(mouth[0] - align.MOUTH_TARGET[0]) < 1e-6  # Symmetric model face.
    assert mouth[1] - out[0, 1] == pytest.approx(align.EYE_MOUTH_PX)
    assert filters.in_box(out[3:])


def test_alignment_scales_to_output_size():
    face = _rotated_face(10.0)
    a256, a64 = align.alignment(face, 256), align.alignment(face, 64)
    np.testing.assert_allclose(a64, a256 / 4, atol=1e-9)


def test_warp_matches_affine():
    """A blurred dot lands where the affine says, for rotated and scaled faces."""
    for angle in (0.0, 17.0, -33.0):
        face = _rotated_face(angle)
        affine = align.alignment(face)
        image = np.zeros((300, 400, 3), np.uint8)
        dot = np.array([207.0, 163.0])
        image[int(dot[1]), int(dot[0])] = 255
        image = cv2.GaussianBlur(image, (0, 0), 2.0)
        out = np.asarray(align.warp(image, affine)).astype(np.float64)[..., 0]
        assert out.shape == (256, 256)
        ys, xs = np.mgrid[:256, :256]
        centroid = np.array([(xs * out).sum(), (ys * out).sum()]) / out.sum()
        expected = align.apply_affine(affine, dot[None])[0]
        np.testing.assert_allclose(centroid, expected, atol=0.3)


def test_warp_copies_upright_face_at_scale_one():
    """No rotation, unit scale, integer offset: the output is the source crop itself."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)
    face = _face((180, 100), (220, 100), (200, 140), (185, 180), (215, 180))
    affine = align.alignment(face)
    np.testing.assert_allclose(affine, [[1, 0, -72], [0, 1, -4]], atol=1e-9)
    out = np.asarray(align.warp(image, affine))
    np.testing.assert_array_equal(out, image[4:260, 72:328])


def test_outside_fraction():
    face = _face((180, 100), (220, 100), (200, 140), (185, 180), (215, 180))
    affine = align.alignment(face)
    assert align.outside_fraction(affine, (400, 400), 256) == 0.0
    # The canvas spans x 72..328, y 4..260 of the source: a 300-wide photo loses 28 columns.
    assert align.outside_fraction(affine, (300, 400), 256) == pytest.approx(28 / 256, abs=0.02)


def test_dominant_face():
    big = _face((0, 0), (1, 0), (0, 1), (0, 2), (1, 2), box=(0, 0, 100, 100))
    similar = _face((0, 0), (1, 0), (0, 1), (0, 2), (1, 2), box=(200, 0, 290, 90))
    small = _face((0, 0), (1, 0), (0, 1), (0, 2), (1, 2), box=(200, 0, 230, 30))
    unsure = _face((0, 0), (1, 0), (0, 1), (0, 2), (1, 2), box=(0, 0, 200, 200), confidence=0.5)
    assert detection.dominant_face([]) == (None, "no_face")
    assert detection.dominant_face([unsure]) == (None, "no_face")
    assert detection.dominant_face([small, big, unsure]) == (big, "")
    assert detection.dominant_face([big, similar]) == (None, "multiple_faces")
    assert detection.dominant_face([big, similar], dominance=0.9) == (big, "")


def test_mouth_visible():
    good = _rotated_face(20.0)
    assert filters.mouth_visible(good, (400, 300))
    assert not filters.mouth_visible(good, (210, 300))  # Right eye beyond the photo.
    mouth_above_nose = _face((80, 100), (120, 100), (100, 150), (85, 130), (115, 130))
    assert not filters.mouth_visible(mouth_above_nose, (300, 300))
    tiny_mouth = _face((80, 100), (120, 100), (100, 120), (99, 140), (101, 140))
    assert not filters.mouth_visible(tiny_mouth, (300, 300))


def test_in_box():
    assert filters.in_box(np.array([[56, 128], [200, 224]]))
    assert not filters.in_box(np.array([[100, 150], [201, 150]]))
    assert filters.in_box(np.array([[14, 32]]), size=64)


def test_detector_on_a_real_photo(shared_data):
    path = sorted((shared_data / "faces" / "train").glob("*.jpg"))[0]
    rgb = np.asarray(Image.open(path).convert("RGB"))
    detector = detection.Detector()
    found = detector.detect(rgb)
    face, reason = detection.dominant_face(found)
    assert reason == ""
    eye_y = face.landmarks[:2, 1].mean()
    assert eye_y < face.point("nose")[1] < face.point("mouth_left")[1]
    assert filters.mouth_visible(face, (rgb.shape[1], rgb.shape[0]))
    # Shrinking for detection gives the same face, in source pixels.
    shrunk = detection.Detector(max_side=100).detect(rgb)
    np.testing.assert_allclose(shrunk[0].landmarks, face.landmarks, atol=6)
    assert detector.detect(np.full((120, 120, 3), 128, np.uint8)) == []


def test_mouth_skin_fraction_synthetic():
    skin = np.zeros((256, 256, 3), np.uint8) + np.array([200, 150, 120], np.uint8)
    assert filters.mouth_skin_fraction(skin) == 1.0
    masked = skin.copy()
    masked[130:256, 50:210] = (90, 140, 220)  # A blue surgical mask.
    assert filters.mouth_skin_fraction(masked) == 0.0
    grey = np.full((64, 64, 3), 128, np.uint8)
    grey[40:, :] = 20  # A black mask on a grey photo: chroma cannot tell.
    assert filters.mouth_skin_fraction(grey) == 1.0


def test_mouth_skin_fraction_with_mask_overlays(shared_data):
    """Bare LFW faces pass, the same faces under the shared mask overlays do not."""
    overlays = shared_data / "mask_overlays"
    if not overlays.is_dir():
        pytest.skip(f"no mask overlays at {overlays}")
    detector = detection.Detector()
    paths = sorted((shared_data / "faces" / "train").glob("*.jpg"))[:6]
    names = ("surgical", "cloth", "KN95", "surgical_blue", "N95", "surgical_green")
    for path, name in zip(paths, names):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        face, _ = detection.dominant_face(detector.detect(rgb))
        aligned = align.warp(rgb, align.alignment(face))
        assert filters.mouth_skin_fraction(np.asarray(aligned)) >= 0.4, path.name
        mask = Image.open(overlays / f"{name}.png").convert("RGBA")
        mask = mask.resize((170, round(170 * mask.height / mask.width)))
        aligned.paste(mask, (128 - 85, 120), mask)
        assert filters.mouth_skin_fraction(np.asarray(aligned)) < 0.4, (path.name, name)


def test_mirrored_face_maps_back_and_keeps_left_left():
    face = _rotated_face(10.0)
    width = 400
    back = detection.mirrored(face, width)
    x0, y0, x1, y1 = face.box
    assert back.box == (width - x1, y0, width - x0, y1)
    # The image-left eye of the mirrored face is the original's right eye, reflected.
    np.testing.assert_allclose(
        back.point("left_eye"), [width - 1 - face.point("right_eye")[0], face.point("right_eye")[1]]
    )
    assert back.point("left_eye")[0] < back.point("right_eye")[0]
    again = detection.mirrored(back, width)
    assert again.box == face.box
    np.testing.assert_allclose(again.landmarks, face.landmarks)


def test_rescaled_maps_pixel_centres_and_box_edges():
    face = _face(
        (9.5, 9.5), (19.5, 9.5), (14.5, 15.5), (11.5, 19.5), (17.5, 19.5), box=(4, 6, 24, 30)
    )
    back = detection.rescaled(face, 2.0, 2.0)
    assert back.box == (2.0, 3.0, 12.0, 15.0)
    # Pixels 9 and 10 of the doubled image both come from source pixel 4.5 +- 0.25.
    np.testing.assert_allclose(back.point("left_eye"), (4.5, 4.5))


def test_merge_duplicates_keeps_the_most_confident_of_each_face():
    a = _face((10, 10), (30, 10), (20, 20), (12, 30), (28, 30), box=(0, 0, 40, 40), confidence=0.8)
    a_flipped = _face(
        (11, 10), (31, 10), (21, 21), (13, 30), (29, 30), box=(2, 1, 42, 41), confidence=0.95
    )
    b = _face(
        (110, 10), (130, 10), (120, 20), (112, 30), (128, 30), box=(100, 0, 140, 40), confidence=0.6
    )
    # A box on part of face a (its eyes), more confident than b: part of a, not a face.
    eyes = _face((4, 3), (14, 3), (9, 6), (5, 9), (13, 9), box=(5, 5, 25, 20), confidence=0.9)
    kept = detection.merge_duplicates([a, b, a_flipped, eyes])
    assert kept == [a_flipped, b]
    assert detection.box_iou(a.box, a_flipped.box) > detection.DUPLICATE_IOU
    assert detection.box_iou(a.box, b.box) == 0.0
    assert detection.box_iou(eyes.box, a_flipped.box) < detection.DUPLICATE_IOU
    assert detection.box_nesting(eyes.box, a_flipped.box) == 1.0


def test_detector_resizes_small_photos_up_and_large_ones_down():
    detector = detection.Detector()
    assert detector.scale_for(150, 150) == detection.MAX_UPSCALE
    assert detector.scale_for(300, 400) == detection.UPSCALE_TO / 400
    assert detector.scale_for(600, 800) == 1.0
    assert detector.scale_for(3000, 2000) == 1024 / 3000
    assert detection.Detector(**detection.MTCNN_ALONE).scale_for(150, 150) == 1.0

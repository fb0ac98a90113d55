"""Ear loops and ties on synthetic masked faces: where they attach, where they go, what they add to the label."""

import dataclasses

import cv2
import numpy as np

from glcic_jax.face_masks import overlay
from glcic_jax.segmenter.synthetic import generator as synthetic
from glcic_jax.segmenter.synthetic import scene, straps

SIZE = 128


def test_corners_lie_on_the_mask_outline_for_every_template(templates_dir):
    """A respirator's anchors a, c are on the cheeks, outside its cup: the corners are not."""
    points = overlay.face_points(overlay.CANONICAL)
    for template in overlay.TEMPLATES:
        _, alpha, (y0, x0) = overlay.warp_template(template, points, (256, 256), templates_dir)
        hom = overlay.homography(template, points, templates_dir)
        inside = cv2.dilate((alpha > 0.5).astype(np.uint8), np.ones((5, 5), np.uint8))
        for x, y in straps.corners(template, hom, templates_dir):
            assert inside[round(y) - y0, round(x) - x0], (template, x, y)
        upper_left, upper_right, lower_left, lower_right = straps.corners(
            template, hom, templates_dir
        )
        assert upper_left[0] < upper_right[0] and lower_left[0] < lower_right[0], template
        assert upper_left[1] < lower_left[1] and upper_right[1] < lower_right[1], template


def test_ears_sit_beside_the_face_and_the_far_one_hides_on_a_turned_head():
    frontal = scene.FaceFrame.of(overlay.CANONICAL)
    (left, left_shows), (right, right_shows) = (straps.ear(frontal, s, 0.5) for s in (-1, 1))
    assert left_shows and right_shows
    assert left[0] < -1.0 and right[0] > 1.0 and abs(left[0] + right[0]) < 0.1
    turned = overlay.CANONICAL.copy()
    turned[2, 0] += 0.3 * np.linalg.norm(turned[1] - turned[0])  # nose 0.3 eye distances right
    face = scene.FaceFrame.of(turned)
    assert face.yaw > 0.25
    (near, near_shows), (far, far_shows) = (straps.ear(face, s, 0.5) for s in (-1, 1))
    assert near_shows and not far_shows


def test_cords_run_from_the_mask_to_the_ears(templates_dir):
    points = overlay.face_points(overlay.CANONICAL)
    face = scene.FaceFrame.of(overlay.CANONICAL)
    hom = overlay.homography("surgical", points, templates_dir)
    attach = straps.corners("surgical", hom, templates_dir)
    rng = np.random.default_rng(0)
    colour, alpha = straps.draw(face, attach, "ear_loops", rng, (256, 256), width_px=3.0)
    assert colour.shape == (256, 256, 3) and alpha.shape == (256, 256)
    cords = alpha > 0.5
    for x, y in attach:  # each starts at its corner
        assert cords[round(y) - 2 : round(y) + 3, round(x) - 2 : round(x) + 3].any()
    for side in (-1, 1):  # and reaches its ear's top
        top = face.image(straps.ear(face, side, 0.05)[0])
        x, y = np.round(top).astype(int)
        assert cords[y - 8 : y + 9, x - 8 : x + 9].any(), side
    # 3 px wide: area about width x length, nowhere near the mask's
    assert 0.002 < cords.mean() < 0.03
    assert straps.kind_for("surgical_blue_left") == "ear_loops"
    assert straps.kind_for("N95") == straps.kind_for("gas_right") == "ties"


def test_straps_add_to_the_label_and_change_nothing_else(
    canonical_face_photo, templates_dir, monkeypatch
):
    """With and without straps one seed renders the same sample, but for the cords."""
    clean = dataclasses.replace(synthetic._TRAIN, p_hand=0.0, p_hair=0.0, p_glasses=0.0)
    rgb, landmarks = canonical_face_photo
    added = 0
    for seed in range(8):
        samples = []
        for p in (0.0, 1.0):
            monkeypatch.setitem(synthetic._REGIMES, "train", dataclasses.replace(clean, p_straps=p))
            samples.append(
                synthetic.synthesize(
                    rgb, landmarks, np.random.default_rng(seed), SIZE, "train", templates_dir,
                    unmasked=0.0,
                )
            )  # fmt: skip
        bare, strapped = samples
        assert bare.template == strapped.template and bare.appearance == strapped.appearance
        assert not (bare.label & ~strapped.label).any()  # the cords only add
        new = strapped.label & ~bare.label
        added += new.sum()
        far = cv2.dilate(new.astype(np.uint8), np.ones((17, 17), np.uint8)) == 0
        # Beyond a JPEG block from the cords the two images are the same but for compression noise.
        diff = np.abs(bare.image.astype(int) - strapped.image.astype(int)).max(-1)
        assert np.mean(diff[far] > 12) < 0.02, seed
    assert added > 8 * 20  # cords are drawn and labelled

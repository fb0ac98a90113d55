"""The detector's scoring (glcic_jax/evaluation/detection.py) on hand-made detections.

Every expected number is counted by hand from the inputs written here; no
detector or network runs (fakes stand in where the scoring calls one).
"""

import math
import types

import numpy as np
import pytest

from glcic_jax.evaluation import detection as scoring
from glcic_jax.faces import detection

FACE_BOX = (0.0, 0.0, 10.0, 10.0)


def face(box, confidence):
    return detection.Face(tuple(float(v) for v in box), confidence, np.zeros((5, 2)))


def test_recall_and_false_positives_count_scores_at_or_above_each_threshold():
    scores = np.array([0.95, 0.6, 0.0, 0.8])
    assert scoring.recall(scores, [0.5, 0.7, 0.9]) == [0.75, 0.5, 0.25]
    assert scoring.false_positives(scores, [0.5, 0.7, 0.9]) == [3, 2, 1]
    assert scoring.recall([0.7], [0.7]) == [1.0]  # a score at the threshold is found
    assert scoring.false_positives([], [0.5]) == [0]


def test_recall_of_no_photos_is_nan():
    assert all(math.isnan(r) for r in scoring.recall(np.array([]), [0.5, 0.9]))


def test_best_confidence_counts_only_detections_on_the_face_box():
    faces = [
        face(FACE_BOX, 0.6),  # IoU 1
        face((6, 0, 16, 10), 0.99),  # IoU 40 / 160 = 0.25: off the face
        face((100, 100, 110, 110), 0.98),  # elsewhere
        face((5, 0, 15, 10), 0.7),  # IoU 50 / 150 = 1/3: on the face
    ]
    assert scoring.best_confidence(faces) == 0.99
    assert scoring.best_confidence(faces, FACE_BOX) == 0.7
    assert scoring.best_confidence(faces[1:3], FACE_BOX) == 0.0
    assert scoring.best_confidence([]) == 0.0


def test_score_runs_the_detector_on_each_photo():
    photos = [
        scoring.Photo("a", np.zeros((4, 4, 3), np.uint8), "real"),
        scoring.Photo("b", np.ones((4, 4, 3), np.uint8), "cloth", FACE_BOX),
    ]
    found = {0: [face((50, 50, 60, 60), 0.8)], 1: [face((50, 50, 60, 60), 0.9)]}
    detector = types.SimpleNamespace(detect=lambda rgb: found[int(rgb[0, 0, 0])])
    scores, ms = scoring.score(detector, iter(photos))  # any iterable, as a progress bar
    assert scores.tolist() == [0.8, 0.0]  # b's detection is off its face box
    assert ms >= 0.0


def test_scores_by_group_keeps_the_order_asked_and_skips_empty_groups():
    photos = [scoring.Photo(str(i), np.zeros((1, 1, 3)), g) for i, g in enumerate("abac")]
    groups = scoring.scores_by_group(photos, np.array([1.0, 2.0, 3.0, 4.0]), ("b", "a", "z"))
    assert list(groups) == ["b", "a"]
    assert groups["b"].tolist() == [2.0] and groups["a"].tolist() == [1.0, 3.0]


def test_confidence_histogram_puts_one_in_the_last_bin():
    counts = [c for _, _, c in scoring.confidence_histogram([0.0, 0.49, 0.5, 0.95, 0.99, 1.0])]
    assert counts == [2, 1, 0, 0, 0, 1, 2]
    lows = [lo for lo, _, _ in scoring.confidence_histogram([])]
    assert lows == [0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99]


def test_lowest_clean_threshold_is_the_first_step_above_every_negative():
    assert scoring.lowest_clean_threshold([0.625, 0.3]) == pytest.approx(0.63)
    assert scoring.lowest_clean_threshold([0.2]) == pytest.approx(0.5)
    assert scoring.lowest_clean_threshold([]) == pytest.approx(0.5)
    assert scoring.lowest_clean_threshold([0.995]) is None


def test_rule_evidence_asks_the_segmenter_only_from_the_rule_minimum_up():
    faces = [face(FACE_BOX, 0.95), face(FACE_BOX, 0.6), face(FACE_BOX, 0.45)]
    masked_faces = {0.6, 0.45}
    asked = []

    def is_masked(f):
        asked.append(f.confidence)
        return f.confidence in masked_faces

    assert scoring.rule_evidence(faces, is_masked, 0.9) == (True, 0.6)
    assert sorted(asked) == [0.6, 0.95]  # never 0.45: below MIN_RULE_CONFIDENCE
    assert scoring.rule_evidence(faces, is_masked, 0.99) == (False, 0.6)
    off_face = [face(FACE_BOX, 0.7), face((100, 100, 110, 110), 0.8)]
    assert scoring.rule_evidence(off_face, lambda f: True, 0.9, FACE_BOX) == (False, 0.7)
    assert scoring.rule_evidence([], lambda f: True, 0.9) == (False, 0.0)


def test_rule_found_sweeps_masked_min_confidence():
    found = scoring.rule_found([True, False, False, False], [0.0, 0.65, 0.55, 0.0], [0.5, 0.6, 0.7])
    assert [int(f.sum()) for f in found] == [3, 2, 1]
    assert found[1].tolist() == [True, True, False, False]


def test_masked_rule_runs_the_detector_and_the_segmenter():
    photos = [
        scoring.Photo("sure", np.full((2, 2, 3), 0, np.uint8), "real"),
        scoring.Photo("masked", np.full((2, 2, 3), 1, np.uint8), "real"),
        scoring.Photo("bare", np.full((2, 2, 3), 2, np.uint8), "real"),
    ]
    found = {0: [face(FACE_BOX, 0.97)], 1: [face(FACE_BOX, 0.75)], 2: [face(FACE_BOX, 0.8)]}
    detector = types.SimpleNamespace(detect=lambda rgb: found[int(rgb[0, 0, 0])])
    net = types.SimpleNamespace(
        segment=lambda rgb, f: types.SimpleNamespace(masked=int(rgb[0, 0, 0]) == 1)
    )
    sure, masked = scoring.masked_rule(detector, net, photos, 0.9)
    assert sure.tolist() == [True, False, False]
    assert masked.tolist() == [0.0, 0.75, 0.0]


def test_clothes_crop_is_below_the_chin_and_one_and_a_half_faces_wide():
    rgb = np.arange(300 * 200 * 3, dtype=np.int64).reshape(300, 200, 3)
    # A 60 x 80 face: 30 px each side, from 40 px under the chin: rows 160-, columns 20-140.
    crop = scoring.clothes_crop(rgb, (50, 40, 110, 120))
    assert crop.shape == (140, 120, 3)
    np.testing.assert_array_equal(crop, rgb[160:, 20:140])
    assert scoring.clothes_crop(rgb, (50, 150, 110, 230)) is None  # 30 rows left
    assert scoring.clothes_crop(rgb, (30, 40, 50, 60)) is None  # 40 columns wide


def test_clothes_negative_needs_exactly_one_sure_face():
    rgb = np.zeros((300, 200, 3), np.uint8)
    photo = scoring.Photo("0002/0001.jpg", rgb, "real")
    box = (50, 40, 110, 120)
    negative = scoring.clothes_negative(photo, [face(box, 0.95)])
    assert (negative.name, negative.group, negative.rgb.shape) == (
        "clothes:0002/0001.jpg",
        "negative",
        (140, 120, 3),
    )
    assert scoring.clothes_negative(photo, [face(box, 0.94)]) is None
    assert scoring.clothes_negative(photo, [face(box, 0.99), face(box, 0.99)]) is None
    assert scoring.clothes_negative(photo, []) is None
    advert = scoring.Photo("0001/0014.jpg", rgb, "real")  # in NOT_NEGATIVE
    assert scoring.clothes_negative(advert, [face(box, 0.99)]) is None


def test_natural_negatives_are_whole_and_their_central_half():
    rgb = np.arange(8 * 12 * 3).reshape(8, 12, 3)
    whole, centre = scoring.natural_negatives([("brick", rgb)])
    assert (whole.name, centre.name) == ("brick", "brick:centre")
    np.testing.assert_array_equal(centre.rgb, rgb[2:6, 3:9])
    assert whole.group == centre.group == "negative"


def test_spread_keeps_limit_items_evenly():
    assert scoring.spread(list(range(10)), 3) == [0, 3, 6]
    assert scoring.spread(list(range(10)), None) == list(range(10))
    assert scoring.spread([1, 2], 5) == [1, 2]


def test_missed_photos_and_their_contact_sheet():
    photos = [
        scoring.Photo(f"p{i}", np.full((h, w, 3), 200, np.uint8), "real")
        for i, (h, w) in enumerate([(100, 50), (60, 60), (30, 90)])
    ]
    missed = scoring.missed(photos, np.array([0.5, 0.95, 0.2]), 0.9)
    assert [(p.name, s) for p, s in missed] == [("p0", 0.5), ("p2", 0.2)]
    sheet = scoring.contact_sheet(missed)
    assert sheet.shape == (192 + 14, 8 * 192, 3)  # one row of 8 tiles, 6 of them blank
    assert sheet[14:, :96].min() == 200  # p0, 100 x 50 scaled to 192 x 96
    assert sheet[:, 2 * 192 :].max() == 0
    assert scoring.contact_sheet([]) is None
    assert scoring.contact_sheet(missed * 5).shape == (2 * (192 + 14), 8 * 192, 3)

"""Synthetic masked faces for the mask segmenter: labels, determinism, framing, held-out families, sources."""

import dataclasses

import cv2
import numpy as np
import pytest

from glcic_jax.face_masks import overlay
from glcic_jax.faces import detection
from glcic_jax.segmenter.synthetic import face_sources, prints, scene
from glcic_jax.segmenter.synthetic import generator as synthetic
from glcic_jax.segmenter.synthetic import mask as synthetic_mask

SIZE = 96


def _render(canonical_face_photo, templates_dir, seed, **kw):
    rgb, landmarks = canonical_face_photo
    kw.setdefault("split", "train")
    return synthetic.synthesize(
        rgb, landmarks, np.random.default_rng(seed), SIZE, templates_dir=templates_dir, **kw
    )


def test_masked_labels_are_nonempty_and_bare_faces_empty(canonical_face_photo, templates_dir):
    for seed in range(6):
        for split in synthetic.SPLITS:
            masked = _render(canonical_face_photo, templates_dir, seed, split=split, unmasked=0.0)
            assert masked.image.shape == (SIZE, SIZE, 3) and masked.image.dtype == np.uint8
            assert masked.label.dtype == bool and masked.label.sum() > 0.03 * SIZE * SIZE
            assert masked.template in overlay.TEMPLATES and masked.appearance
            bare = _render(canonical_face_photo, templates_dir, seed, split=split, unmasked=1.0)
            assert not bare.label.any() and bare.template is None and bare.appearance == ""


def test_label_is_where_the_mask_was_pasted(canonical_face_photo, templates_dir, monkeypatch):
    # Without occluders, shadows or mask-coloured context, one seed renders the
    # same framing, fill and degradations with and without the mask: the two
    # differ inside the label (and a few pixels around it, from blur and JPEG).
    clean = dataclasses.replace(
        synthetic._TEST,
        p_hand=0.0, p_hair=0.0, p_glasses=0.0, p_shadow=0.0,
        p_neg_scarf=0.0, p_neg_beard=0.0, p_neg_hand=0.0,
        fill={**synthetic._TEST.fill, "p_near": 0.0},
    )  # fmt: skip
    monkeypatch.setitem(synthetic._REGIMES, "test", clean)
    for seed in range(6):
        masked = _render(canonical_face_photo, templates_dir, seed, split="test", unmasked=0.0)
        bare = _render(canonical_face_photo, templates_dir, seed, split="test", unmasked=1.0)
        diff = np.abs(masked.image.astype(float) - bare.image.astype(float)).mean(-1)
        grown = lambda k: cv2.dilate(masked.label.astype(np.uint8), np.ones((k, k))) > 0  # noqa: E731
        assert (diff[masked.label] > 3).mean() > 0.95  # every label pixel was painted
        assert (diff[~grown(5)] > 8).mean() < 0.1  # little changed 3 px off the label
        assert diff[~grown(17)].mean() < 1.0


def test_same_seed_same_sample(canonical_face_photo, templates_dir):
    for seed in (3, 11):
        a = _render(canonical_face_photo, templates_dir, seed)
        b = _render(canonical_face_photo, templates_dir, seed)
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.label, b.label)
        assert (a.template, a.yaw, a.appearance) == (b.template, b.yaw, b.appearance)
    c = _render(canonical_face_photo, templates_dir, 4)
    assert not np.array_equal(a.image, c.image)


def test_whole_label_inside_the_crop_for_frontal_faces(canonical_face_photo, templates_dir):
    for seed in range(30):
        for split in synthetic.SPLITS:
            label = _render(
                canonical_face_photo, templates_dir, seed, split=split, unmasked=0.0
            ).label
            border = np.concatenate([label[0], label[-1], label[:, 0], label[:, -1]])
            assert label.any() and not border.any(), (seed, split)


def test_test_split_draws_only_held_out_colours_and_prints(canonical_face_photo, templates_dir):
    allowed = {"own", "solid:chromatic", "solid:pastel"} | {
        f"print:{p}" for p in prints.TEST_PRINTS
    }
    seen = {
        _render(canonical_face_photo, templates_dir, s, split="test", unmasked=0.0).appearance
        for s in range(40)
    }
    assert seen <= allowed and len(seen) >= 4
    train = {
        _render(canonical_face_photo, templates_dir, s, unmasked=0.0).appearance for s in range(40)
    }
    assert not train & {f"print:{p}" for p in prints.TEST_PRINTS}
    rng = np.random.default_rng(0)
    for _ in range(300):
        family, rgb = prints.colour(rng, "test")
        assert family in ("chromatic", "pastel") and prints.in_test_hues(prints.hue_of(rgb))
        family, rgb = prints.colour(rng, "train")
        if family in ("chromatic", "pastel"):
            assert not prints.in_test_hues(prints.hue_of(rgb))


def test_frontal_face_points_are_overlays_and_turned_ones_hug_the_face():
    frontal = scene.FaceFrame.of(overlay.CANONICAL)
    np.testing.assert_allclose(
        synthetic_mask.face_points(frontal), overlay.face_points(overlay.CANONICAL), atol=1e-9
    )
    turned = overlay.CANONICAL.copy()
    turned[2, 0] += 0.25 * 72  # the nose a quarter eye distance to the right
    face = scene.FaceFrame.of(turned)
    ours, theirs = (
        face.local(synthetic_mask.face_points(face)),
        face.local(overlay.face_points(turned)),
    )
    assert ours[2, 0] < theirs[2, 0] - 0.3  # the far cheek corner pulled in
    assert ours[2, 0] > face.local(turned[2])[0]  # but still beyond the nose tip


def test_sources_round_trip_and_batch(faces_dir, templates_dir, tmp_path):
    paths = sorted((faces_dir / "test").glob("*.jpg"))[:3]
    sources = face_sources.find_sources(paths, progress=False)
    assert 2 <= len(sources) <= 3
    assert all(len(s.landmarks) == len(detection.LANDMARKS) for s in sources)
    file = tmp_path / "sources.json"
    face_sources.save_sources(sources, file)
    assert face_sources.load_sources(file) == sources
    assert list(tmp_path.iterdir()) == [file]  # no temporary file left behind
    images, labels = synthetic.batch(
        sources, np.random.default_rng(1), 64, 5, "test", templates_dir
    )
    assert images.shape == (5, 64, 64, 3) and images.dtype == np.uint8
    assert labels.shape == (5, 64, 64) and labels.dtype == bool
    again = synthetic.batch(sources, np.random.default_rng(1), 64, 5, "test", templates_dir)
    np.testing.assert_array_equal(images, again[0])


def test_bad_sources_and_split_are_one_line_errors(tmp_path, canonical_face_photo):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(face_sources.SourcesError, match="cannot read face sources") as e:
        face_sources.load_sources(bad)
    assert "\n" not in str(e.value)
    with pytest.raises(face_sources.SourcesError, match="no face sources"):
        synthetic.batch([], np.random.default_rng(0), 64, 1)
    with pytest.raises(ValueError, match="split must be one of"):
        synthetic.synthesize(
            canonical_face_photo[0],
            canonical_face_photo[1],
            np.random.default_rng(0),
            64,
            split="val",
        )

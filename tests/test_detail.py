"""Tests of glcic_jax.detail: the transfer math on hand-made arrays, the bank file, and the fill it sharpens.

The last tests build a small bank from CelebA-HQ training faces and lay it on
held-out faces with pasted masks (issue 30's protocol): the detail must beat
the network's smooth fill on fine detail and LPIPS while PSNR stays within
1 dB. A bank of donors without detail leaves the fill as smooth as before, so
the bar fails it.
"""

import dataclasses
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from glcic_jax.detail import donor_bank, transfer
from glcic_jax.faces import detection

ROOT = pathlib.Path(__file__).resolve().parents[1]


def canonical_face(landmarks) -> detection.Face:
    return detection.Face((0.0, 0.0, 256.0, 256.0), 1.0, np.asarray(landmarks, np.float64))


# ---------------------------------------------------------------------------
# The math
# ---------------------------------------------------------------------------


def test_a_flat_picture_has_no_detail_and_a_fine_pattern_keeps_its_own():
    flat = np.full((40, 40), 120.0, np.float32)
    assert np.abs(transfer.high_pass(flat, 4.0)).max() < 1e-4
    yy, xx = np.mgrid[0:40, 0:40]
    fine = 100 + 20 * ((yy + xx) % 2)
    detail = transfer.high_pass(fine, 4.0)
    assert np.allclose(detail[10:30, 10:30], fine[10:30, 10:30] - 110, atol=1.0)


def test_the_fade_rises_from_the_regions_edge_and_is_zero_outside():
    region = np.zeros((30, 30), bool)
    region[5:25, 5:25] = True
    fade = transfer.fade_in(region, 4.0)
    assert fade[~region].max() == 0.0
    assert fade[15, 15] == 1.0
    assert 0.0 < fade[5, 15] < 0.5  # the edge row
    # The photo's border counts as outside.
    assert transfer.fade_in(np.ones((10, 10), bool), 4.0)[0, 5] < 0.5


def test_the_match_is_blind_to_brightness_and_contrast():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(44, 56)).astype(np.float32)
    donors = np.stack([target * 3 + 50, rng.normal(size=(44, 56)).astype(np.float32)])
    zone = np.ones((44, 56), bool)
    distances = transfer.donor_distances(target, donors, zone)
    assert distances[0] < 1e-6 < distances[1]
    assert np.argmin(distances) == 0


def test_soft_clip_keeps_texture_and_bounds_outlines():
    x = np.array([-100.0, -1.0, 0.0, 1.0, 100.0])
    y = transfer.soft_clip(x, 8.0)
    assert np.all(np.abs(y) <= 8.0)
    assert y[3] == pytest.approx(1.0, abs=0.01)
    assert transfer.match_trust(0.3, 0.6, 1.0) == 1.0
    assert transfer.match_trust(0.8, 0.6, 1.0) == pytest.approx(0.5)
    assert transfer.match_trust(1.2, 0.6, 1.0) == 0.0


def test_the_store_frame_is_the_canvas_scaled(canonical_face_photo):
    """A canonical face's canvas points land in the store frame at STORE_SCALE x their offset."""
    from glcic_jax.faces import align

    _, landmarks = canonical_face_photo
    face = canonical_face(landmarks)
    canvas = align.apply_affine(align.alignment(face), landmarks)
    store = align.apply_affine(transfer.store_affine(face), landmarks)
    offset = np.array(transfer.STORE_BOX[:2], np.float64)
    assert np.allclose(store, (canvas - offset) * transfer.STORE_SCALE, atol=1e-6)


def test_facial_hair_is_the_lip_or_chin_darker_than_the_cheeks():
    luma = np.full(transfer.STORE_SHAPE, 150.0, np.float32)
    assert transfer.facial_hair(luma) == pytest.approx(0.0, abs=1e-6)
    luma[transfer.store_zone(transfer.UPPER_LIP_ZONE)] = 90.0  # a moustache
    assert transfer.facial_hair(luma) == pytest.approx(0.4, abs=1e-6)


# ---------------------------------------------------------------------------
# The bank on a synthetic face: its file, and what add_detail may touch
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_bank(canonical_face_photo):
    """A bank of three textured copies of the canonical face photo (no parsing labels)."""
    rgb, landmarks = canonical_face_photo
    face = canonical_face(landmarks)
    donors = []
    for seed in range(3):
        noise = np.random.default_rng(seed).normal(0, 12, rgb.shape[:2])
        textured = np.clip(rgb + noise[..., None], 0, 255).astype(np.uint8)
        donors.append(donor_bank.donor_from_photo(f"d{seed}.png", textured, face))
    return donor_bank.DonorBank.from_donors(donors, "synthetic")


def test_a_bank_file_reads_back_as_written(tmp_path, synthetic_bank):
    path = tmp_path / "bank.npz"
    synthetic_bank.save(path)
    back = donor_bank.DonorBank.load(path)
    assert back.names == synthetic_bank.names
    for field in ("detail", "usable", "chroma", "pictures", "grains", "yaws", "facial_hair"):
        assert np.array_equal(getattr(back, field), getattr(synthetic_bank, field)), field


def test_a_donor_whose_grain_is_far_beyond_the_others_is_never_lent(synthetic_bank):
    n = 12
    grains = np.exp(np.random.default_rng(0).normal(1.2, 0.25, n)).astype(np.float32)
    grains[5] = grains.max() * 3  # a net veil over the skin
    bank = dataclasses.replace(
        synthetic_bank,
        names=[f"d{i}" for i in range(n)],
        grains=grains,
        facial_hair=np.zeros(n, np.float32),
        yaws=np.zeros(n, np.float32),
        pictures=np.repeat(synthetic_bank.pictures[:1], n, axis=0),
    )
    target = bank.pictures[5].copy()  # donor 5 matches the fill best
    bank.pictures[np.arange(n) != 5] += (
        np.random.default_rng(1).normal(0, 0.2, (n - 1, *target.shape)).astype(np.float32)
    )
    assert 5 not in bank.lendable() and len(bank.lendable()) == n - 1
    index, _, _ = bank.choose(target, np.ones(target.shape, bool), 0.0)
    assert index != 5
    bearded = dataclasses.replace(bank, facial_hair=np.full(n, 1.0, np.float32))
    assert len(bearded.lendable()) == n  # no shaven donor: all stay, as before


def test_a_missing_or_foreign_bank_is_one_clear_error(tmp_path):
    with pytest.raises(donor_bank.DonorBankError, match="not found"):
        donor_bank.DonorBank.load(tmp_path / "none.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(donor_bank.DonorBankError, match="unreadable"):
        donor_bank.DonorBank.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, header=np.frombuffer(b'{"format": "something else"}', np.uint8))
    with pytest.raises(donor_bank.DonorBankError, match="rebuild"):
        donor_bank.DonorBank.load(other)
    with pytest.raises(donor_bank.DonorBankError, match="no usable donor"):
        donor_bank.DonorBank.from_donors([])


def test_detail_changes_only_the_filled_pixels(canonical_face_photo, synthetic_bank):
    rgb, landmarks = canonical_face_photo
    face = canonical_face(landmarks)
    region = np.zeros(rgb.shape[:2], bool)
    region[150:210, 90:170] = True  # over the mouth
    out = rgb.copy()
    added = synthetic_bank.add_detail(out, region, face)
    assert added is not None and added["donor"] in synthetic_bank.names
    assert np.array_equal(out[~region], rgb[~region])
    assert np.any(out[region] != rgb[region])
    # An empty region: nothing to do, nothing changed.
    untouched = rgb.copy()
    assert synthetic_bank.add_detail(untouched, np.zeros_like(region), face) is None
    # A user's region on a photo without a face: no landmarks, no donor.
    faceless = detection.Face(face.box, 0.0, np.full_like(face.landmarks, np.nan))
    assert synthetic_bank.add_detail(untouched, region, faceless) is None
    assert np.array_equal(untouched, rgb)


def test_a_fill_no_donor_resembles_is_left_smooth(canonical_face_photo, synthetic_bank):
    rgb, landmarks = canonical_face_photo
    face = canonical_face(landmarks)
    region = np.zeros(rgb.shape[:2], bool)
    region[150:210, 90:170] = True
    # The photo turned upside down shades nothing like the donors (copies of the upright one).
    stranger = np.ascontiguousarray(rgb[::-1, ::-1])
    out = stranger.copy()
    assert synthetic_bank.add_detail(out, region, face) is None
    assert np.array_equal(out, stranger)


# ---------------------------------------------------------------------------
# On real faces (CelebA-HQ): the bank beats the smooth fill
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def celebahq(shared_data):
    root = shared_data / "celebahq"
    if not (root / "train" / "images").is_dir():
        pytest.skip(f"CelebA-HQ faces not found in {root}")
    return root


@pytest.fixture(scope="module")
def real_bank(celebahq):
    paths = sorted((celebahq / "train" / "images").glob("*.jpg"))[:120]
    bank, counts = donor_bank.DonorBank.build(
        paths, detection.Detector(), celebahq / "train" / "parsing"
    )
    assert counts["used"] == len(bank) >= 30, counts
    return bank


@pytest.fixture(scope="module")
def smooth_fills(celebahq):
    """Eight held-out faces with pasted masks, completed by the default pipeline given the true mask."""
    from glcic_jax.completion import inference, photo
    from glcic_jax.evaluation import photo_resolution as pr

    photos, _ = pr.pasted_photos(pr.held_out_paths(celebahq / "test" / "images")[40:48])
    completer = photo.PhotoCompleter(inference.Completer.load(inference.PHOTO_MODEL, batch_size=1))
    return photos, [completer.complete(p.masked, "file", user_mask=p.mask) for p in photos]


def scores(photos, outputs):
    from glcic_jax.evaluation import fine_detail, metrics, perceptual

    truth = np.stack([metrics.hole_crop(p.truth, p.mask, 160) for p in photos])
    fills = np.stack([metrics.hole_crop(o, p.mask, 160) for o, p in zip(outputs, photos)])
    return dict(
        lpips=float(np.mean(perceptual.lpips(truth, fills))),
        detail=float(np.median([fine_detail.detail_ratio(p.truth, o, p.mask) for o, p in zip(outputs, photos)])),
        psnr=float(np.mean([metrics.psnr(metrics.to_float01(p.truth), metrics.to_float01(o), p.mask) for o, p in zip(outputs, photos)])),
    )  # fmt: skip


def beats_the_smooth_fill(bank, photos, fills) -> bool:
    from glcic_jax.evaluation import photo_resolution as pr

    smooth = scores(photos, [f.completed for f in fills])
    detailed = scores(photos, [pr.with_detail(f, bank) for f in fills])
    print("smooth", smooth, "detailed", detailed)
    return (
        detailed["detail"] > 2 * smooth["detail"]
        and detailed["lpips"] < smooth["lpips"] - 0.05
        and detailed["psnr"] > smooth["psnr"] - 1.0
    )


def test_donor_detail_beats_the_smooth_fill_on_held_out_faces(real_bank, smooth_fills):
    assert beats_the_smooth_fill(real_bank, *smooth_fills)


def test_a_bank_without_detail_fails_the_same_bar(real_bank, smooth_fills):
    blank = dataclasses.replace(
        real_bank, detail=np.zeros_like(real_bank.detail), chroma=np.zeros_like(real_bank.chroma)
    )
    assert not beats_the_smooth_fill(blank, *smooth_fills)


def test_complete_py_says_what_a_missing_bank_means(tmp_path, canonical_face_photo):
    """--donors naming no file: one error line, nothing made; the default bank missing: a note, and the run goes on."""
    from PIL import Image

    rgb, _ = canonical_face_photo
    photo_path = tmp_path / "p.png"
    Image.fromarray(rgb).save(photo_path)
    env = dict(os.environ, JAX_PLATFORMS="cpu", GLCIC_JAX_DATA=str(tmp_path / "data"))
    script = [sys.executable, str(ROOT / "experiments" / "complete.py"), f"--input={photo_path}"]

    def run(*args):
        return subprocess.run(
            [*script, f"--output={tmp_path / 'out'}", *args],
            cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
        )  # fmt: skip

    missing = run(f"--donors={tmp_path / 'none.npz'}")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines() == [
        f"error: donor bank not found: {tmp_path / 'none.npz'}"
    ]
    assert not (tmp_path / "out").exists()
    default = run()
    assert "Traceback" not in default.stderr
    assert "no donor bank at" in default.stdout and "build_donor_bank.py" in default.stdout


def test_the_match_ignores_what_lies_beyond_the_face_oval():
    """A region up to the store's edges is matched only inside the face: hair and background do not count."""
    everything = np.ones(transfer.STORE_SHAPE, bool)
    zone = transfer.matching_zone(everything)
    assert zone.any() and not zone[0, 0] and not zone[-1, -1] and not zone[-1, 0]
    centre = transfer.feature_grid(transfer.store_oval(transfer.MATCH_OVAL)) > 0.5
    assert (zone == centre).all()
    donors = np.random.default_rng(0).normal(size=(3, *zone.shape)).astype(np.float32)
    target = donors[1].copy()
    target[~zone] = 1000.0  # what lies outside the face cannot make another donor nearer
    assert int(np.argmin(transfer.donor_distances(target, donors, zone))) == 1

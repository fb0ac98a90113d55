"""Tests of the mask-crop framing: frames, hole banks, data folders, branches, grey photos."""

import json

import numpy as np
import pytest

from glcic_jax.completion import photo
from glcic_jax.face_masks import overlay
from glcic_jax.faces import align, detection, framing, mask_crop
from glcic_jax.holes import overlay_bank
from glcic_jax.training import checkpoint, configs, train


def _face():
    landmarks = np.array(
        [[120.0, 140.0], [180.0, 138.0], [150.0, 175.0], [126.0, 205.0], [176.0, 204.0]]
    )
    return detection.Face(box=(90.0, 90.0, 210.0, 240.0), confidence=1.0, landmarks=landmarks)


def test_frames_agree_with_the_alignment_and_the_mask_crop():
    face = _face()
    np.testing.assert_allclose(
        framing.photo_affine(face, "canvas", 64), align.alignment(face, 64), atol=1e-9
    )
    np.testing.assert_allclose(
        framing.reframe(align.alignment(face, 256), "canvas", 64),
        align.alignment(face, 64),
        atol=1e-9,
    )
    np.testing.assert_allclose(
        framing.photo_affine(face, "mask_crop", 96), mask_crop.crop_affine(face, 96), atol=1e-9
    )
    # The chin (canvas y 232) is in the mask crop's lower third; the canvas ends 24 px under it.
    ((x, y),) = framing.canvas_points([[128.0, 232.0]], "mask_crop", 320)
    assert abs(x - 160.0) < 1 and abs(y - 216.0) < 1
    with pytest.raises(framing.FramingError, match="framing must be one of"):
        framing.photo_affine(face, "chin", 64)


def test_canvas_region_moves_into_the_mask_crop():
    region = np.zeros((256, 256), bool)
    region[128:224, 56:200] = True  # the study's mouth box
    same = framing.canvas_region(region, "canvas", 256)
    assert (same == region).all()
    moved = framing.canvas_region(region, "mask_crop", 256)
    ys, xs = np.nonzero(moved)
    # x' = (x + 32) * 0.8, y' = (y - 16) * 0.8
    assert abs(ys.min() - 89.6) <= 1 and abs(xs.min() - 70.4) <= 1
    assert abs(moved.sum() - region.sum() * 0.64) < 0.03 * region.sum()


@pytest.fixture(scope="module")
def templates(shared_data):
    folder = shared_data / overlay.TEMPLATES_FOLDER
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    return folder


def test_mask_crop_bank_covers_the_chin_and_dilation_grows_it(templates):
    canvas, _ = overlay_bank.mask_bank(64, 24, seed=5, templates_dir=templates)
    crop, boxes = overlay_bank.mask_bank(
        64, 24, seed=5, templates_dir=templates, framing="mask_crop"
    )
    grown, _ = overlay_bank.mask_bank(
        64, 24, seed=5, templates_dir=templates, framing="mask_crop", dilation=12
    )
    # On the canvas some masks run off the bottom edge (7 of these 24); in the mask crop none do.
    assert canvas[:, -1].any(axis=-1).sum() >= 4
    assert not crop[:, -2:].any()
    assert (boxes[:, 0] + boxes[:, 2] <= 64).all()
    assert (grown >= crop).all() and grown.sum() > 1.05 * crop.sum()


def test_configs_refuse_boxes_in_the_mask_crop():
    config = configs.get_config("photo64")
    configs.validate(config)
    assert (config.mask, config.framing, config.image_size) == ("overlay", "mask_crop", 64)
    config.mask = "mouth"
    with pytest.raises(configs.ConfigError, match="framing 'mask_crop' trains with --mask=overlay"):
        configs.validate(config)
    config = configs.get_config("tiny")
    config.d_label_smoothing = 0.6
    with pytest.raises(configs.ConfigError, match="d_label_smoothing"):
        configs.validate(config)


def test_training_refuses_data_in_another_framing(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"settings": {"framing": "mask_crop"}}))
    config = configs.get_config("tiny")
    with pytest.raises(configs.ConfigError, match="prepare_data.py --framing=canvas"):
        train.check_framing(config, tmp_path)
    config.mask, config.framing = "overlay", "mask_crop"
    train.check_framing(config, tmp_path)
    train.check_framing(config, tmp_path / "not-prepared-here")  # no summary: nothing to check


def test_branch_changes_the_schedule_from_a_checkpoint(
    tiny_runs, tiny_run_config, faces_dir, tmp_path
):
    config = tiny_run_config("mouth")
    config.phase1_steps, config.d_label_smoothing = 8, 0.1  # phase 1 until 8, not 4
    step = train.train_and_evaluate(
        config, tmp_path / "b", faces_dir, branch_from=tiny_runs["mouth"], branch_step=5
    )
    assert step == 10
    logged = [
        json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    ]
    phases = {row["step"]: row["phase"] for row in logged}
    assert min(phases) == 6  # restored at 5, not restarted
    assert phases[6] == 1 and phases[10] == 2  # the source run was in phases 2 and 3 there
    assert json.loads((tmp_path / "b" / "config.json").read_text())["phase1_steps"] == 8
    with pytest.raises(checkpoint.CheckpointError, match="already has checkpoints"):
        train.train_and_evaluate(config, tmp_path / "b", faces_dir, branch_from=tiny_runs["mouth"])
    other = tiny_run_config("mouth")
    other.width = 4
    with pytest.raises(checkpoint.ConfigMismatch, match="width=8 in the checkpoint"):
        train.train_and_evaluate(other, tmp_path / "c", faces_dir, branch_from=tiny_runs["mouth"])
    assert not (tmp_path / "c" / "checkpoints").exists()  # refused before anything was copied


def test_branch_killed_before_its_first_save_resumes(
    tiny_runs, tiny_run_config, faces_dir, tmp_path
):
    config = tiny_run_config("mouth")
    config.phase1_steps = 8
    checkpoint.start_branch(tiny_runs["mouth"], 5, tmp_path, train.DATA_FILES, config)
    assert train.train_and_evaluate(config, tmp_path, faces_dir, resume=True) == 10
    config.phase1_steps = 9  # once the branch has saved, its own config holds
    with pytest.raises(checkpoint.ConfigMismatch, match="phase1_steps=8"):
        train.train_and_evaluate(config, tmp_path, faces_dir, resume=True)


class _ColourFill:
    """A completer that paints every hole pure red: what a model trained on colour faces may do."""

    image_size, framing = 32, "mask_crop"

    def complete(self, images, hole_masks):
        out = np.asarray(images, np.float32).copy()
        if out.max() > 1:
            out /= 255.0
        out[np.asarray(hole_masks, bool).reshape(out.shape[:3])] = (1.0, 0.0, 0.0)
        return out


def test_grey_photo_stays_grey_and_colour_photo_keeps_its_fill(faces_dir):
    path = sorted((faces_dir / "test").glob("*.jpg"))[0]
    rgb = photo.load_photo(path)
    grey = np.repeat(rgb.mean(-1, keepdims=True).round().astype(np.uint8), 3, axis=-1)
    completer = photo.PhotoCompleter(_ColourFill(), postprocess=False)
    for image, want_grey in ((grey, True), (rgb, False)):
        result = completer.complete(image, "box")
        assert result.region.any()
        filled = result.completed[result.region].astype(int)
        spread = filled.max(-1) - filled.min(-1)
        assert (spread.max() == 0) == want_grey
    assert photo.is_grey(grey) and not photo.is_grey(rgb)
    stamped = grey.copy()
    stamped[:4, :20] = (255, 160, 0)  # a date stamp does not make a grey photo colour
    assert photo.is_grey(stamped)


def test_box_region_is_the_same_photo_pixels_in_either_frame(faces_dir):
    path = sorted((faces_dir / "test").glob("*.jpg"))[1]
    rgb = photo.load_photo(path)
    regions = {}
    for name in framing.FRAMINGS:
        fill = _ColourFill()
        fill.framing = name
        result = photo.PhotoCompleter(fill, postprocess=False).complete(rgb, "box")
        regions[name] = result.region
        face = result.faces[0]
        want = framing.photo_affine(
            detection.Face(face.box, face.confidence, face.landmarks), name, 256
        )
        np.testing.assert_allclose(face.affine, want)
    a, b = regions["canvas"], regions["mask_crop"]
    assert a.sum() > 500 and (a & b).sum() / (a | b).sum() > 0.9


def test_prepare_writes_the_mask_crop_and_evaluation_refuses_canvas_boxes_on_it(
    faces_dir, tmp_path
):
    from glcic_jax.dataset import bootstrap, folders, prepare
    from glcic_jax.evaluation import evalset

    source = tmp_path / "photos"
    source.mkdir()
    for path in sorted((faces_dir / "test").glob("*.jpg"))[:3]:
        (source / path.name).symlink_to(path)
    settings = prepare.Settings(min_face=0, framing="mask_crop", test_fraction=0.5)
    summary = prepare.build(source, tmp_path / "out", settings)
    assert summary["kept"] == 3 and summary["mouth_landmarks_in_box"] is None
    assert prepare.read_framing(tmp_path / "out") == "mask_crop"
    row = prepare.read_manifest(tmp_path / "out")[0]
    # The mouth's landmarks sit where the mask crop puts the canvas's mouth row (y 176 -> 128).
    mouth_y = float(row["mouth_left"].split()[1])
    assert abs(mouth_y - (176 - 16) * 0.8) < 12
    assert (tmp_path / "out" / "contact_sheet.png").is_file()
    with pytest.raises(folders.DataError, match="'mask_crop' framing"):
        evalset.build_eval_set(tmp_path / "out", 32, "mouth")
    with pytest.raises(prepare.PrepareError, match="framing must be one of"):
        prepare.build(source, tmp_path / "bad", prepare.Settings(framing="chin"))
    assert bootstrap.prepared_dir("celeba10k", 2000, "mask_crop").name == "celeba10k-maskcrop-2000"

"""What a damaged checkpoint, a half-written log or a bad flag does to a run: never a traceback."""

import json
import os
import pathlib
import shutil
import struct
import subprocess
import sys
from unittest import mock

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from glcic_jax import images
from glcic_jax.dataset import folders, prepare
from glcic_jax.training import checkpoint, configs, data, steps, train, writer

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _largest_array_file(step_dir: pathlib.Path) -> pathlib.Path:
    return max((step_dir / "state").rglob("ocdbt.process_0/d/*"), key=lambda p: p.stat().st_size)


def _truncate(step_dir):
    path = _largest_array_file(step_dir)
    os.truncate(path, path.stat().st_size // 2)


def _overwrite_eight_bytes(step_dir):
    path = _largest_array_file(step_dir)
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)
        f.write(b"\xa5" * 8)


def _empty(step_dir):
    for child in step_dir.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


DAMAGE = {
    "truncated data file": _truncate,
    "deleted data file": lambda d: _largest_array_file(d).unlink(),
    "eight bytes overwritten": _overwrite_eight_bytes,
    "metadata missing": lambda d: shutil.rmtree(d / "meta"),
    "iterator state missing": lambda d: shutil.rmtree(d / "data"),
    "empty step folder": _empty,
}


def _restore_setup(workdir, config):
    record = json.loads((workdir / train.DATA_FILES).read_text())
    nets = steps.build_networks(config)
    mean_pixel = np.asarray(record["mean_pixel"], np.float32)
    abstract = jax.eval_shape(lambda: steps.init_state(config, nets, mean_pixel))

    def iterator():
        return data.training_batches(
            record["files"], size=config.image_size, batch_size=config.batch_size, seed=config.seed
        )

    return checkpoint.abstract_like(abstract), iterator


@pytest.fixture(scope="module")
def clean_step_5(tiny_runs, tiny_run_config):
    """The tiny mouth run's state and next batch at step 5, restored from its intact checkpoint."""
    config = tiny_run_config("mouth")
    abstract, iterator = _restore_setup(tiny_runs["mouth"], config)
    ckpts = checkpoint.Checkpoints(tiny_runs["mouth"], read_only=True)
    it = iterator()
    state = ckpts.restore(abstract, 5, it)
    ckpts.close()
    return jax.device_get(state), next(it)


# The abandoned reads of a failed restore must not print a traceback each.
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(
    damage, tiny_runs, tiny_run_config, clean_step_5, tmp_path, caplog
):
    config = tiny_run_config("mouth")
    workdir = tmp_path / "run"
    shutil.copytree(tiny_runs["mouth"], workdir)
    DAMAGE[damage](checkpoint.checkpoint_dir(workdir) / "10")
    abstract, iterator = _restore_setup(workdir, config)
    ckpts = checkpoint.Checkpoints(workdir)
    it = iterator()
    try:
        step, state, _ = ckpts.restore_latest_intact(abstract, it, config)
        assert ckpts.steps() == [5]  # the damaged one is set aside, out of Orbax's sight
    finally:
        ckpts.close()
    assert step == 5
    assert "checkpoint at step 10 is unusable" in caplog.text
    assert list(checkpoint.checkpoint_dir(workdir).glob("unusable-10-*"))
    want_state, want_batch = clean_step_5
    jax.tree_util.tree_map(np.testing.assert_array_equal, jax.device_get(state), want_state)
    np.testing.assert_array_equal(next(it), want_batch)  # the data stream resumes there too


def test_resume_past_a_corrupt_checkpoint_is_bit_identical(
    tiny_runs, tiny_run_config, run_state, tmp_path
):
    """Eight flipped bytes are caught on restore; training again from step 5 gives step 10 exactly."""
    config = tiny_run_config("mouth")
    workdir = tmp_path / "run"
    shutil.copytree(tiny_runs["mouth"], workdir)
    _overwrite_eight_bytes(checkpoint.checkpoint_dir(workdir) / "10")
    assert train.train_and_evaluate(config, workdir, _faces(tiny_runs), resume=True) == 10
    states = [run_state(run, 10) for run in (tiny_runs["mouth"], workdir)]
    jax.tree_util.tree_map(np.testing.assert_array_equal, *states)
    logged = [json.loads(line)["step"] for line in (workdir / "metrics.jsonl").open()]
    assert logged == sorted(set(logged))  # each step once


def _faces(tiny_runs):
    return json.loads((tiny_runs["mouth"] / train.DATA_FILES).read_text())["data_dir"]


def test_a_half_written_log_line_is_dropped_on_resume(tmp_path):
    log = tmp_path / writer.METRICS_FILE
    log.write_text('{"step": 2, "g_mse": 0.1}\n{"step": 4, "g_mse": 0.09}\n{"step": 6, "g_m')
    writer.prepare_log(tmp_path, resume_from=4)
    assert [json.loads(line)["step"] for line in log.open()] == [2, 4]
    writer.prepare_log(tmp_path, resume_from=2)
    assert [json.loads(line)["step"] for line in log.open()] == [2]


def test_a_fresh_start_does_not_append_to_an_abandoned_log(tmp_path):
    log = tmp_path / writer.METRICS_FILE
    log.write_text('{"step": 2, "g_mse": 0.1}\n')
    writer.prepare_log(tmp_path, resume_from=None)
    assert not log.exists()
    assert (tmp_path / writer.ABANDONED_METRICS_FILE).read_text() == '{"step": 2, "g_mse": 0.1}\n'


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("seed", -1, "seed must be an integer in 0..2147483647, not -1"),
        ("seed", 99999999999, "seed must be an integer in 0..2147483647"),
        ("decode_threads", -2, "decode_threads must be >= 1, not -2"),
        ("total_steps", 0, "total_steps must be >= 1, not 0"),
    ],
)
def test_bad_config_values_are_refused(field, value, message):
    config = configs.get_config("tiny")
    config[field] = value
    with pytest.raises(configs.ConfigError, match=message.replace(".", r"\.")):
        configs.validate(config)


def test_a_workdir_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "run"
    path.write_text("")
    with pytest.raises(configs.ConfigError, match="is a file, not a folder"):
        train.train_and_evaluate(configs.get_config("tiny"), path, tmp_path)


def test_a_read_only_workdir_is_refused(tmp_path):
    # Root ignores permission bits, so the read-only file system is simulated.
    erofs = OSError(30, "Read-only file system")
    with mock.patch.object(pathlib.Path, "touch", side_effect=erofs):
        with pytest.raises(configs.ConfigError, match="cannot write to --workdir .*: Read-only"):
            train.train_and_evaluate(configs.get_config("tiny"), tmp_path / "run", tmp_path)


def test_a_negative_seed_stops_the_launcher_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "launch.py", "--mask=mouth", "--config=tiny", "--seed=-1",
         f"--data_dir={tmp_path}", f"--workdir={tmp_path / 'w'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2
    assert "seed must be an integer in 0..2147483647, not -1" in result.stderr
    assert "Traceback" not in result.stderr


# --- Damaged and odd image files: skipped and counted, never the end of a run ---


def _dds_unknown_pixel_format(path):
    header = bytearray(128)
    header[0:4] = b"DDS "
    struct.pack_into("<7I", header, 4, 124, 0x1007, 64, 64, 0, 0, 0)
    struct.pack_into("<2I", header, 76, 32, 0)  # a pixel format with no flags
    path.write_bytes(bytes(header) + bytes(4096))


def _spider_with_a_damaged_header(path):
    Image.fromarray(np.ones((64, 64), np.float32), "F").save(path, format="SPIDER")
    raw = bytearray(path.read_bytes())
    big_endian = struct.unpack(">f", raw[16:20])[0] == 1.0  # iform, 1 for a 2D image
    struct.pack_into(">f" if big_endian else "<f", raw, 26 * 4, 1.0)  # "an image in a stack"
    path.write_bytes(bytes(raw))


def test_damaged_files_are_skipped_and_counted(tmp_path, faces_dir):
    train = tmp_path / "train"
    train.mkdir()
    for f in sorted((faces_dir / "train").glob("*.jpg"))[:4]:
        shutil.copy(f, train / f.name)
    _dds_unknown_pixel_format(train / "a.dds.png")
    _spider_with_a_damaged_header(train / "b.spi.tif")
    Image.new("RGB", (1, 1)).save(train / "c_tiny.png")
    Image.new("RGB", (2000, 2)).save(train / "d_thin.png")  # 20000x2 in the report; same rule
    (train / "e_folder.jpg").mkdir()
    (train / "f_dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    os.mkfifo(train / "g_fifo.png")  # would block a reader forever
    files = folders.list_images(tmp_path, "train")
    good, bad, _ = data.scan_images(files, 32, progress=False)
    assert len(good) == 4
    assert sorted(pathlib.Path(p).name for p in bad) == [
        "a.dds.png", "b.spi.tif", "c_tiny.png", "d_thin.png", "e_folder.jpg", "f_dangling.jpg",
        "g_fifo.png",
    ]  # fmt: skip


@pytest.mark.slow  # the scan's skip and count are tested above without training
def test_a_training_run_on_a_folder_with_damaged_files_trains_on_the_good_ones(
    tmp_path, faces_dir, tiny_run_config
):
    data_dir = tmp_path / "data"
    (data_dir / "train").mkdir(parents=True)
    for f in sorted((faces_dir / "train").glob("*.jpg"))[:8]:
        shutil.copy(f, data_dir / "train" / f.name)
    _dds_unknown_pixel_format(data_dir / "train" / "bad.dds.png")
    _spider_with_a_damaged_header(data_dir / "train" / "bad.spi.tif")
    config = tiny_run_config("mouth")
    config.phase1_steps, config.phase2_steps, config.total_steps = 2, 0, 2
    assert train.train_and_evaluate(config, tmp_path / "run", data_dir) == 2
    record = json.loads((tmp_path / "run" / train.DATA_FILES).read_text())
    assert len(record["files"]) == 8 and len(record["unreadable"]) == 2


def test_a_sixteen_bit_greyscale_png_keeps_its_tones(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I;16")
    out = folders.load_image(str(tmp_path / "g16.png"), 64)
    np.testing.assert_allclose(out[..., 0], np.round(ramp / 257.0), atol=1)
    assert (out[..., 0] == out[..., 2]).all()


def test_exif_orientation_is_applied(tmp_path):
    """A phone stores a portrait sideways and says so in EXIF: it is read upright."""
    upright = np.zeros((96, 64, 3), np.uint8)
    upright[:48] = 255  # white top half
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # 64 tall, 96 wide
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    stored.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    rgb = images.read_rgb(tmp_path / "phone.jpg")
    assert rgb.shape == (96, 64, 3)
    assert rgb[:40].mean() > 200 and rgb[56:].mean() < 50
    rgb, reason = prepare.load_image(tmp_path / "phone.jpg", 10**8)
    assert reason == "" and rgb.shape == (96, 64, 3)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=4096), suffix=st.sampled_from(folders.IMAGE_SUFFIXES))
def test_any_bytes_load_or_are_refused(tmp_path, raw, suffix):
    path = tmp_path / f"x{suffix}"
    path.write_bytes(raw)
    out = folders.try_load_image(str(path), 32)
    assert out is None or (out.shape == (32, 32, 3) and out.dtype == np.uint8)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    header=st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"RIFF"]),
    raw=st.binary(max_size=2048),
)
def test_damaged_files_with_real_magic_are_refused_not_raised(tmp_path, header, raw):
    path = tmp_path / "x.png"
    path.write_bytes(header + raw)
    out = folders.try_load_image(str(path), 32)
    assert out is None or out.shape == (32, 32, 3)
    rgb, reason = prepare.load_image(path, 10**8)
    assert (rgb is None) == (reason != "")

"""Issue 34, round two of hardening: out-of-range values refused in one line, refused runs leave
nothing behind, the downloader never blames a URL for the user's own limits, and damaged
picture data is refused rather than trained on.

Each test fails on the code before issue 34: a -1 or NaN learning rate trained (or ended in a
traceback), `--steps_per_run=-3` was reported as "steps_per_run and max_checkpoints", stray
arguments printed a page of usage, `--test_fraction=1.5` split -57 faces into train/, negative
download limits recorded every URL as failed, a redirect to file:// read as `http_error`, refused
launches left `checkpoints/.lock-0` and `data/.prepare.lock`, and a JPEG with garbage in its
middle was decoded with visible damage.
"""

import fcntl
import http.server
import io
import math
import os
import pathlib
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from glcic_jax import images, locations
from glcic_jax.dataset import bootstrap, download, folders, lfw, prepare
from glcic_jax.runs import checkpoint_dir
from glcic_jax.segmenter import configs as segmenter_configs
from glcic_jax.training import checkpoint, configs, data, launch_setup

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_script(script, *args, timeout=300, cwd=ROOT):
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def one_line_refusal(result) -> str:
    """The one line a refused run printed on stderr (anything else there fails the test)."""
    assert result.returncode != 0, result.stdout[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


def listing(folder: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- 1. Config fields: range-checked, named as the user wrote them ---------------------------


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("g_lr", -1.0, "--config.g_lr must be a finite number > 0, not -1.0"),
        ("g_lr", math.nan, "--config.g_lr must be a finite number > 0, not nan"),
        ("g_lr", 0.0, "--config.g_lr must be a finite number > 0, not 0.0"),
        ("d_lr", math.inf, "--config.d_lr must be a finite number > 0, not inf"),
        ("alpha", -1e-4, "--config.alpha must be a finite number >= 0, not -0.0001"),
        ("alpha", math.nan, "--config.alpha must be a finite number >= 0, not nan"),
        ("bn_momentum", 1.0, "--config.bn_momentum must be in [0, 1), not 1.0"),
        ("bn_momentum", -0.5, "--config.bn_momentum must be in [0, 1), not -0.5"),
        ("d_label_smoothing", math.nan, "--config.d_label_smoothing must be in [0, 0.5), not nan"),
        ("phase1_steps", -1, "--config.phase1_steps must be >= 0, not -1"),
        ("total_steps", 2**31, "--config.total_steps must be <= 2147483647, not 2147483648"),
        ("steps_per_run", -3, "--config.steps_per_run must be >= 0, not -3"),
        ("max_checkpoints", -1, "--config.max_checkpoints must be >= 0, not -1"),
        ("log_every", 0, "--config.log_every must be >= 1, not 0"),
        ("overlay_bank", 0, "--config.overlay_bank must be >= 1, not 0"),
        ("width", 1, "--config.width must be >= 2, not 1"),
        ("local_patch", 300, "--config.local_patch must be an integer in 32..256, not 300"),
    ],
)
def test_training_config_values_out_of_range_are_refused_by_name(field, value, message):
    config = configs.get_config("tiny")
    config[field] = value
    with pytest.raises(configs.ConfigError) as error:
        configs.validate(config)
    assert str(error.value) == message


def test_launch_flags_are_named_as_the_user_wrote_them():
    config = configs.get_config("tiny")
    config.steps_per_run = -3
    with pytest.raises(configs.ConfigError) as error:
        configs.validate(config, launch_setup.config_names(steps_per_run=True))
    # Not "steps_per_run and max_checkpoints": the user never gave max_checkpoints.
    assert str(error.value) == "--steps_per_run must be >= 0, not -3"
    config.steps_per_run, config.seed = 0, -1
    with pytest.raises(configs.ConfigError, match=r"^--seed must be an integer in 0\.\.") as e:
        configs.validate(config, launch_setup.config_names(seed=True))
    assert "\n" not in str(e.value)


@settings(max_examples=200, deadline=None)
@given(
    field=st.sampled_from(["g_lr", "d_lr", "alpha", "bn_momentum", "d_label_smoothing"]),
    value=st.floats(allow_nan=True, allow_infinity=True),
)
def test_any_float_for_a_rate_trains_or_is_refused_by_name(field, value):
    config = configs.get_config("tiny")
    config[field] = value
    try:
        configs.validate(config)
    except configs.ConfigError as e:
        assert str(e).startswith(f"--config.{field} must be ") and "\n" not in str(e)
        return
    assert math.isfinite(value) and value >= 0  # what was accepted can train


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("lr", -1.0, "--config.lr must be a finite number > 0, not -1.0"),
        ("lr", math.nan, "--config.lr must be a finite number > 0, not nan"),
        ("unmasked", math.nan, "--config.unmasked must be in [0, 1), not nan"),
        ("unmasked", 1.0, "--config.unmasked must be in [0, 1), not 1.0"),
        ("steps_per_run", -3, "--config.steps_per_run must be >= 0, not -3"),
        ("max_checkpoints", -1, "--config.max_checkpoints must be >= 0, not -1"),
        ("total_steps", 0, "--config.total_steps must be >= 1, not 0"),
        ("width", 6, "--config.width must be a multiple of 4 (GroupNorm groups), not 6"),
    ],
)
def test_segmenter_config_values_out_of_range_are_refused_by_name(field, value, message):
    config = segmenter_configs.get_config("tiny")
    config[field] = value
    with pytest.raises(segmenter_configs.ConfigError) as error:
        segmenter_configs.validate(config)
    assert str(error.value) == message


def test_process_and_branch_flags_are_checked_before_jax_starts():
    with pytest.raises(launch_setup.LaunchError, match=r"^--num_processes must be >= 1, not 0$"):
        launch_setup.check_processes(0, 0)
    with pytest.raises(launch_setup.LaunchError, match=r"^--process_id must be in 0\.\.0, not 3$"):
        launch_setup.check_processes(1, 3)
    launch_setup.check_processes(2, 1)
    launch_setup.check_processes(1, 5, distributed=True)  # the cluster's environment decides
    with pytest.raises(launch_setup.LaunchError, match=r"^--branch_step must be >= 0, not -2$"):
        launch_setup.check_branch("runs/a", -2)


# --- 1. The launcher: one line, before anything is written ------------------------------------


@pytest.mark.parametrize(
    "flag,message",
    [
        ("--config.g_lr=-1", "error: --config.g_lr must be a finite number > 0, not -1.0"),
        ("--config.g_lr=nan", "error: --config.g_lr must be a finite number > 0, not nan"),
        ("--steps_per_run=-3", "error: --steps_per_run must be >= 0, not -3"),
        ("extra_arg", "error: unexpected argument 'extra_arg' (every option is a --flag;"),
    ],
)
def test_the_launcher_refuses_bad_values_in_one_line_and_writes_nothing(tmp_path, flag, message):
    workdir = tmp_path / "runs" / "w"
    result = run_script(
        "launch.py", "--mask=mouth", "--config=tiny", flag,
        f"--data_dir={tmp_path / 'faces'}", f"--workdir={workdir}",
    )  # fmt: skip
    assert result.returncode == 2
    assert one_line_refusal(result).startswith(message)
    assert listing(tmp_path) == []


def test_a_launch_refused_after_locking_its_new_workdir_leaves_nothing(tmp_path):
    """--resume on a new workdir is refused once its lock is taken: the lock and folders go."""
    (tmp_path / "faces").mkdir()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "notes.txt").write_text("mine")
    for workdir in (tmp_path / "new" / "deeper" / "w", tmp_path / "old"):
        result = run_script(
            "launch.py", "--mask=mouth", "--config=tiny", "--resume",
            f"--data_dir={tmp_path / 'faces'}", f"--workdir={workdir}",
        )  # fmt: skip
        assert result.returncode == 2
        assert "--resume: no checkpoint in" in one_line_refusal(result)
    # The new folders are gone; the one that existed keeps what it held, and only that.
    assert listing(tmp_path) == ["faces", "old", "old/notes.txt"]


def test_leftovers_are_removed_only_where_this_run_created_them(tmp_path):
    workdir = tmp_path / "a" / "w"
    created = launch_setup.missing_folders(workdir)
    assert created == [checkpoint_dir(workdir), workdir.absolute(), (tmp_path / "a").absolute()]
    handle = checkpoint._lock_workdir(checkpoint_dir(workdir))
    # Held by a run (here, this handle): neither the lock nor its folders are touched.
    launch_setup.remove_leftovers(workdir, created)
    assert (checkpoint_dir(workdir) / ".lock-0").is_file()
    handle.close()
    (workdir / "data_files.json").write_text("{}")  # something not ours to delete
    launch_setup.remove_leftovers(workdir, created)
    assert listing(tmp_path) == ["a", "a/w", "a/w/data_files.json"]
    # Refused after making the workdir but before its checkpoints/ (a branch, say): it goes.
    (workdir / "data_files.json").unlink()
    launch_setup.remove_leftovers(workdir, [checkpoint_dir(workdir), workdir.absolute()])
    assert listing(tmp_path) == ["a"]
    workdir.mkdir()
    # A workdir that existed keeps its checkpoints/ and lock, whoever made them.
    checkpoint._lock_workdir(checkpoint_dir(workdir)).close()
    launch_setup.remove_leftovers(workdir, launch_setup.missing_folders(workdir))
    assert (checkpoint_dir(workdir) / ".lock-0").is_file()


def test_a_lock_file_removed_under_a_starting_run_is_taken_again(tmp_path, monkeypatch):
    """A run that opened the lock file just before a refused run removed it locks the new file."""
    directory = tmp_path / "w" / "checkpoints"
    directory.mkdir(parents=True)
    path = directory / ".lock-0"
    real_flock, calls = fcntl.flock, []

    def flock_after_removal(handle, operation):
        calls.append(operation)
        if len(calls) == 1:  # between this run's open() and flock(): a refused run removes it
            assert checkpoint.remove_own_lock(tmp_path / "w")  # (its own flock is call 2)
        return real_flock(handle, operation)

    monkeypatch.setattr(checkpoint.fcntl, "flock", flock_after_removal)
    handle = checkpoint._lock_workdir(directory)
    assert len(calls) == 3 and path.is_file()  # this run's flock, the remover's, this run's again
    assert os.fstat(handle.fileno()).st_ino == path.stat().st_ino
    monkeypatch.setattr(checkpoint.fcntl, "flock", real_flock)
    with pytest.raises(checkpoint.CheckpointError, match="another run is using"):
        checkpoint._lock_workdir(directory)
    assert not checkpoint.remove_own_lock(tmp_path / "w")  # held: not ours to delete
    handle.close()


# --- 3. The first run's data lock leaves nothing behind ----------------------------------------


def test_a_first_run_without_data_leaves_no_prepare_lock(tmp_path, monkeypatch):
    monkeypatch.setenv(locations.DATA_ENV, str(tmp_path / "data"))
    monkeypatch.setenv(locations.MIRROR_ENV, str(tmp_path / "mirror"))

    def offline(*args, **kwargs):
        raise lfw.LfwUnavailable("could not fetch LFW (offline)")

    monkeypatch.setattr(lfw, "fetch_lfw", offline)
    with pytest.raises(bootstrap.NoTrainingData, match="no training data"):
        bootstrap.default_data_dir(100)
    assert listing(tmp_path) == []  # no data/.prepare.lock, no empty data/


def test_the_prepare_lock_serialises_launches_and_is_removed(tmp_path):
    path = tmp_path / "data" / ".prepare.lock"
    (tmp_path / "data").mkdir()
    inside, release, order = threading.Event(), threading.Event(), []

    def first():
        with bootstrap._lock(path, log=lambda m: None):
            order.append("first")
            inside.set()
            release.wait(10)

    def second():
        inside.wait(10)
        with bootstrap._lock(path, log=lambda m: order.append("waited")):
            order.append("second")
            assert path.is_file()  # its own lock file, not the one the first removed

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    inside.wait(10)
    while "waited" not in order:
        threading.Event().wait(0.01)
    release.set()
    for t in threads:
        t.join(10)
    assert order == ["first", "waited", "second"]
    assert listing(tmp_path) == ["data"]  # data/ existed before: kept, and only the lock went


# --- 1. Dataset preparation --------------------------------------------------------------------


@pytest.mark.parametrize(
    "change,message",
    [
        ({"test_fraction": 1.5}, "--test_fraction must be in [0, 1], not 1.5"),
        ({"test_fraction": math.nan}, "--test_fraction must be in [0, 1], not nan"),
        ({"min_confidence": 2.0}, "--min_confidence must be in [0, 1], not 2.0"),
        ({"dominance": -0.1}, "--dominance must be in [0, 1], not -0.1"),
        ({"min_mouth_skin": math.nan}, "--min_mouth_skin must be in [0, 1], not nan"),
        ({"max_outside": 1.5}, "--max_outside must be in [0, 1], not 1.5"),
        ({"dup_distance": -2}, "--dup_distance must be in -1..256, not -2"),
        ({"max_pixels": 0}, "--max_pixels must be >= 1, not 0"),
        ({"max_images": -1}, "--max_images must be >= 0, not -1"),
        ({"min_face": -1}, "--min_face must be >= 0, not -1"),
    ],
)
def test_preparation_settings_out_of_range_are_refused_before_any_folder(tmp_path, change, message):
    source = tmp_path / "raw"
    source.mkdir()
    Image.new("RGB", (64, 64)).save(source / "a.jpg")
    settings = prepare.Settings(**change)
    with pytest.raises(prepare.PrepareError) as error:
        prepare.build(source, tmp_path / "out", settings)
    assert str(error.value) == message
    with pytest.raises(prepare.PrepareError, match=r"^--workers must be >= 1, not 0$"):
        prepare.build(source, tmp_path / "out", prepare.Settings(), workers=0)
    assert listing(tmp_path) == ["raw", "raw/a.jpg"]


def test_prepare_data_refuses_a_test_fraction_over_one_in_one_line(tmp_path):
    source = tmp_path / "raw"
    source.mkdir()
    Image.new("RGB", (64, 64)).save(source / "a.jpg")
    result = run_script(
        "experiments/prepare_data.py", f"--source={source}", f"--out={tmp_path / 'out'}",
        "--test_fraction=1.5",
    )  # fmt: skip
    assert one_line_refusal(result) == "prepare_data: --test_fraction must be in [0, 1], not 1.5"
    extra = run_script(
        "experiments/prepare_data.py", f"--source={source}", f"--out={tmp_path / 'out'}", "extra"
    )
    assert one_line_refusal(extra).startswith("prepare_data: unexpected argument 'extra'")
    assert not (tmp_path / "out").exists()


def test_a_read_only_output_folder_is_refused_in_one_line(tmp_path, monkeypatch):
    source = tmp_path / "raw"
    source.mkdir()
    Image.new("RGB", (64, 64)).save(source / "a.jpg")
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    if os.access(out, os.W_OK):  # root writes anyway: the read-only file system is simulated

        def read_only(self, *args, **kwargs):
            raise OSError(30, "Read-only file system", str(self))

        monkeypatch.setattr(pathlib.Path, "touch", read_only)
    try:
        with pytest.raises(prepare.PrepareError) as error:
            prepare.build(source, out, prepare.Settings(min_face=0))
        assert str(error.value).startswith(f"cannot write to --out {out}: ")
        assert "\n" not in str(error.value)
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o755)
    (tmp_path / "file").write_text("")
    with pytest.raises(prepare.PrepareError, match="is a file, not a folder"):
        prepare.build(source, tmp_path / "file", prepare.Settings(min_face=0))


# --- 2. Collecting: the user's limits never fail a URL -----------------------------------------


@pytest.mark.parametrize(
    "change,message",
    [
        ({"timeout_s": -1.0}, "--timeout must be a finite number of seconds > 0, not -1.0"),
        ({"timeout_s": math.nan}, "--timeout must be a finite number of seconds > 0, not nan"),
        ({"retries": -1}, "--retries must be >= 0, not -1"),
        ({"max_bytes": -5}, "--max_bytes must be >= 1, not -5"),
        ({"deadline_s": 0.0}, "deadline_s must be a finite number of seconds > 0, not 0.0"),
        ({"backoff_s": -1.0}, "backoff_s must be a finite number of seconds >= 0, not -1.0"),
        ({"content_types": ()}, "content_types must be at least one accepted type, not ()"),
    ],
)
def test_download_limits_that_fail_every_url_are_refused(change, message):
    with pytest.raises(download.PolicyError) as error:
        download.check_policy(download.Policy(**change), download.POLICY_FLAGS)
    assert str(error.value) == message


class _Redirects(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path == "/to-file.png":
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.end_headers()
            return
        buf = io.BytesIO()
        shade = sum(self.path.encode()) % 256  # each path its own picture: no duplicates
        Image.new("RGB", (40, 40), (200, 120, shade)).save(buf, format="PNG")
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(buf.getvalue())))
        self.end_headers()
        self.wfile.write(buf.getvalue())


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirects)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


FAST = download.Policy(timeout_s=1.0, deadline_s=2.0, retries=0)


def test_bad_limits_record_nothing_and_a_later_run_downloads_every_candidate(server, tmp_path):
    collection = download.Collection(tmp_path)
    urls = [f"{server}/{i}.png" for i in range(3)]
    collection.add_candidates("q", urls)
    for bad in (
        download.Policy(timeout_s=-1.0, retries=0),
        download.Policy(retries=-1),
        download.Policy(max_bytes=-5),
    ):
        with pytest.raises(download.PolicyError):
            download.download_all(collection, bad, sleep=lambda s: None)
        with pytest.raises(download.PolicyError):
            download.fetch(urls[0], bad)
    assert collection.downloads() == {}  # not one URL recorded, let alone as failed for good
    assert download.download_all(collection, FAST, sleep=lambda s: None) == {"skipped": 0, "ok": 3}


def test_a_redirect_to_a_file_url_is_a_bad_url(server, tmp_path):
    with pytest.raises(download.Refused) as e:
        download.fetch(f"{server}/to-file.png", FAST)
    assert e.value.status == "bad_url" and "file:///etc/passwd" in str(e.value)
    collection = download.Collection(tmp_path)
    collection.add_candidates("q", [f"{server}/to-file.png"])
    assert download.download_all(collection, FAST) == {"skipped": 0, "bad_url": 1}


@pytest.mark.parametrize(
    "flag,message",
    [
        ("--timeout=-1", "collect_faces: --timeout must be a finite number of seconds > 0"),
        ("--retries=-1", "collect_faces: --retries must be >= 0, not -1"),
        ("--max_bytes=-5", "collect_faces: --max_bytes must be >= 1, not -5"),
        ("--per_query=0", "collect_faces: --per_query must be >= 1, not 0"),
    ],
)
def test_collect_faces_refuses_bad_limits_before_creating_its_folder(tmp_path, flag, message):
    result = run_script("experiments/collect_faces.py", f"--out={tmp_path / 'c'}", flag)
    assert one_line_refusal(result).startswith(message)
    assert listing(tmp_path) == []


def test_a_collection_folder_that_cannot_be_written_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    with pytest.raises(download.CollectionError, match="is a file, not a folder"):
        download.Collection(tmp_path / "file")

    def read_only(self, *args, **kwargs):
        raise OSError(30, "Read-only file system", str(self))

    monkeypatch.setattr(pathlib.Path, "touch", read_only)
    with pytest.raises(download.CollectionError, match="cannot write to --out .*: Read-only"):
        download.Collection(tmp_path / "c")


# --- 1. The survey's sub-commands ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args,message",
    [
        (["frobnicate"], "survey.py: unknown command 'frobnicate'; usage: survey.py"),
        (["summarize", "extra"], "survey.py: unexpected argument 'extra'; usage: survey.py"),
        (["build", "--n=3"], "survey.py: build needs --random, --mouth, --data_dir, --out"),
        (["build", "--random=a", "--mouth=b", "--data_dir=c", "--out=o", "--n=0"],
         "survey.py: --n must be >= 1, not 0"),
        (["build", "--random=a", "--mouth=b", "--data_dir=c", "--out=o", "--steps=10,x"],
         "survey.py: --steps must be checkpoint steps (integers >= 0), not 'x'"),
    ],
)  # fmt: skip
def test_survey_mistakes_are_one_line(tmp_path, args, message):
    result = run_script("experiments/survey.py", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert one_line_refusal(result) == message or one_line_refusal(result).startswith(message)
    assert listing(tmp_path) == []


# --- 4. Damaged picture data: refused, counted, never trained on -------------------------------


def _photo(h=96, w=128, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)], -1)
    return np.clip(rgb + rng.integers(-40, 41, rgb.shape), 0, 255).astype(np.uint8)


def _with_garbage_in_the_middle(path: pathlib.Path, seed: int, size: int = 64) -> bytes:
    """The file's bytes with `size` random bytes (no 0xFF: no marker) written over its middle."""
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + size] = (
        np.random.default_rng(seed).integers(0, 255, size, np.uint8).tobytes()
    )
    return bytes(raw)


def _pillow_decodes(path) -> bool:
    """Whether Pillow alone decodes `path` without an error."""
    try:
        with Image.open(path) as im:
            im.load()
    except Exception:  # noqa: BLE001  whatever Pillow raises on damaged data
        return False
    return True


@pytest.mark.parametrize("seed", range(6))
def test_a_jpeg_with_garbage_in_its_middle_is_refused_as_damaged(tmp_path, seed):
    Image.fromarray(_photo()).save(tmp_path / "clean.jpg", quality=90)
    damaged = tmp_path / "corrupt_middle.jpg"
    damaged.write_bytes(_with_garbage_in_the_middle(tmp_path / "clean.jpg", seed))
    assert _pillow_decodes(damaged)  # what Pillow alone gives: visible damage, not a word
    with pytest.raises(images.ImageError) as error:
        images.read_rgb(damaged)
    assert error.value.reason == "damaged" and "damaged" in images.REASONS
    assert str(error.value).startswith(f"{damaged}: damaged image data (")
    assert "\n" not in str(error.value)
    assert prepare.load_image(damaged, 10**8) == (None, "corrupt")  # counted among the drops
    assert folders.try_load_image(str(damaged), 32) is None
    # A user's photo to complete is read as it decodes: the damage shows in the result.
    assert images.read_rgb(damaged, check_damage=False).shape == (96, 128, 3)


def test_a_png_with_garbage_in_its_compressed_data_is_refused_as_damaged(tmp_path):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:256, 0:256]
    rgb = np.stack([(x + y) / 2, x, 255 - y], -1) + rng.integers(0, 30, (256, 256, 3))
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(tmp_path / "clean.png")
    clean = (tmp_path / "clean.png").read_bytes()
    refused = 0
    for seed in range(60):
        pick = np.random.default_rng(seed)
        size = int(pick.integers(1, 50))
        at = int(pick.integers(200, len(clean) - size - 20))
        damaged = tmp_path / f"d{seed}.png"
        damaged.write_bytes(clean[:at] + pick.bytes(size) + clean[at + size :])
        if not _pillow_decodes(damaged):
            continue  # zlib noticed: "unreadable", as before
        with pytest.raises(images.ImageError) as error:
            images.read_rgb(damaged)
        assert error.value.reason == "damaged", seed
        refused += 1
    assert refused  # some decode without a word from Pillow: the chunk checksums catch each


def test_jpegs_that_decode_cleanly_are_accepted_pixel_for_pixel(tmp_path):
    import cv2

    rgb = _photo(101, 77)
    im = Image.fromarray(rgb)
    variants = {
        "baseline.jpg": dict(quality=90),
        "q100.jpg": dict(quality=100),
        "444.jpg": dict(quality=90, subsampling=0),
        "optimized.jpg": dict(quality=85, optimize=True),
        "restarts.jpg": dict(quality=90, restart_marker_blocks=3),
        "restart_rows.jpg": dict(quality=90, restart_marker_rows=1),
        "progressive.jpg": dict(quality=90, progressive=True),
    }
    for name, options in variants.items():
        im.save(tmp_path / name, **options)
    im.convert("L").save(tmp_path / "grey.jpg", quality=90)
    im.convert("CMYK").save(tmp_path / "cmyk.jpg", quality=90)
    Image.fromarray(rgb[:5, :3]).save(tmp_path / "tiny.jpg")
    cv2.imwrite(str(tmp_path / "opencv.jpg"), rgb, [cv2.IMWRITE_JPEG_RST_INTERVAL, 2])
    clean = (tmp_path / "baseline.jpg").read_bytes()
    (tmp_path / "appended.jpg").write_bytes(clean + b"data after the end marker" * 20)
    # Two stray bytes before the end marker: libjpeg warns, the picture is whole.
    (tmp_path / "stray.jpg").write_bytes(clean[:-2] + b"\x00\x00" + clean[-2:])
    for path in sorted(tmp_path.glob("*.jpg")):
        with Image.open(path) as reference:
            expected = np.asarray(reference.convert("RGB"))
        np.testing.assert_array_equal(images.read_rgb(path), expected, err_msg=path.name)
        np.testing.assert_array_equal(images.read_rgb(path), expected, err_msg=path.name)
    many = tmp_path / "many_stray.jpg"
    many.write_bytes(clean[:-2] + bytes(40) + clean[-2:])
    with pytest.raises(images.ImageError, match="40 bytes of image data after its last block"):
        images.read_rgb(many)


def test_a_jpeg_cut_short_inside_its_data_is_refused(tmp_path):
    Image.fromarray(_photo()).save(tmp_path / "clean.jpg", quality=90)
    raw = (tmp_path / "clean.jpg").read_bytes()
    middle = len(raw) // 2
    (tmp_path / "gap.jpg").write_bytes(raw[:middle] + raw[middle + 500 :])  # 500 bytes missing
    with pytest.raises(images.ImageError) as error:
        images.read_rgb(tmp_path / "gap.jpg")
    assert error.value.reason in ("damaged", "unreadable")


def test_the_training_scan_skips_damaged_images_and_counts_them(tmp_path):
    Image.fromarray(_photo()).save(tmp_path / "good.jpg", quality=90)
    (tmp_path / "bad.jpg").write_bytes(_with_garbage_in_the_middle(tmp_path / "good.jpg", 0))
    good, bad, _ = data.scan_images([str(tmp_path / "good.jpg"), str(tmp_path / "bad.jpg")], 32)
    assert good == [str(tmp_path / "good.jpg")] and bad == [str(tmp_path / "bad.jpg")]


def _clean_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_photo()).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


CLEAN_JPEG = _clean_jpeg()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(start=st.floats(0.2, 0.9), raw=st.binary(min_size=1, max_size=64))
def test_any_bytes_written_into_a_jpeg_give_pixels_or_one_image_error(tmp_path, start, raw):
    at = int(len(CLEAN_JPEG) * start)
    changed = tmp_path / "changed.jpg"
    changed.write_bytes(CLEAN_JPEG[:at] + raw + CLEAN_JPEG[at + len(raw) :])
    try:
        out = images.read_rgb(changed)
    except images.ImageError as e:
        assert e.reason in images.REASONS and "\n" not in str(e)
        return
    assert out.shape == (96, 128, 3) and out.dtype == np.uint8

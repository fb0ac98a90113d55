"""The first command on a fresh machine: where data is looked for, and the faces prepared once.

`glcic_jax.locations` and `dataset.bootstrap` run here on folders in a
temporary directory ($GLCIC_JAX_DATA for data/, $GLCIC_JAX_MIRROR for the
lab's mirror), never on the project's own data/. LFW comes from a
scikit-learn cache filled beforehand with some of the shared LFW crops, and
the network is off (in the launcher's process by a sitecustomize, here by
monkeypatching sockets), so nothing is downloaded.
"""

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys

import pytest
from PIL import Image

from glcic_jax import locations
from glcic_jax.dataset import bootstrap, lfw, prepare
from glcic_jax.face_masks import overlay

REPO = pathlib.Path(__file__).resolve().parents[1]
LFW_PEOPLE = ("Test_Person_One",)  # One person with LFW_MIN_FACES photos passes the filter.

_NO_NETWORK = """
import socket
def _refuse(self, address, *args, **kwargs):
    raise OSError("network disabled by the test")
socket.socket.connect = _refuse
"""


def _refuse_network(*args, **kwargs):
    raise OSError("network disabled by the test")


@pytest.fixture
def places(tmp_path, monkeypatch):
    """data/, the mirror and scikit-learn's cache in tmp_path; none exists yet; no network."""
    paths = {
        "data": tmp_path / "data",
        "mirror": tmp_path / "mirror",
        "sklearn": tmp_path / "scikit_learn_data",
    }
    monkeypatch.setenv(locations.DATA_ENV, str(paths["data"]))
    monkeypatch.setenv(locations.MIRROR_ENV, str(paths["mirror"]))
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(paths["sklearn"]))
    monkeypatch.setattr(socket.socket, "connect", _refuse_network)
    return paths


def fill_lfw_cache(sklearn_home: pathlib.Path, faces_dir: pathlib.Path) -> None:
    """What scikit-learn's LFW fetcher leaves after a download: pairs files and 250x250 photos."""
    lfw_home = sklearn_home / "lfw_home"
    lfw_home.mkdir(parents=True)
    for name in ("pairsDevTrain.txt", "pairsDevTest.txt", "pairs.txt"):
        (lfw_home / name).write_text("1\n")
    photos = sorted((faces_dir / "train").glob("*.jpg"))
    for p, person in enumerate(LFW_PEOPLE):
        folder = lfw_home / "lfw" / person
        folder.mkdir(parents=True)
        for i in range(bootstrap.LFW_MIN_FACES):
            face = Image.open(photos[p * bootstrap.LFW_MIN_FACES + i]).convert("RGB")
            face.resize((250, 250), Image.Resampling.LANCZOS).save(folder / f"{person}_{i:04d}.jpg")


def fill_mirror(mirror: pathlib.Path, faces_dir: pathlib.Path, n: int) -> None:
    """A mirror whose celeba10k/ holds `n` face photos (LFW crops stand in for CelebA's)."""
    folder = mirror / bootstrap.MIRROR_SET / "train"
    folder.mkdir(parents=True)
    for path in sorted((faces_dir / "test").glob("*.jpg"))[:n]:
        shutil.copy(path, folder / path.name)


def test_locations_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(locations.DATA_ENV, raising=False)
    monkeypatch.delenv(locations.MIRROR_ENV, raising=False)
    assert locations.data_home() == REPO / "data"
    assert locations.mirror() == REPO.parent / "shared" / "data"
    monkeypatch.setenv(locations.DATA_ENV, str(tmp_path / "d"))
    monkeypatch.setenv(locations.MIRROR_ENV, str(tmp_path / "m"))
    assert locations.candidates("x") == [tmp_path / "d" / "x", tmp_path / "m" / "x"]
    assert locations.find("x") is None
    (tmp_path / "m" / "x").mkdir(parents=True)
    assert locations.find("x") == tmp_path / "m" / "x"
    (tmp_path / "d" / "x").mkdir(parents=True)
    assert locations.find("x") == tmp_path / "d" / "x"  # The project's own data/ first.


def test_mask_templates_found_in_data_then_mirror(places, shared_data):
    with pytest.raises(overlay.OverlayError) as error:
        overlay.load_templates()
    message = str(error.value)
    assert str(places["data"] / "mask_overlays") in message
    assert str(places["mirror"] / "mask_overlays") in message and "\n" not in message
    shutil.copytree(shared_data / "mask_overlays", places["mirror"] / "mask_overlays")
    assert overlay.default_templates_dir() == places["mirror"] / "mask_overlays"
    shutil.copytree(shared_data / "mask_overlays", places["data"] / "mask_overlays")
    assert overlay.default_templates_dir() == places["data"] / "mask_overlays"
    assert len(overlay.load_templates()) == len(overlay.TEMPLATES)


def test_mirror_is_prepared_once_and_reused(places, faces_dir, monkeypatch):
    fill_mirror(places["mirror"], faces_dir, 8)
    notes = []
    folder = bootstrap.default_data_dir(6, log=notes.append)
    assert folder == places["data"] / "celeba10k-aligned-6"
    ready = json.loads((folder / bootstrap.READY_FILE).read_text())
    assert ready["inputs"] == 6 and ready["found"] == 8 and ready["kept"] >= 5
    assert ready["mouth_landmarks_in_box"] == 1.0
    assert len(prepare.read_manifest(folder)) == ready["kept"]
    assert "first run: preparing 6 faces from the lab's local mirror" in notes[0]

    def no_second_build(*args, **kwargs):
        raise AssertionError("prepared again")

    monkeypatch.setattr(prepare, "build", no_second_build)
    assert bootstrap.default_data_dir(6, log=notes.append) == folder
    # A folder of every image serves any sample size; the named sample comes first.
    shutil.copytree(folder, places["data"] / "celeba10k-aligned")
    assert bootstrap.default_data_dir(3) == places["data"] / "celeba10k-aligned"
    assert bootstrap.default_data_dir(6) == folder
    assert len(notes) == 2


def test_killed_preparation_is_prepared_again(places, faces_dir):
    fill_mirror(places["mirror"], faces_dir, 4)
    folder = bootstrap.prepared_dir(bootstrap.MIRROR_SET, 0)
    # What a preparation killed midway leaves: staged images, no ready file.
    (folder / ".staging").mkdir(parents=True)
    (folder / ".staging" / "half.png").write_bytes(b"\x89PNG")
    (folder / "train").mkdir()
    assert bootstrap.find_ready(0) is None
    assert bootstrap.default_data_dir(0, log=lambda _: None) == folder
    assert bootstrap.is_ready(folder) and not (folder / ".staging").exists()
    rows = prepare.read_manifest(folder)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.glob("t*/*")) == sorted(
        r["file"] for r in rows
    )


def test_lfw_from_the_scikit_learn_cache_without_network(places, faces_dir):
    pytest.importorskip("sklearn")
    fill_lfw_cache(places["sklearn"], faces_dir)
    notes = []
    folder = bootstrap.default_data_dir(5, log=notes.append)
    assert folder == places["data"] / "lfw-aligned-5"
    ready = json.loads((folder / bootstrap.READY_FILE).read_text())
    assert ready["found"] == bootstrap.LFW_MIN_FACES and ready["inputs"] == 5
    assert ready["kept"] >= 4 and "from LFW" in notes[0]


def test_offline_without_mirror_is_one_clear_error(places):
    pytest.importorskip("sklearn")
    with pytest.raises(bootstrap.NoTrainingData) as error:
        bootstrap.default_data_dir(5, lfw_retries=1)
    message = str(error.value)
    assert "\n" not in message and "--data_dir=DIR" in message
    assert str(places["mirror"] / bootstrap.MIRROR_SET) in message
    assert "could not fetch LFW" in message
    assert bootstrap.find_ready(5) is None


def launch(tmp_path, *args, mirror=None, sklearn_home=None):
    """launch.py in a child with no network, data/ and the mirror in tmp_path."""
    (tmp_path / "site").mkdir(exist_ok=True)
    (tmp_path / "site" / "sitecustomize.py").write_text(_NO_NETWORK)
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{REPO}",
        locations.DATA_ENV: str(tmp_path / "data"),
        locations.MIRROR_ENV: str(mirror or tmp_path / "no-mirror"),
        "SCIKIT_LEARN_DATA": str(sklearn_home or tmp_path / "empty-sklearn-cache"),
    }
    return subprocess.run(
        [sys.executable, str(REPO / "launch.py"), "--mask=mouth", "--config=tiny", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def recorded_data_dir(workdir: pathlib.Path) -> str:
    return json.loads((workdir / "data_files.json").read_text())["data_dir"]


@pytest.mark.slow  # three launches, ~1 minute: the in-process tests cover each part
def test_launcher_prepares_lfw_once_then_reuses_it(tmp_path, faces_dir):
    pytest.importorskip("sklearn")
    sklearn_home = tmp_path / "scikit_learn_data"
    fill_lfw_cache(sklearn_home, faces_dir)
    steps = ("--steps_per_run=2", "--first_run_images=10")
    first = launch(tmp_path, *steps, f"--workdir={tmp_path / 'w1'}", sklearn_home=sklearn_home)
    assert first.returncode == 0, first.stderr[-3000:]
    folder = tmp_path / "data" / "lfw-aligned-10"
    assert "first run: preparing 10 faces from LFW" in first.stdout
    assert "stopped at step 2" in first.stdout
    assert recorded_data_dir(tmp_path / "w1") == str(folder)
    ready_at = (folder / bootstrap.READY_FILE).stat().st_mtime_ns

    # No LFW cache now: preparing again would fail, so success means reuse.
    second = launch(tmp_path, *steps, f"--workdir={tmp_path / 'w2'}")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "first run" not in second.stdout and f"data {folder}," in second.stdout
    assert (folder / bootstrap.READY_FILE).stat().st_mtime_ns == ready_at
    assert recorded_data_dir(tmp_path / "w2") == str(folder)

    # Resuming keeps the run's own data, though this default would be another folder.
    third = launch(tmp_path, "--steps_per_run=1", "--first_run_images=4", "--resume",
                   f"--workdir={tmp_path / 'w1'}")  # fmt: skip
    assert third.returncode == 0, third.stderr[-3000:]
    assert "stopped at step 3" in third.stdout and "first run" not in third.stdout
    assert sorted(p.name for p in (tmp_path / "data").iterdir() if p.is_dir()) == [folder.name]


def test_launcher_offline_without_mirror_fails_in_one_line(tmp_path):
    pytest.importorskip("sklearn")
    result = launch(tmp_path, f"--workdir={tmp_path / 'w'}")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no training data: no --data_dir given"), result.stderr
    assert "could not fetch LFW" in last and "pass --data_dir=DIR" in last
    assert not (tmp_path / "w").exists()
    assert not [p for p in (tmp_path / "data").glob("*") if p.is_dir()]


def test_launcher_with_data_dir_prepares_nothing(tmp_path, faces_dir):
    fill_mirror(tmp_path / "mirror", faces_dir, 4)  # Preparing would work, so it must not start.
    result = launch(
        tmp_path,
        f"--data_dir={faces_dir}",
        "--steps_per_run=1",
        f"--workdir={tmp_path / 'w'}",
        mirror=tmp_path / "mirror",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "data").exists()
    assert recorded_data_dir(tmp_path / "w") == str(faces_dir)


def test_lfw_fetch_reuses_its_pngs(places, faces_dir):
    pytest.importorskip("sklearn")
    fill_lfw_cache(places["sklearn"], faces_dir)
    folder = lfw.fetch_lfw(None, bootstrap.LFW_MIN_FACES, n_retries=1)
    assert folder == places["sklearn"] / f"lfw_raw_{bootstrap.LFW_MIN_FACES}"
    assert len(prepare.list_sources(folder)) == bootstrap.LFW_MIN_FACES
    shutil.rmtree(places["sklearn"] / "lfw_home")  # Gone: a second fetch must not need it.
    assert lfw.fetch_lfw(None, bootstrap.LFW_MIN_FACES, n_retries=1) == folder

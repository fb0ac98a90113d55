"""What the launchers decide before training, called directly rather than through a child process.

launch.py and experiments/train_segmenter.py only read flags; the presets
they accept, the folder a run trains on, a first run's sample size, the
distributed start-up and the one-line errors live in
`training.launch_setup` (and, for the segmenter, `segmenter.train`). The
launcher's end-to-end behaviour is covered by test_train.py,
test_first_run.py and test_multihost.py.
"""

import json
import pathlib
import subprocess
import sys

import jax
import pytest
from absl import flags
from ml_collections import config_flags

from glcic_jax import locations
from glcic_jax.dataset import bootstrap, folders
from glcic_jax.face_masks import overlay
from glcic_jax.segmenter import configs as segmenter_configs
from glcic_jax.segmenter import mask_net
from glcic_jax.segmenter import train as segmenter
from glcic_jax.training import checkpoint, configs, launch_setup, train

# config_flags loads a config file with SourceFileLoader.load_module, deprecated in Python 3.12.
pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")
ROOT = pathlib.Path(__file__).resolve().parents[1]
TRAINING_PRESETS = ROOT / "glcic_jax" / "training" / "configs"
SEGMENTER_PRESETS = ROOT / "glcic_jax" / "segmenter" / "configs"


def parse_config(argv):
    """The config that config_flags builds from `argv`'s --config flags, as launch.py's would."""
    argv = [argv[0], *(arg for arg in argv[1:] if arg.startswith("--config"))]
    values = flags.FlagValues()
    config_flags.DEFINE_config_file(
        "config", None, "", flag_values=values, lock_config=True, sys_argv=argv
    )
    values(argv)
    return values.config


# --- preset_argv: --config=NAME becomes the preset's file -----------------------------------


@pytest.mark.parametrize("form", [["--config=tiny"], ["--config", "tiny"]])
def test_a_preset_name_becomes_its_file(form):
    argv = launch_setup.preset_argv(["launch.py", "--mask=mouth", *form, "--config.batch_size=8"])
    assert argv == [
        "launch.py",
        "--mask=mouth",
        f"--config={TRAINING_PRESETS / 'tiny.py'}",
        "--config.batch_size=8",
    ]
    config = parse_config(argv)
    expected = configs.get_config("tiny")
    expected.batch_size = 8
    assert config.to_dict() == expected.to_dict()


def test_every_preset_name_loads_through_config_flags():
    for name in configs.PRESETS:
        config = parse_config(launch_setup.preset_argv(["launch.py", f"--config={name}"]))
        assert config.to_dict() == configs.get_config(name).to_dict()


def test_a_config_path_passes_unchanged():
    argv = ["launch.py", "--config=my/own.py", "--config=my/own.py:arg"]
    assert launch_setup.preset_argv(argv) == argv


def test_an_unknown_preset_is_one_line():
    with pytest.raises(launch_setup.LaunchError) as error:
        launch_setup.preset_argv(["launch.py", "--config=huge"])
    assert str(error.value) == "unknown --config=huge; presets: paper, seed, cpu64, photo64, tiny"


def test_a_misspelt_field_is_one_line_with_a_hint():
    with pytest.raises(launch_setup.LaunchError) as error:
        launch_setup.preset_argv(["launch.py", "--config=tiny", "--config.widht=4"])
    assert str(error.value) == "unknown config field --config.widht (did you mean width?)"
    with pytest.raises(launch_setup.LaunchError) as error:
        launch_setup.preset_argv(["launch.py", "--config.zzzzzz=4"])
    assert str(error.value) == "unknown config field --config.zzzzzz"


@pytest.mark.parametrize("accelerator,preset", [(True, "seed"), (False, "cpu64")])
def test_without_config_the_machine_picks_the_preset(monkeypatch, accelerator, preset):
    monkeypatch.setattr(launch_setup, "has_accelerator_plugin", lambda: accelerator)
    argv = launch_setup.preset_argv(["launch.py", "--mask=mouth", "--config.seed=3"])
    assert argv == [
        "launch.py",
        f"--config={TRAINING_PRESETS / f'{preset}.py'}",
        "--mask=mouth",
        "--config.seed=3",
    ]
    assert parse_config(argv).preset == preset


def test_the_accelerator_check_looks_for_jax_plugins(monkeypatch):
    found = set()
    monkeypatch.setattr(
        launch_setup.importlib.util, "find_spec", lambda name: found.add(name) or None
    )
    assert not launch_setup.has_accelerator_plugin()
    assert found == set(launch_setup.ACCELERATOR_PLUGINS)
    monkeypatch.setattr(
        launch_setup.importlib.util, "find_spec", lambda name: name == "libtpu" or None
    )
    assert launch_setup.has_accelerator_plugin()


def test_segmenter_presets_take_the_same_file_form():
    argv = launch_setup.config_argv(
        ["train_segmenter.py", "--config=tiny"], segmenter_configs, "cpu"
    )
    assert argv == ["train_segmenter.py", f"--config={SEGMENTER_PRESETS / 'tiny.py'}"]
    assert parse_config(argv).to_dict() == segmenter_configs.get_config("tiny").to_dict()
    default = launch_setup.config_argv(["train_segmenter.py"], segmenter_configs, "cpu")
    assert default == ["train_segmenter.py", f"--config={SEGMENTER_PRESETS / 'cpu.py'}"]
    with pytest.raises(
        launch_setup.LaunchError, match=r"^unknown --config=seed; presets: cpu, tiny$"
    ):
        launch_setup.config_argv(["x", "--config=seed"], segmenter_configs, "cpu")
    with pytest.raises(launch_setup.LaunchError, match=r"did you mean unmasked\?"):
        launch_setup.config_argv(["x", "--config.unmaskd=0.1"], segmenter_configs, "cpu")


def test_the_launcher_setup_starts_no_jax():
    """launch.py rewrites --config before allocator.setup() may re-execute it, without JAX."""
    script = (
        "import sys; from glcic_jax.training import launch_setup;"
        "launch_setup.preset_argv(['launch.py', '--config=tiny', '--config.width=4']);"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', 'flax')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --- first_run_images and training_data_dir --------------------------------------------------


def test_first_run_images_defaults():
    assert set(launch_setup.SAMPLE_PRESETS) <= set(configs.PRESETS)
    for preset in configs.PRESETS:
        expected = launch_setup.SAMPLE_IMAGES if preset in ("cpu64", "photo64", "tiny") else 0
        assert launch_setup.first_run_images(preset) == expected
    assert launch_setup.SAMPLE_IMAGES == 2000
    assert launch_setup.first_run_images("tiny", 7) == 7
    assert launch_setup.first_run_images("tiny", 0) == 0  # 0: all, asked for explicitly
    assert launch_setup.first_run_images("seed", 7) == 7


def write_record(workdir: pathlib.Path, data_dir: str) -> None:
    """The data record the trainer writes before a run's first step (train._prepare_data)."""
    workdir.mkdir(parents=True)
    record = dict(
        data_dir=data_dir, listing="0" * 16, files=[], unreadable=[], mean_pixel=[0, 0, 0]
    )
    (workdir / train.DATA_FILES).write_text(json.dumps(record))


def test_data_dir_given_is_used(tmp_path):
    config = configs.get_config("tiny")
    for resume in (False, True):
        got = launch_setup.training_data_dir(
            config, tmp_path / "never", data_dir="/my/faces", resume=resume
        )
        assert got == "/my/faces"


def test_resume_without_a_data_record_is_a_checkpoint_error(tmp_path):
    config = configs.get_config("tiny")
    with pytest.raises(checkpoint.CheckpointError) as error:
        launch_setup.training_data_dir(config, tmp_path / "w", resume=True)
    assert str(error.value) == f"--resume: no checkpoint in {tmp_path / 'w'} (no data_files.json)"
    assert isinstance(error.value, launch_setup.user_errors())
    with pytest.raises(checkpoint.CheckpointError, match=r"^--branch_from: no checkpoint in "):
        launch_setup.training_data_dir(config, tmp_path / "w2", branch_from=str(tmp_path / "b"))


def test_resume_and_branch_read_the_recorded_folder(tmp_path, monkeypatch):
    def no_preparing(*args, **kwargs):
        raise AssertionError("a resumed run must not prepare faces")

    monkeypatch.setattr(bootstrap, "default_data_dir", no_preparing)
    config = configs.get_config("tiny")
    write_record(tmp_path / "run", "/faces/of/run")
    write_record(tmp_path / "parent", "/faces/of/parent")
    assert launch_setup.training_data_dir(config, tmp_path / "run", resume=True) == "/faces/of/run"
    branched = launch_setup.training_data_dir(
        config, tmp_path / "new", branch_from=str(tmp_path / "parent"), images=5
    )
    assert branched == "/faces/of/parent"


def test_an_unreadable_data_record_is_one_line(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / train.DATA_FILES).write_text("{not json")
    with pytest.raises(checkpoint.CheckpointError, match=r"^--resume: .* is not a data record$"):
        launch_setup.training_data_dir(configs.get_config("tiny"), tmp_path / "run", resume=True)


@pytest.mark.parametrize(
    "preset,images,expected", [("tiny", None, 2000), ("photo64", 9, 9), ("seed", None, 0)]
)
def test_a_first_run_prepares_the_default_faces(monkeypatch, tmp_path, preset, images, expected):
    asked = []
    monkeypatch.setattr(
        bootstrap,
        "default_data_dir",
        lambda n, framing: asked.append((n, framing)) or tmp_path / "prepared",
    )
    config = configs.get_config(preset)
    got = launch_setup.training_data_dir(config, tmp_path / "w", images=images)
    assert got == str(tmp_path / "prepared")
    assert asked == [(expected, config.framing)]


# --- start_distributed, --branch_step, the default workdir and the one-line errors -----------


@pytest.fixture
def no_distributed(monkeypatch):
    """Calls to jax.distributed.initialize, recorded instead of made; the collectives setting restored."""
    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda *args: calls.append(args))
    before = jax.config.jax_cpu_collectives_implementation
    yield calls
    jax.config.update("jax_cpu_collectives_implementation", before)


@pytest.mark.parametrize(
    "args,message",
    [
        ((None, 2, 0), "--num_processes > 1 needs --coordinator_address=HOST:PORT (process 0's)"),
        (("", 3, 1), "--num_processes > 1 needs --coordinator_address=HOST:PORT (process 0's)"),
        (("127.0.0.1:1234", 2, 2), "--process_id must be in 0..1"),
        (("127.0.0.1:1234", 4, -1), "--process_id must be in 0..3"),
    ],
)
def test_start_distributed_refuses_bad_arguments(no_distributed, args, message):
    with pytest.raises(launch_setup.LaunchError) as error:
        launch_setup.start_distributed(*args)
    assert str(error.value) == message
    assert no_distributed == []


def test_start_distributed_passes_the_flags_to_jax(no_distributed):
    launch_setup.start_distributed("127.0.0.1:1234", 2, 1)
    assert no_distributed == [("127.0.0.1:1234", 2, 1)]
    assert jax.config.jax_cpu_collectives_implementation == "gloo"


def test_distributed_without_a_cluster_is_one_line(monkeypatch, no_distributed):
    def no_cluster():
        raise ValueError("coordinator_address should be defined.")

    monkeypatch.setattr(jax.distributed, "initialize", no_cluster)
    with pytest.raises(launch_setup.LaunchError) as error:
        launch_setup.start_distributed(None, 1, 0)
    assert str(error.value) == (
        "--distributed: no cluster environment found (coordinator_address should be defined.)"
    )


def test_branch_step_needs_branch_from():
    with pytest.raises(launch_setup.LaunchError, match=r"^--branch_step needs --branch_from"):
        launch_setup.check_branch(None, 2500)
    launch_setup.check_branch("runs/parent", 2500)
    launch_setup.check_branch("runs/parent", None)
    launch_setup.check_branch(None, None)


def test_default_workdir_is_runs_beside_the_launcher():
    workdir = pathlib.Path(launch_setup.default_workdir("mouth", "tiny"))
    assert workdir == ROOT / "runs" / "mouth-tiny"
    assert (workdir.parents[1] / "launch.py").is_file()


def test_a_data_error_in_a_folder_the_user_did_not_name_gets_a_hint():
    error = folders.DataError("no training images in /data/x")
    message = launch_setup.error_message
    assert (
        message(error, data_dir="/data/x", data_dir_given=False, resume=False)
        == "no training images in /data/x (pass --data_dir=DIR instead)"
    )
    assert message(error, data_dir="/data/x", data_dir_given=False, resume=True) == (
        "no training images in /data/x (pass --data_dir=DIR with the images this run started on)"
    )
    assert (
        message(error, data_dir="/data/x", data_dir_given=True, resume=False)
        == "no training images in /data/x"
    )
    assert message(error, data_dir=None, data_dir_given=False, resume=False) == str(error)
    other = checkpoint.CheckpointError("bad checkpoint")
    assert message(other, data_dir="/d", data_dir_given=False, resume=True) == "bad checkpoint"


def test_user_errors_are_the_ones_with_one_line_messages():
    errors = launch_setup.user_errors()
    for kind in (
        launch_setup.LaunchError,
        configs.ConfigError,
        folders.DataError,
        checkpoint.CheckpointError,
        bootstrap.NoTrainingData,
        PermissionError,
    ):
        assert issubclass(kind, errors), kind
    assert not issubclass(RuntimeError, errors) and not issubclass(KeyError, errors)


# --- the segmenter script's setup (segmenter.train) ------------------------------------------


def test_segmenter_default_faces(tmp_path, monkeypatch):
    monkeypatch.setenv(locations.DATA_ENV, str(tmp_path / "data"))
    monkeypatch.setenv(locations.MIRROR_ENV, str(tmp_path / "mirror"))
    (tmp_path / "mirror" / "faces").mkdir(parents=True)
    with pytest.raises(segmenter_configs.ConfigError) as error:
        segmenter.default_face_dirs()
    assert str(error.value).startswith("face folder celeba10k not found (")
    assert str(error.value).endswith("): pass --faces") and "\n" not in str(error.value)
    assert isinstance(error.value, segmenter.USER_ERRORS)
    (tmp_path / "data" / "celeba10k").mkdir(parents=True)
    assert segmenter.default_face_dirs() == [
        (tmp_path / "data" / "celeba10k").absolute(),
        (tmp_path / "mirror" / "faces").absolute(),
    ]


def test_segmenter_export_thresholds():
    defaults = {"min_share": mask_net.MIN_SHARE, "margin": mask_net.MARGIN}
    assert segmenter.export_thresholds() == defaults
    assert segmenter.export_thresholds(0.1, None) == {**defaults, "min_share": 0.1}
    assert segmenter.export_thresholds(None, 0.0) == {**defaults, "margin": 0.0}


def test_segmenter_reports_missing_templates_before_any_work(tmp_path, monkeypatch):
    """The mask templates are checked at once, before the workdir or minutes of face finding."""
    monkeypatch.setattr(overlay, "default_templates_dir", lambda: tmp_path / "no-templates")
    workdir = tmp_path / "run"
    with pytest.raises(overlay.OverlayError) as error:
        segmenter.train_segmenter(segmenter_configs.get_config("tiny"), workdir, [tmp_path])
    assert isinstance(error.value, segmenter.USER_ERRORS) and "\n" not in str(error.value)
    assert not workdir.exists()


def test_a_lost_peer_is_named_with_the_newest_checkpoint(tmp_path, monkeypatch):
    import jax

    from glcic_jax.training import launch_setup

    gloo = ValueError(
        "UNKNOWN: Gloo AllGather failed: Connection closed by peer [127.0.0.1]:1\nmore"
    )
    assert not launch_setup.lost_peer(gloo)  # one process: never a lost peer
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(jax, "process_index", lambda: 0)
    assert launch_setup.lost_peer(gloo)
    assert not launch_setup.lost_peer(ValueError("a shape mismatch"))
    for name in ("4", "10", "12.orbax-checkpoint-tmp-3"):  # the last one unfinished
        (tmp_path / "checkpoints" / name).mkdir(parents=True)
    message = launch_setup.lost_peer_message(gloo, tmp_path)
    assert message.startswith("error: process 1 of this 2-process run stopped (UNKNOWN: Gloo")
    assert "more" not in message and "the newest checkpoint is step 10" in message
    assert message.endswith("start every process again with --resume")
    monkeypatch.setattr(jax, "process_count", lambda: 3)
    assert "one of processes [1, 2] of this 3-process" in launch_setup.lost_peer_message(
        gloo, tmp_path / "new"
    )
    assert "no checkpoint was saved yet" in launch_setup.lost_peer_message(gloo, tmp_path / "new")

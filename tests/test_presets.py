"""The presets as files: each preset's get_config() gives the values the presets always had.

Every preset file under glcic_jax/training/configs/ and
glcic_jax/segmenter/configs/ must build exactly base_config() with the
fields listed here changed, whether reached by name (`get_config("tiny")`,
what the library and tests call) or by its file (what launch.py hands to
config_flags), so a checkpoint written under a preset still resumes under it.
"""

import importlib.util
import pathlib

import pytest

from glcic_jax.segmenter import configs as segmenter_configs
from glcic_jax.training import configs

CPU64 = dict(
    image_size=64,
    width=32,
    d_width=32,
    batch_size=16,
    optimizer="adam",
    g_lr=1e-3,
    d_lr=1e-4,
    phase1_steps=2_500,
    phase2_steps=200,
    total_steps=3_000,
    log_every=25,
    sample_every=500,
    checkpoint_every=500,
)
# The fields each training preset changes from base_config(), as before the presets were files.
TRAINING = {
    "paper": dict(preset="paper"),
    "seed": dict(
        preset="seed",
        batch_size=16,
        total_steps=480_000,
        steps_per_run=80_000,
        checkpoint_every=10_000,
    ),
    "cpu64": dict(preset="cpu64", **CPU64),
    "photo64": dict(
        CPU64,
        preset="photo64",
        mask="overlay",
        framing="mask_crop",
        overlay_dilation=8,
        local_patch=192,
    ),
    "tiny": dict(
        preset="tiny",
        image_size=32,
        width=8,
        d_width=8,
        batch_size=4,
        optimizer="adam",
        g_lr=1e-3,
        d_lr=1e-4,
        phase1_steps=10,
        phase2_steps=5,
        total_steps=40,
        log_every=5,
        sample_every=20,
        checkpoint_every=10,
        num_samples=4,
    ),
}
SEGMENTER = {
    "cpu": dict(preset="cpu"),
    "tiny": dict(
        preset="tiny",
        image_size=32,
        width=4,
        batch_size=4,
        total_steps=30,
        log_every=5,
        checkpoint_every=10,
        sample_every=15,
        num_samples=4,
    ),
}
PACKAGES = [(configs, TRAINING), (segmenter_configs, SEGMENTER)]
CASES = [(package, name, changes) for package, table in PACKAGES for name, changes in table.items()]
IDS = [f"{package.__name__.split('.')[1]}-{name}" for package, name, _ in CASES]


def load_file(path: pathlib.Path):
    """The module at `path`, loaded from its file as config_flags loads a config file."""
    spec = importlib.util.spec_from_file_location(f"preset_file_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_preset_is_tested():
    assert tuple(TRAINING) == configs.PRESETS
    assert tuple(SEGMENTER) == segmenter_configs.PRESETS


@pytest.mark.parametrize("package", [configs, segmenter_configs], ids=["training", "segmenter"])
def test_each_preset_is_one_file_and_each_file_a_preset(package):
    folder = pathlib.Path(package.__file__).parent
    files = {p.stem for p in folder.glob("*.py")} - {"__init__"}
    assert files == set(package.PRESETS)


@pytest.mark.parametrize("package,name,changes", CASES, ids=IDS)
def test_preset_values_by_name(package, name, changes):
    base = package.base_config().to_dict()
    assert set(changes) <= set(base)  # a misspelt field here would be added, not compared
    assert package.get_config(name).to_dict() == {**base, **changes}


@pytest.mark.parametrize("package,name,changes", CASES, ids=IDS)
def test_preset_file_gives_the_same_config(package, name, changes):
    module = load_file(pathlib.Path(package.__file__).parent / f"{name}.py")
    assert module.get_config().to_dict() == package.get_config(name).to_dict()
    assert module.__doc__ and module.__doc__.strip(), f"{name}.py says nothing of its purpose"


@pytest.mark.parametrize("package", [configs, segmenter_configs], ids=["training", "segmenter"])
def test_tiny_is_marked_for_testing_only(package):
    assert (
        "Used for testing only"
        in load_file(pathlib.Path(package.__file__).parent / "tiny.py").__doc__
    )


@pytest.mark.parametrize("package,name,changes", CASES, ids=IDS)
def test_presets_validate(package, name, changes):
    package.validate(package.get_config(name))


@pytest.mark.parametrize(
    "package,default",
    [(configs, "cpu64"), (segmenter_configs, "cpu")],
    ids=["training", "segmenter"],
)
def test_default_and_unknown_preset(package, default):
    assert package.get_config().to_dict() == package.get_config(default).to_dict()
    presets = ", ".join(package.PRESETS)
    for name in ("huge", "__init__", "importlib"):  # not a preset, though the last two import
        with pytest.raises(package.ConfigError) as error:
            package.get_config(name)
        assert str(error.value) == f"unknown preset {name!r}; choose one of {presets}"


def test_presets_return_fresh_configs():
    """A caller that overrides a field changes its own config, never the next caller's."""
    first = configs.get_config("tiny")
    first.batch_size = 99
    assert configs.get_config("tiny").batch_size == 4
    photo = configs.get_config("photo64")
    assert configs.get_config("cpu64").mask == "mouth" and photo.mask == "overlay"

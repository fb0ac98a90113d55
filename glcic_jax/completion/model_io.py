"""Reading and writing completion models: model files, model folders, and a training run's weights.

A training checkpoint holds both networks and both optimizers (34 MB at
cpu64, gigabytes at the paper's size); completing images needs only the
completion network, its BatchNorm statistics and the mean pixel.

- A *model file* holds exactly those in a single .npz, optionally stored as
  bfloat16 (half the bytes), plus the config and step as JSON, so it can be
  shipped, shared and loaded without Orbax or the training data.
- A *model folder* is a folder of model files named `step_<N>.npz`: the
  exported checkpoints of one run, which evaluation and comparison read like
  a training workdir.
- A *run* is a training workdir; only the completion network's part of a
  checkpoint is read (`read_run_weights`), into a target built from the
  config the checkpoint stores.

Every entry point that takes a model path (Completer.load, run_steps,
load_config, and through them evaluation, the survey and the scripts)
decides here, once, which kind of source the path is (`resolve`), which
steps it holds and which config the chosen step was trained with (upgraded
by `config_upgrade` for runs saved before a field existed); `load_weights`
then reads the completion network's weights from it.
"""

import dataclasses
import json
import pathlib
import re

import jax
import ml_collections
import numpy as np

from glcic_jax import config_upgrade, npz_files, runs
from glcic_jax.nets import hole_filling
from glcic_jax.runs import CheckpointError

FORMAT = "glcic-jax-model-1"
STORAGE_DTYPES = ("float32", "bfloat16")
_STEP_FILE = re.compile(r"^step_(\d+)\.npz$")


class ModelFileError(CheckpointError):
    """A model file that cannot be loaded; the message is one line for the user."""


def step_file_name(step: int) -> str:
    return f"step_{step:08d}.npz"


def _flatten(tree, prefix: str) -> dict[str, np.ndarray]:
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {prefix + jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}


def save(path, config, gen, gen_stats, mean_pixel, step: int, storage: str = "float32") -> int:
    """Writes a model file (atomically); returns its size in bytes.

    `storage="bfloat16"` halves the weights' bytes; the BatchNorm statistics
    and the mean pixel stay float32 (they are small, and the statistics set
    the scale of every activation).
    """
    if storage not in STORAGE_DTYPES:
        raise ValueError(f"storage must be one of {STORAGE_DTYPES}, not {storage!r}")
    arrays = {}
    for name, leaf in _flatten(gen, "gen").items():
        if storage == "bfloat16":  # npz has no bfloat16: store its bit pattern
            leaf = leaf.astype(jax.numpy.bfloat16).view(np.uint16)
        arrays[name] = leaf
    arrays.update(_flatten(gen_stats, "gen_stats"))
    header = dict(
        format=FORMAT,
        step=int(step),
        storage=storage,
        config=config.to_dict() if hasattr(config, "to_dict") else dict(config),
    )
    arrays["mean_pixel"] = np.asarray(mean_pixel, np.float32)
    return npz_files.write(path, arrays, header)


def read_header(path) -> dict:
    """The JSON header (format, step, storage, config) of a model file, weights unread."""
    path = pathlib.Path(path)
    try:
        with np.load(path) as npz:
            header = json.loads(npz["header"].tobytes().decode())
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{path} is not a readable model file ({e})") from None
    if header.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a glcic-jax model file")
    return header


def load(path):
    """(config, gen, gen_stats, mean_pixel, step) of a model file, weights float32.

    Raises ModelFileError for a missing, truncated or foreign file.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    header = read_header(path)
    try:
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files if k != "header"}
    except (OSError, ValueError) as e:
        raise ModelFileError(f"{path} is not a readable model file ({e})") from None
    config = config_upgrade.upgrade(header["config"])
    trees = {}
    for prefix, tree in zip(("gen", "gen_stats"), hole_filling.abstract_weights(config)):
        leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
        values = []
        for key_path, leaf in leaves:
            name = prefix + jax.tree_util.keystr(key_path)
            if name not in arrays or arrays[name].shape != leaf.shape:
                raise ModelFileError(f"{path} does not match its config (at {name})")
            value = arrays[name]
            if value.dtype == np.uint16:  # bfloat16 bit pattern
                value = value.view(jax.numpy.bfloat16)
            values.append(np.asarray(value, np.float32))
        trees[prefix] = jax.tree_util.tree_unflatten(treedef, values)
    return config, trees["gen"], trees["gen_stats"], arrays["mean_pixel"], int(header["step"])


def folder_steps(folder) -> dict[int, pathlib.Path]:
    """{step: file} of a model folder (empty when there are none)."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        return {}
    found = {}
    for p in folder.iterdir():
        m = _STEP_FILE.match(p.name)
        if m:
            found[int(m.group(1))] = p
    return dict(sorted(found.items()))


def export_checkpoint(workdir, step: int, path, storage: str = "float32") -> int:
    """Writes the model file of one training checkpoint; returns its size in bytes.

    Only the completion network's part of the checkpoint is read
    (`read_run_weights`). Raises runs.CheckpointError for a missing run or step.
    """
    config, gen, gen_stats, mean_pixel, step = read_run_weights(workdir, step)
    return save(path, config, gen, gen_stats, mean_pixel, step, storage)


def read_run_weights(workdir, step: int | None = None):
    """(config, gen, gen_stats, mean_pixel, step) of a training checkpoint (default: the latest).

    Raises runs.CheckpointError (one line) for a missing run or step.
    """
    with runs.RunReader(workdir) as reader:
        meta = reader.read_meta(step)
        config = config_upgrade.upgrade(meta["config"])
        gen, gen_stats = hole_filling.abstract_weights(config)
        target = dict(
            gen=gen, gen_stats=gen_stats, mean_pixel=jax.ShapeDtypeStruct((3,), np.float32)
        )
        weights = reader.read_state(target, meta["step"])
    return config, weights["gen"], weights["gen_stats"], weights["mean_pixel"], meta["step"]


MODEL_FILE = "model_file"  # one `.npz` written by `save`
MODEL_FOLDER = "model_folder"  # a folder of `step_<N>.npz` model files
RUN = "run"  # a training workdir with Orbax checkpoints
KINDS = (MODEL_FILE, MODEL_FOLDER, RUN)


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """One step of one model source, resolved.

    `path` is what holds that step's weights: the model file itself (for a
    model folder, the step's file) or the run's workdir.
    """

    kind: str
    path: pathlib.Path
    step: int
    config: ml_collections.ConfigDict
    steps: tuple[int, ...]  # every step the source holds, ascending


def resolve(path, step: int | None = None) -> ModelSource:
    """The source at `path` at `step` (default: its latest).

    Raises runs.CheckpointError (ModelFileError for a bad model
    file) with a one-line message when the path holds no model or not that
    step.
    """
    path = pathlib.Path(path)
    if path.suffix == ".npz":
        if not path.is_file():
            raise ModelFileError(f"model file {path} does not exist")
        header = read_header(path)
        if step is not None and step != header["step"]:
            raise runs.CheckpointError(f"{path} holds step {header['step']}, not {step}")
        config = config_upgrade.upgrade(header["config"])
        return ModelSource(MODEL_FILE, path, header["step"], config, (header["step"],))
    if not path.is_dir():
        raise runs.CheckpointError(f"run folder {path} does not exist")
    files = folder_steps(path)
    if files:
        if step is None:
            step = max(files)
        elif step not in files:
            raise runs.CheckpointError(
                f"no model file for step {step} in {path}: have {sorted(files)}"
            )
        header = read_header(files[step])
        config = config_upgrade.upgrade(header["config"])
        return ModelSource(MODEL_FOLDER, files[step], header["step"], config, tuple(files))
    with runs.RunReader(path) as reader:
        have = reader.steps()
        if not have:
            raise runs.CheckpointError(f"no checkpoints in {path}")
        meta = reader.read_meta(step)
    config = config_upgrade.upgrade(meta["config"])
    return ModelSource(RUN, path, meta["step"], config, tuple(have))


def load_weights(source: ModelSource):
    """(gen, gen_stats, mean_pixel) of a resolved source: the completion network only."""
    if source.kind == RUN:
        _, gen, gen_stats, mean_pixel, _ = read_run_weights(source.path, source.step)
    else:
        _, gen, gen_stats, mean_pixel, _ = load(source.path)
    return gen, gen_stats, mean_pixel

"""Where a model comes from: one model file, a folder of model files, or a training run.

Every entry point that takes a model path (Completer.load, run_steps,
load_config, and through them evaluation, the survey and the scripts)
decides here, once, which kind of source the path is, which steps it holds
and which config the chosen step was trained with; `load_weights` then reads
the completion network's weights from it.
"""

import dataclasses
import pathlib

import ml_collections

from glcic_jax import runs
from glcic_jax.completion import model_files, run_weights

MODEL_FILE = "model_file"  # one `.npz` written by model_files
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

    Raises runs.CheckpointError (model_files.ModelFileError for a bad model
    file) with a one-line message when the path holds no model or not that
    step.
    """
    path = pathlib.Path(path)
    if path.suffix == ".npz":
        if not path.is_file():
            raise model_files.ModelFileError(f"model file {path} does not exist")
        header = model_files.read_header(path)
        if step is not None and step != header["step"]:
            raise runs.CheckpointError(f"{path} holds step {header['step']}, not {step}")
        config = ml_collections.ConfigDict(header["config"])
        return ModelSource(MODEL_FILE, path, header["step"], config, (header["step"],))
    if not path.is_dir():
        raise runs.CheckpointError(f"run folder {path} does not exist")
    files = model_files.folder_steps(path)
    if files:
        if step is None:
            step = max(files)
        elif step not in files:
            raise runs.CheckpointError(
                f"no model file for step {step} in {path}: have {sorted(files)}"
            )
        header = model_files.read_header(files[step])
        config = ml_collections.ConfigDict(header["config"])
        return ModelSource(MODEL_FOLDER, files[step], header["step"], config, tuple(files))
    with runs.RunReader(path) as reader:
        have = reader.steps()
        if not have:
            raise runs.CheckpointError(f"no checkpoints in {path}")
        meta = reader.read_meta(step)
    config = ml_collections.ConfigDict(meta["config"])
    return ModelSource(RUN, path, meta["step"], config, tuple(have))


def load_weights(source: ModelSource):
    """(gen, gen_stats, mean_pixel) of a resolved source: the completion network only."""
    if source.kind == RUN:
        _, gen, gen_stats, mean_pixel, _ = run_weights.read(source.path, source.step)
    else:
        _, gen, gen_stats, mean_pixel, _ = model_files.load(source.path)
    return gen, gen_stats, mean_pixel

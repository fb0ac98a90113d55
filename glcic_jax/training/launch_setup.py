"""What launch.py does beyond reading flags, here so that tests can call it directly.

launch.py turns its flags into arguments for these functions and calls
`train.train_and_evaluate`; all the deciding is done here: which preset
--config names (`preset_argv`), how big a first run's face set is
(`first_run_images`), which folder a run trains on (`training_data_dir`),
how the processes of a multi-host run meet (`start_distributed`), where a
run goes by default (`default_workdir`) and which errors are the user's, to
be printed as one line (`user_errors`, `error_message`).

launch.py imports this module before JAX starts and before
`perf.allocator.setup()` may re-execute the process, so nothing here
imports JAX at import time: modules that import it are imported inside the
functions that need them. Mistakes raise `LaunchError` with a one-line
message; the launcher prints it and exits, the library never does.
"""

import difflib
import importlib.util
import json
import os
import pathlib

from glcic_jax import locations

# Presets whose runs are short enough that a first run prepares a sample
# (first_run_images); the others want every face.
SAMPLE_PRESETS = ("cpu64", "photo64", "tiny")
SAMPLE_IMAGES = 2000

# Installed with an accelerator build of JAX: CUDA, ROCm, TPU.
ACCELERATOR_PLUGINS = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "libtpu")


class LaunchError(ValueError):
    """A launcher flag that cannot work; the message is one line for the user."""


def has_accelerator_plugin() -> bool:
    """Whether an accelerator build of JAX is installed (checked without starting JAX)."""
    return any(importlib.util.find_spec(name) is not None for name in ACCELERATOR_PLUGINS)


def default_preset() -> str:
    """The training preset for this machine: seed with a GPU/TPU plugin, else cpu64."""
    return "seed" if has_accelerator_plugin() else "cpu64"


def preset_file(presets, name: str) -> pathlib.Path:
    """The file of preset `name` in the presets package `presets` (a module per preset)."""
    return pathlib.Path(presets.__file__).resolve().parent / f"{name}.py"


def config_argv(argv: list[str], presets, default: str) -> list[str]:
    """Let --config name a preset of the package `presets`: rewrite it to the preset's file.

    config_flags loads a config file and calls its get_config(), so
    `--config=tiny` becomes `--config=.../configs/tiny.py`; a path (FILE.py
    or FILE:ARG) passes unchanged. Without --config, `default` is inserted.

    Args:
      argv: the command line, program name first.
      presets: a presets package (`training.configs`, `segmenter.configs`):
        PRESETS, base_config() and one module per preset beside it.
      default: the preset used when argv has no --config.

    Returns:
      argv with its --config in the file form.

    Raises:
      LaunchError: an unknown preset, or a --config.FIELD that base_config()
        lacks (config_flags would print a traceback for either).
    """
    fields = presets.base_config().keys()
    out, named = [], False
    args = iter(argv)
    for arg in args:
        if arg == "--config":
            arg = "--config=" + next(args, "")
        if arg.startswith("--config="):
            named = True
            value = arg.split("=", 1)[1]
            if ":" not in value and not value.endswith(".py"):
                if value not in presets.PRESETS:
                    raise LaunchError(
                        f"unknown --config={value}; presets: {', '.join(presets.PRESETS)}"
                    )
                arg = f"--config={preset_file(presets, value)}"
        elif arg.startswith("--config."):
            field = arg[len("--config.") :].split("=", 1)[0]
            if field not in fields:
                close = difflib.get_close_matches(field, fields, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise LaunchError(f"unknown config field --config.{field}{hint}")
        out.append(arg)
    if not named:
        out.insert(1, f"--config={preset_file(presets, default)}")
    return out


def preset_argv(argv: list[str]) -> list[str]:
    """launch.py's command line with --config naming a training preset's file (`config_argv`).

    Without --config, the preset is `default_preset()`.
    """
    from glcic_jax.training import configs

    return config_argv(argv, configs, default_preset())


def first_run_images(preset: str, requested: int | None = None) -> int:
    """How many source images a first run's face set is prepared from (0: all).

    Args:
      preset: the run's preset name.
      requested: --first_run_images, if given.

    Returns:
      `requested`, else SAMPLE_IMAGES for the short CPU presets and all for the others.
    """
    if requested is not None:
        return requested
    return SAMPLE_IMAGES if preset in SAMPLE_PRESETS else 0


def training_data_dir(
    config,
    workdir,
    *,
    data_dir: str | None = None,
    resume: bool = False,
    branch_from: str | None = None,
    images: int | None = None,
) -> str:
    """The folder a run trains on.

    Args:
      config: the run's config (preset and framing choose the default faces).
      workdir: the run's folder.
      data_dir: --data_dir: used as given.
      resume: --resume: the folder recorded in `workdir` when the run started.
      branch_from: --branch_from: the folder recorded in that run.
      images: --first_run_images (see `first_run_images`).

    Returns:
      `data_dir`; with `resume` or `branch_from`, the recorded folder; else
      the faces prepared once into the project's data/ (dataset.bootstrap).

    Raises:
      checkpoint.CheckpointError: a run to resume or branch from that never
        started training (it has no data record).
      bootstrap.NoTrainingData, prepare.PrepareError: no faces can be prepared.
    """
    from glcic_jax.training import checkpoint, train

    if data_dir:
        return data_dir
    if resume or branch_from:
        # A run records its data before its first step, so without the
        # record there is nothing to resume, and nothing to prepare for.
        run = branch_from or workdir
        flag = "--branch_from" if branch_from else "--resume"
        record = pathlib.Path(run) / train.DATA_FILES
        if not record.is_file():
            raise checkpoint.CheckpointError(
                f"{flag}: no checkpoint in {run} (no {train.DATA_FILES})"
            )
        try:
            return json.loads(record.read_text())["data_dir"]
        except (ValueError, KeyError, TypeError):
            raise checkpoint.CheckpointError(f"{flag}: {record} is not a data record") from None
    from glcic_jax.dataset import bootstrap

    return str(
        bootstrap.default_data_dir(first_run_images(config.preset, images), framing=config.framing)
    )


def start_distributed(coordinator_address: str | None, num_processes: int, process_id: int):
    """Join the other processes of a multi-host run (before JAX starts its backends).

    With `num_processes` > 1 the coordinator, count and index are these
    arguments; otherwise JAX reads them from the cluster scheduler's
    environment (Slurm, Open MPI, Kubernetes, TPU pods). CPU processes talk
    over Gloo; on GPUs the setting has no effect.

    Args:
      coordinator_address: HOST:PORT of process 0 (--coordinator_address).
      num_processes: --num_processes; 1 or less: from the environment (--distributed).
      process_id: this process's index (--process_id).

    Raises:
      LaunchError: no coordinator or an index out of range, checked before
        JAX is touched; or no cluster environment to read.
    """
    if num_processes > 1:
        if not coordinator_address:
            raise LaunchError(
                "--num_processes > 1 needs --coordinator_address=HOST:PORT (process 0's)"
            )
        if not 0 <= process_id < num_processes:
            raise LaunchError(f"--process_id must be in 0..{num_processes - 1}")
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if num_processes > 1:
        jax.distributed.initialize(coordinator_address, num_processes, process_id)
        return
    try:
        jax.distributed.initialize()
    except (ValueError, RuntimeError) as e:
        raise LaunchError(f"--distributed: no cluster environment found ({e})") from None


def check_branch(branch_from: str | None, branch_step: int | None) -> None:
    """Raise LaunchError for --branch_step without --branch_from, or a negative one."""
    if branch_step is not None and not branch_from:
        raise LaunchError("--branch_step needs --branch_from (the run to branch from)")
    if branch_step is not None and branch_step < 0:
        raise LaunchError(f"--branch_step must be >= 0, not {branch_step}")


def check_processes(num_processes: int, process_id: int, distributed: bool = False) -> None:
    """Raise LaunchError for a process count under 1 or an index outside it (before JAX starts).

    With --distributed the count and index come from the cluster's environment,
    so only flags given beside it are checked.
    """
    if num_processes < 1:
        raise LaunchError(f"--num_processes must be >= 1, not {num_processes}")
    if not distributed and not 0 <= process_id < num_processes:
        raise LaunchError(f"--process_id must be in 0..{num_processes - 1}, not {process_id}")


def check_devices(config, names: dict[str, str] | None = None) -> None:
    """Raise ConfigError when the batch does not split over the run's devices (JAX starts here).

    `train.train_and_evaluate` refuses it too, but only after the workdir exists
    (and a branch's checkpoint is copied); checked here, a refused run writes nothing.
    """
    import jax

    from glcic_jax.training import configs

    name = (names or {}).get("batch_size", "--config.batch_size")
    if config.batch_size % jax.device_count():
        raise configs.ConfigError(
            f"{name}={config.batch_size} is not divisible by the {jax.device_count()} devices"
        )


def config_names(*, seed: bool = False, steps_per_run: bool = False) -> dict[str, str]:
    """How launch.py's user wrote each config field: --config.FIELD, or --seed and
    --steps_per_run where those flags set the field (`configs.validate` names them so)."""
    from glcic_jax.training import configs

    overrides = {}
    if seed:
        overrides["seed"] = "--seed"
    if steps_per_run:
        overrides["steps_per_run"] = "--steps_per_run"
    return configs.field_names(overrides)


def missing_folders(workdir) -> list[pathlib.Path]:
    """The folders a run on `workdir` would create: its checkpoints/, itself, and missing parents.

    Taken before the run starts, so that a refused run removes only what it
    created (`remove_leftovers`); the deepest first.
    """
    from glcic_jax.runs import checkpoint_dir

    workdir = pathlib.Path(workdir).absolute()
    missing = []
    for folder in (checkpoint_dir(workdir), workdir, *workdir.parents):
        if os.path.lexists(folder):
            break
        missing.append(folder)
    return missing


def remove_leftovers(workdir, created: list[pathlib.Path]) -> None:
    """Remove what a run refused before its first step left in `workdir`, nothing else.

    Its own lock file, unless another run holds it (`checkpoint.remove_own_lock`),
    then, of the folders in `created` (`missing_folders`, taken before the run), those
    that are empty. Nothing that existed before the run is touched, and no file but
    the lock is deleted.
    """
    from glcic_jax.runs import checkpoint_dir
    from glcic_jax.training import checkpoint

    checkpoints = checkpoint_dir(pathlib.Path(workdir).absolute())
    if checkpoints in created and checkpoints.is_dir():  # (a run refused earlier made none)
        checkpoint.remove_own_lock(workdir)
    for folder in created:  # the deepest first
        try:
            folder.rmdir()
        except FileNotFoundError:  # the run was refused before it made this one
            continue
        except OSError:  # not empty: it holds something not ours to delete
            break


def default_workdir(mask: str, preset: str) -> str:
    """A run's folder when no --workdir is given: runs/<mask>-<preset> in the project."""
    return str(locations.PROJECT_ROOT / "runs" / f"{mask}-{preset}")


def user_errors() -> tuple[type[BaseException], ...]:
    """The errors the launcher reports as one line `error: ...` (exit status 2).

    Each says, in one line, what the user can change: a flag, a config
    field, the data, a checkpoint, the mask templates, a --workdir that is
    a file or not writable.
    """
    from glcic_jax.dataset import bootstrap, folders, prepare
    from glcic_jax.face_masks import overlay
    from glcic_jax.training import checkpoint, configs

    return (
        LaunchError,
        configs.ConfigError,
        folders.DataError,
        checkpoint.CheckpointError,
        overlay.OverlayError,
        bootstrap.NoTrainingData,
        prepare.PrepareError,
        # a --workdir that is a file, or not writable
        FileExistsError,
        NotADirectoryError,
        PermissionError,
    )


def error_message(
    error: BaseException, *, data_dir: str | None, data_dir_given: bool, resume: bool
) -> str:
    """The one line for a user error; a data problem in a folder the user did not name gets a hint.

    Args:
      error: one of `user_errors()`.
      data_dir: the folder the run was to train on (None if not yet known).
      data_dir_given: whether --data_dir named it.
      resume: --resume (the hint then asks for the run's own images).
    """
    from glcic_jax.dataset import folders

    hint = ""
    if isinstance(error, folders.DataError) and data_dir and not data_dir_given:
        again = "with the images this run started on" if resume else "instead"
        hint = f" (pass --data_dir=DIR {again})"
    return f"{error}{hint}"


# What JAX's errors say when a collective or the coordination service lost a peer.
_PEER_LOST_WORDS = ("Gloo", "closed by peer", "reset by peer", "heartbeat", "coordination service")


def lost_peer(error: BaseException) -> bool:
    """Whether `error` is a multi-process run's collective failing because another process is gone."""
    import jax

    if not any(w in str(error) for w in _PEER_LOST_WORDS):
        return False
    try:
        return jax.process_count() > 1
    except Exception:  # JAX itself is broken: the original error is the one to show
        return False


def lost_peer_message(error: BaseException, workdir) -> str:
    """One line for the survivor of a lost peer: who, the newest checkpoint, how to go on."""
    import jax

    others = [i for i in range(jax.process_count()) if i != jax.process_index()]
    who = f"process {others[0]}" if len(others) == 1 else f"one of processes {others}"
    folder = pathlib.Path(workdir) / "checkpoints"
    steps = (
        sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []
    )
    saved = f"the newest checkpoint is step {steps[-1]}" if steps else "no checkpoint was saved yet"
    first = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
    return (
        f"error: {who} of this {jax.process_count()}-process run stopped ({first}); {saved} in"
        f" {folder}: start every process again with --resume"
    )

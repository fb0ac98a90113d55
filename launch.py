"""Train GLCIC on face photos with the study's hole regimes.

  python launch.py --mask=mouth                     # preset for this machine, faces in data/
  python launch.py --mask=random --config=cpu64 --data_dir=DIR --workdir=W
  python launch.py --mask=mouth --workdir=W --resume --steps_per_run=80000
  python launch.py --mask=mouth --config=tiny --config.batch_size=8   # any field
  python launch.py --mask=overlay --config=photo64 --data_dir=DIR --workdir=W2 \
      --branch_from=W --branch_step=2500 --config.d_label_smoothing=0.1  # phase 3 another way

--config takes a preset name (paper, seed, cpu64, photo64, tiny; default: seed where
JAX has a GPU/TPU plugin installed, else cpu64) and every field can be
overridden as --config.FIELD=VALUE.

Without --data_dir, the first run prepares its faces once into the project's
data/ (glcic_jax.dataset.bootstrap): detected and aligned by the project's
own pipeline, so the study's mouth box sits on the mouth, from the lab's
local mirror of CelebA where there is one, else from LFW fetched through
scikit-learn (internet, once). Later runs reuse that folder; a resumed run
keeps the data it started with. Flags only: the work is
glcic_jax.training.train.train_and_evaluate.
"""

import difflib
import importlib.util
import json
import pathlib
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from glcic_jax.perf import allocator  # jax-free; main() calls its setup() first

ROOT = pathlib.Path(__file__).resolve().parent
CONFIG_FILE = ROOT / "glcic_jax" / "training" / "configs.py"
# Presets whose runs are short enough that a first run prepares a sample
# (first_run_images); the others want every face.
SAMPLE_PRESETS = ("cpu64", "photo64", "tiny")
SAMPLE_IMAGES = 2000

config_flags.DEFINE_config_file(
    "config", None, "Preset name, then --config.FIELD=VALUE overrides.", lock_config=True
)
flags.DEFINE_enum(
    "mask",
    None,
    ["mouth", "random", "random_mouthsize", "overlay"],  # holes.REGIMES (kept jax-free here)
    "Hole regime: the study's mouth box, its random holes, mouth-box-sized holes at random"
    " places, or face-mask shapes (templates on the aligned face).",
)
flags.DEFINE_string(
    "data_dir",
    None,
    "Folder with train/ and test/ face images. Default: the faces prepared once in the"
    " project's data/ (see --first_run_images), or, with --resume, the run's own.",
)
flags.DEFINE_integer(
    "first_run_images",
    None,
    "Without --data_dir: how many source images the default face set is prepared from"
    " (0: all); a set prepared earlier from that many, or from all, is reused. Default:"
    f" {SAMPLE_IMAGES:,} for the CPU presets ({', '.join(SAMPLE_PRESETS)}), all for the others."
    " Preparing takes ~70 ms per image per core (the mirror's 10,000: ~12 min on one core,"
    f" against cpu64's ~30 min of training); cpu64's 3,000 steps of 16 see each of a"
    f" {SAMPLE_IMAGES:,}-image set's ~1,600 training faces ~30 times, while the GPU presets'"
    " 480k+ steps want every face.",
    lower_bound=0,
)
flags.DEFINE_string(
    "workdir", None, "Run folder (checkpoints, logs). Default: runs/<mask>-<preset>."
)
flags.DEFINE_bool("resume", False, "Continue from the workdir's latest checkpoint.")
flags.DEFINE_integer(
    "steps_per_run", None, "Stop cleanly after this many steps (the study's 80k chunks)."
)
flags.DEFINE_string(
    "branch_from",
    None,
    "Start a new --workdir from this run's checkpoint (--branch_step, default its latest),"
    " changing only the phase schedule or adversarial settings (e.g. phase 3 tried several"
    " ways from one completion-only checkpoint).",
)
flags.DEFINE_integer("branch_step", None, "The --branch_from checkpoint's step.")
flags.DEFINE_integer("seed", None, "Random seed (init, data order, holes). Default: the preset's.")
flags.DEFINE_string("coordinator_address", None, "Multi-host: host:port of process 0.")
flags.DEFINE_integer("num_processes", 1, "Multi-host: number of processes.")
flags.DEFINE_integer("process_id", 0, "Multi-host: this process's index.")
flags.DEFINE_bool(
    "distributed",
    False,
    "Multi-host under a cluster scheduler (e.g. Slurm's srun): JAX reads the coordinator,"
    " process count and index from its environment.",
)
flags.DEFINE_enum(
    "allocator",
    "jemalloc",
    allocator.KINDS,
    "Malloc for this process: jemalloc where installed (fastest CPU steps), else glibc"
    " with settings that keep large buffers in the heap; none: the C library's defaults.",
)
flags.mark_flag_as_required("mask")


def has_accelerator_plugin() -> bool:
    """Whether an accelerator build of JAX is installed (checked without starting JAX)."""
    return any(
        importlib.util.find_spec(name) is not None
        for name in ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "libtpu")
    )


def preset_argv(argv: list[str]) -> list[str]:
    """Let --config name a preset: rewrite it to config_flags' FILE:NAME form.

    Unknown presets and misspelt --config.FIELD overrides exit with one line
    (config_flags would print a traceback for them).
    """
    from glcic_jax.training import configs

    fields = configs.base_config().keys()
    out, named = [], False
    args = iter(argv)
    for arg in args:
        if arg == "--config":
            arg = "--config=" + next(args, "")
        if arg.startswith("--config="):
            named = True
            value = arg.split("=", 1)[1]
            if ":" not in value and not value.endswith(".py"):
                if value not in configs.PRESETS:
                    _usage_error(f"unknown --config={value}; presets: {', '.join(configs.PRESETS)}")
                arg = f"--config={CONFIG_FILE}:{value}"
        elif arg.startswith("--config."):
            field = arg[len("--config.") :].split("=", 1)[0]
            if field not in fields:
                close = difflib.get_close_matches(field, fields, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                _usage_error(f"unknown config field --config.{field}{hint}")
        out.append(arg)
    if not named:
        preset = "seed" if has_accelerator_plugin() else "cpu64"
        out.insert(1, f"--config={CONFIG_FILE}:{preset}")
    return out


def first_run_images(preset: str) -> int:
    """--first_run_images, or its default for `preset` (0: all)."""
    if FLAGS.first_run_images is not None:
        return FLAGS.first_run_images
    return SAMPLE_IMAGES if preset in SAMPLE_PRESETS else 0


def training_data_dir(config, workdir: str) -> str:
    """--data_dir; with --resume (--branch_from), the folder the run started on; else the prepared faces.

    Raises:
      checkpoint.CheckpointError: --resume of a workdir that never started training.
      bootstrap.NoTrainingData, prepare.PrepareError: no faces can be prepared.
    """
    from glcic_jax.dataset import bootstrap
    from glcic_jax.training import checkpoint, train

    if FLAGS.data_dir:
        return FLAGS.data_dir
    if FLAGS.resume or FLAGS.branch_from:
        # A run records its data before its first step, so without the
        # record there is nothing to resume, and nothing to prepare for.
        run = FLAGS.branch_from or workdir
        record = pathlib.Path(run) / train.DATA_FILES
        if not record.is_file():
            flag = "--branch_from" if FLAGS.branch_from else "--resume"
            raise checkpoint.CheckpointError(
                f"{flag}: no checkpoint in {run} (no {train.DATA_FILES})"
            )
        return json.loads(record.read_text())["data_dir"]
    return str(bootstrap.default_data_dir(first_run_images(config.preset), framing=config.framing))


def start_distributed() -> None:
    """Join the other processes of a multi-host run (before JAX starts its backends).

    With --num_processes the coordinator, count and index come from the
    flags; with --distributed alone JAX reads them from the cluster
    scheduler's environment (Slurm, Open MPI, Kubernetes, TPU pods). CPU
    processes talk over Gloo; on GPUs the setting has no effect.
    """
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if FLAGS.num_processes > 1:
        if not FLAGS.coordinator_address:
            _usage_error("--num_processes > 1 needs --coordinator_address=HOST:PORT (process 0's)")
        if not 0 <= FLAGS.process_id < FLAGS.num_processes:
            _usage_error(f"--process_id must be in 0..{FLAGS.num_processes - 1}")
        jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
    else:
        try:
            jax.distributed.initialize()
        except (ValueError, RuntimeError) as e:
            _usage_error(f"--distributed: no cluster environment found ({e})")


def _usage_error(message: str):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    # First: it may re-execute this script under jemalloc.
    in_effect = allocator.setup(FLAGS.allocator) or "the C library's defaults"
    print(f"allocator: {in_effect}, see glcic_jax/perf/allocator.py")
    from glcic_jax.dataset import bootstrap, folders, prepare
    from glcic_jax.face_masks import overlay
    from glcic_jax.training import checkpoint, configs, train

    # Orbax logs every save at INFO; the progress bar and metrics.jsonl say what matters.
    logging.set_verbosity(logging.WARNING)
    if FLAGS.num_processes > 1 or FLAGS.distributed:
        start_distributed()
    config = FLAGS.config
    config.mask = FLAGS.mask
    if FLAGS.seed is not None:
        config.seed = FLAGS.seed
    if FLAGS.steps_per_run is not None:
        config.steps_per_run = FLAGS.steps_per_run
    workdir = FLAGS.workdir or str(ROOT / "runs" / f"{config.mask}-{config.preset}")
    user_errors = (
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
    data_dir = None
    if FLAGS.branch_step is not None and not FLAGS.branch_from:
        _usage_error("--branch_step needs --branch_from (the run to branch from)")
    try:
        # What can be checked in a moment, before minutes of data preparation.
        configs.validate(config)
        if config.mask == "overlay":
            overlay.load_templates()
        data_dir = training_data_dir(config, workdir)
        print(f"preset {config.preset}, mask {config.mask}, data {data_dir}, workdir {workdir}")
        step = train.train_and_evaluate(
            config,
            workdir,
            data_dir,
            resume=FLAGS.resume,
            branch_from=FLAGS.branch_from,
            branch_step=FLAGS.branch_step,
        )
    except user_errors as e:
        hint = ""
        if isinstance(e, folders.DataError) and data_dir and not FLAGS.data_dir:
            again = "with the images this run started on" if FLAGS.resume else "instead"
            hint = f" (pass --data_dir=DIR {again})"
        _usage_error(f"{e}{hint}")
    print(f"stopped at step {step}; checkpoint in {workdir}/checkpoints")


FLAGS = flags.FLAGS

if __name__ == "__main__":
    try:
        app.run(main, argv=preset_argv(sys.argv))
    except KeyboardInterrupt:
        sys.exit(130)

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
glcic_jax.training.train.train_and_evaluate, and what is decided before it
(preset, data folder, processes, errors) glcic_jax.training.launch_setup.
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

# Both jax-free: main() calls allocator.setup() first, which may re-execute this script.
from glcic_jax.perf import allocator
from glcic_jax.training import launch_setup
from glcic_jax.training.launch_setup import SAMPLE_IMAGES, SAMPLE_PRESETS

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
flags.DEFINE_string(
    "compile_cache",
    None,
    "Folder of JAX's persistent compilation cache, so a resumed chunk loads its compiled"
    " steps instead of compiling them again (default: WORKDIR/compile_cache; 'none': off;"
    " $JAX_COMPILATION_CACHE_DIR wins).",
)
flags.mark_flag_as_required("mask")


def _usage_error(message: str):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv):
    if len(argv) > 1:  # before anything starts: one line, not absl's page of usage
        _usage_error(
            f"unexpected argument{'s' if len(argv) > 2 else ''} {' '.join(argv[1:])!r}"
            " (every option is a --flag; see --helpshort)"
        )
    # First: it may re-execute this script under jemalloc.
    in_effect = allocator.setup(FLAGS.allocator) or "the C library's defaults"
    print(f"allocator: {in_effect}, see glcic_jax/perf/allocator.py")
    from glcic_jax.face_masks import overlay
    from glcic_jax.training import compile_cache, configs, train

    user_errors = launch_setup.user_errors()
    # Orbax logs every save at INFO; the progress bar and metrics.jsonl say what matters.
    logging.set_verbosity(logging.WARNING)
    config = FLAGS.config
    config.mask = FLAGS.mask
    if FLAGS.seed is not None:
        config.seed = FLAGS.seed
    if FLAGS.steps_per_run is not None:
        config.steps_per_run = FLAGS.steps_per_run
    workdir = FLAGS.workdir or launch_setup.default_workdir(config.mask, config.preset)
    # What a refused run may remove again: only folders it created itself.
    created = launch_setup.missing_folders(workdir)
    data_dir = None
    try:
        # The flags first, before JAX starts or anything is written.
        launch_setup.check_processes(FLAGS.num_processes, FLAGS.process_id, FLAGS.distributed)
        launch_setup.check_branch(FLAGS.branch_from, FLAGS.branch_step)
        names = launch_setup.config_names(
            seed=FLAGS.seed is not None, steps_per_run=FLAGS.steps_per_run is not None
        )
        configs.validate(config, names)
        if FLAGS.num_processes > 1 or FLAGS.distributed:
            launch_setup.start_distributed(
                FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id
            )
        # What can be checked in a moment, before minutes of data preparation.
        launch_setup.check_devices(config, names)
        if config.mask == "overlay":
            overlay.load_templates()
        data_dir = launch_setup.training_data_dir(
            config,
            workdir,
            data_dir=FLAGS.data_dir,
            resume=FLAGS.resume,
            branch_from=FLAGS.branch_from,
            images=FLAGS.first_run_images,
        )
        print(f"preset {config.preset}, mask {config.mask}, data {data_dir}, workdir {workdir}")
        if config.mask == "mouth" and FLAGS.data_dir and not FLAGS.resume:
            _warn_if_unaligned(data_dir)
        cache = None
        if FLAGS.compile_cache != "none":
            cache = compile_cache.enable(workdir, FLAGS.compile_cache)
            cached = compile_cache.CacheCount().listen()
        step = train.train_and_evaluate(
            config,
            workdir,
            data_dir,
            resume=FLAGS.resume,
            branch_from=FLAGS.branch_from,
            branch_step=FLAGS.branch_step,
        )
    except user_errors as e:
        launch_setup.remove_leftovers(workdir, created)
        _usage_error(
            launch_setup.error_message(
                e, data_dir=data_dir, data_dir_given=bool(FLAGS.data_dir), resume=FLAGS.resume
            )
        )
    except Exception as e:
        if not launch_setup.lost_peer(e):
            raise
        # One line, then out at once: JAX's exit hook would wait for the lost
        # process at a shutdown barrier and abort after its heartbeat timeout.
        print(f"\n{launch_setup.lost_peer_message(e, workdir)}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(1)
    if cache is not None:
        print(cached.line(cache))
    print(f"stopped at step {step}; checkpoint in {workdir}/checkpoints")


def _warn_if_unaligned(data_dir) -> None:
    """One warning line when the mouth box would fall on unaligned faces (the run goes on)."""
    from glcic_jax.dataset import alignment_check, folders
    from glcic_jax.faces import detection

    report = alignment_check.check(folders.list_images(data_dir, "train"), detection.Detector())
    if report.looks_unaligned:
        print(
            f"warning: only {report.aligned} of {report.faces} faces sampled in {data_dir} sit where"
            " the study's aligned canvas puts them; the mouth box covers the mouth only on aligned"
            " faces. Align them first: python experiments/prepare_data.py"
            f" --source={data_dir} --out={data_dir.rstrip('/')}-aligned",
            file=sys.stderr,
        )


FLAGS = flags.FLAGS

if __name__ == "__main__":
    try:
        try:
            argv = launch_setup.preset_argv(sys.argv)
        except launch_setup.LaunchError as e:
            _usage_error(str(e))
        app.run(main, argv=argv)
    except KeyboardInterrupt:
        sys.exit(130)

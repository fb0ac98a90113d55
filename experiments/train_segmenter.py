r"""Trains the mask segmentation network on synthetic masked faces: flags only, the work is
glcic_jax.segmenter.train.

  python experiments/train_segmenter.py --workdir=runs/segmenter            # preset cpu
  python experiments/train_segmenter.py --workdir=runs/segmenter --resume   # next chunk
  python experiments/train_segmenter.py --config=tiny --config.total_steps=50 --workdir=W
  python experiments/train_segmenter.py --workdir=W --export=FILE.npz      # after training

--config takes a preset name (cpu, tiny: glcic_jax/segmenter/configs/; default
cpu) and every field can be overridden as --config.FIELD=VALUE.
--faces names the face folders (their train/ splits are used; default: the
lab mirror's celeba10k and faces). --export writes the latest checkpoint as a
segmenter file (bfloat16) with the thresholds given by --min_share and --margin.
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from glcic_jax.segmenter import configs as segmenter_configs
from glcic_jax.training import launch_setup

config_flags.DEFINE_config_file(
    "config", None, "Preset name (cpu, tiny), then --config.FIELD=VALUE.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", "runs/segmenter", "Run folder (checkpoints, metrics).")
_RESUME = flags.DEFINE_bool("resume", False, "Continue from the workdir's latest checkpoint.")
_FACES = flags.DEFINE_list(
    "faces",
    None,
    "Face folders (their train/ split); default: celeba10k and faces from the mirror.",
)
_EXPORT = flags.DEFINE_string("export", None, "Write the latest checkpoint as this segmenter file.")
_MIN_SHARE = flags.DEFINE_float("min_share", None, "Export: share of the crop that means masked.")
_MARGIN = flags.DEFINE_float("margin", None, "Export: dilation in canvas pixels.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from glcic_jax.segmenter import train as segmenter

    logging.set_verbosity(logging.WARNING)
    try:
        if _EXPORT.value:
            thresholds = segmenter.export_thresholds(_MIN_SHARE.value, _MARGIN.value)
            size = segmenter.export(_WORKDIR.value, _EXPORT.value, thresholds=thresholds)
            print(f"wrote {_EXPORT.value} ({size / 1e6:.2f} MB)")
            return
        faces = _FACES.value or segmenter.default_face_dirs()
        step = segmenter.train_segmenter(FLAGS.config, _WORKDIR.value, faces, _RESUME.value)
    except segmenter.USER_ERRORS as e:
        sys.exit(f"error: {e}")
    print(f"stopped at step {step}; checkpoint in {_WORKDIR.value}/checkpoints")


FLAGS = flags.FLAGS

if __name__ == "__main__":
    try:
        try:
            argv = launch_setup.config_argv(sys.argv, segmenter_configs, default="cpu")
        except launch_setup.LaunchError as e:
            sys.exit(f"error: {e}")
        app.run(main, argv=argv)
    except KeyboardInterrupt:
        sys.exit(130)

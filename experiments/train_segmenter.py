r"""Trains the mask segmentation network on synthetic masked faces: flags only, the work is
glcic_jax.segmenter.train.

  python experiments/train_segmenter.py --workdir=runs/segmenter            # preset cpu
  python experiments/train_segmenter.py --workdir=runs/segmenter --resume   # next chunk
  python experiments/train_segmenter.py --config=tiny --config.total_steps=50 --workdir=W
  python experiments/train_segmenter.py --workdir=W --export=FILE.npz      # after training

--faces names the face folders (their train/ splits are used; default: the
lab mirror's celeba10k and faces). --export writes the latest checkpoint as a
segmenter file (bfloat16) with the thresholds given by --min_share and --margin.
"""

import pathlib
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from glcic_jax import locations

CONFIG_FILE = (
    pathlib.Path(__file__).resolve().parents[1] / "glcic_jax/training/segmenter_configs.py"
)
DEFAULT_FACES = ("celeba10k", "faces")

config_flags.DEFINE_config_file(
    "config", f"{CONFIG_FILE}:cpu", "Preset name (cpu, tiny), then --config.FIELD=VALUE.",
    lock_config=True,
)  # fmt: skip
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


def preset_argv(argv: list[str]) -> list[str]:
    """--config=NAME -> config_flags' FILE:NAME form."""
    out = []
    for arg in argv:
        if arg.startswith("--config=") and ":" not in arg and not arg.endswith(".py"):
            arg = f"--config={CONFIG_FILE}:{arg.split('=', 1)[1]}"
        out.append(arg)
    return out


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from glcic_jax.face_masks import overlay
    from glcic_jax.segmenter import configs as segmenter_configs
    from glcic_jax.segmenter import mask_net
    from glcic_jax.segmenter import train as segmenter
    from glcic_jax.training import checkpoint

    logging.set_verbosity(logging.WARNING)
    try:
        if _EXPORT.value:
            thresholds = {
                "min_share": mask_net.MIN_SHARE if _MIN_SHARE.value is None else _MIN_SHARE.value,
                "margin": mask_net.MARGIN if _MARGIN.value is None else _MARGIN.value,
            }
            size = segmenter.export(_WORKDIR.value, _EXPORT.value, thresholds=thresholds)
            print(f"wrote {_EXPORT.value} ({size / 1e6:.2f} MB)")
            return
        faces = _FACES.value
        if not faces:
            faces = [locations.find(name) for name in DEFAULT_FACES]
            if None in faces:
                missing = DEFAULT_FACES[faces.index(None)]
                raise segmenter_configs.ConfigError(
                    f"face folder {missing} not found ({locations.candidates(missing)}): pass --faces"
                )
        overlay.load_templates()  # a missing template folder is reported at once
        step = segmenter.train_segmenter(FLAGS.config, _WORKDIR.value, faces, _RESUME.value)
    except (
        segmenter_configs.ConfigError,
        checkpoint.CheckpointError,
        overlay.OverlayError,
        FileExistsError,
        NotADirectoryError,
        PermissionError,
    ) as e:
        sys.exit(f"error: {e}")
    print(f"stopped at step {step}; checkpoint in {_WORKDIR.value}/checkpoints")


FLAGS = flags.FLAGS

if __name__ == "__main__":
    try:
        app.run(main, argv=preset_argv(sys.argv))
    except KeyboardInterrupt:
        sys.exit(130)

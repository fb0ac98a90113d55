r"""Trains the fine stage (the refiner) on sharp faces: flags only, the work is
glcic_jax.refiner.train.

  python experiments/train_refiner.py --workdir=runs/refiner            # preset cpu
  python experiments/train_refiner.py --workdir=runs/refiner --resume   # next chunk
  python experiments/train_refiner.py --config=tiny --config.total_steps=4 --workdir=W
  python experiments/train_refiner.py --workdir=W --export=FILE.npz     # after training

--config takes a preset name (cpu, tiny: glcic_jax/refiner/configs/; default
cpu) and every field can be overridden as --config.FIELD=VALUE. --faces
names a folder of face photos (default: celebahq/train/images of the data
folders). --coarse names the coarse model (a model file or a run folder;
default: the shipped photo model, whose frame the refiner learns).
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from glcic_jax.refiner import configs as refiner_configs
from glcic_jax.training import launch_setup

config_flags.DEFINE_config_file(
    "config", None, "Preset name (cpu, tiny), then --config.FIELD=VALUE.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", "runs/refiner", "Run folder (checkpoints, metrics).")
_RESUME = flags.DEFINE_bool("resume", False, "Continue from the workdir's latest checkpoint.")
_FACES = flags.DEFINE_string("faces", None, "Folder of face photos; default celebahq/train/images.")
_COARSE = flags.DEFINE_string(
    "coarse", None, "Coarse model file or run; default the shipped photo model."
)
_EXPORT = flags.DEFINE_string("export", None, "Write the latest checkpoint as this refiner file.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from glcic_jax.completion import inference
    from glcic_jax.refiner import train as refiner

    logging.set_verbosity(logging.WARNING)
    try:
        if _EXPORT.value:
            size = refiner.export(_WORKDIR.value, _EXPORT.value)
            print(f"wrote {_EXPORT.value} ({size / 1e6:.2f} MB)")
            return
        config = FLAGS.config
        if _COARSE.value:
            coarse = inference.Completer.load(_COARSE.value, batch_size=config.batch_size)
        else:
            coarse = inference.Completer.photo_model(batch_size=config.batch_size)
        faces = _FACES.value or refiner.default_face_dir()
        step = refiner.train_refiner(config, _WORKDIR.value, faces, coarse, _RESUME.value)
    except refiner.USER_ERRORS as e:
        sys.exit(f"error: {e}")
    print(f"stopped at step {step}; checkpoint in {_WORKDIR.value}/checkpoints")


FLAGS = flags.FLAGS

if __name__ == "__main__":
    try:
        try:
            argv = launch_setup.config_argv(sys.argv, refiner_configs, default="cpu")
        except launch_setup.LaunchError as e:
            sys.exit(f"error: {e}")
        app.run(main, argv=argv)
    except KeyboardInterrupt:
        sys.exit(130)

"""Export training checkpoints as model files (the completion network only).

  python experiments/export_model.py --workdir=runs/mouth-cpu64 --out=models/mouth-cpu64
  python experiments/export_model.py --workdir=runs/mouth-cpu64 --steps=6000 \
      --out=models/mouth-cpu64 --storage=bfloat16

Writes OUT/step_<N>.npz per checkpoint step: a model folder that evaluate.py,
compare.py, survey.py and complete.py read like a workdir.
"""

import pathlib
import sys

from absl import app, flags, logging

from glcic_jax import runs
from glcic_jax.completion import model_io

_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Training run folder (has checkpoints/).", required=True
)
_OUT = flags.DEFINE_string("out", None, "Model folder to write.", required=True)
_STEPS = flags.DEFINE_list("steps", None, "Checkpoint steps (default: all).")
_STORAGE = flags.DEFINE_enum("storage", "float32", model_io.STORAGE_DTYPES, "Weight storage.")


def main(argv):
    del argv
    logging.set_verbosity(logging.ERROR)
    try:
        with runs.RunReader(_WORKDIR.value) as reader:
            available = reader.steps()
        wanted = [int(s) for s in _STEPS.value] if _STEPS.value else available
        missing = sorted(set(wanted) - set(available))
        if missing:
            raise runs.CheckpointError(
                f"no checkpoint at step(s) {missing} in {_WORKDIR.value} (it has {available})"
            )
    except (runs.CheckpointError, ValueError) as e:
        sys.exit(f"error: {e}")
    out = pathlib.Path(_OUT.value)
    for step in wanted:
        path = out / model_io.step_file_name(step)
        size = model_io.export_checkpoint(_WORKDIR.value, step, path, _STORAGE.value)
        print(f"step {step}: {path} ({size / 2**20:.1f} MB, {_STORAGE.value})")


if __name__ == "__main__":
    app.run(main)

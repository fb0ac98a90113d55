r"""Serves the demo page: python -m glcic_jax.demo [--port=7860] [--output=DIR] [--checkpoint=RUN ...]

Opens on http://127.0.0.1:PORT/ (--host=0.0.0.0 to reach it from other
machines: the page has no login). Models offered: the shipped photo model
(the default), the study's mouth-box model, and each --checkpoint (a run, a
folder of model files or one model file). With a donor bank (--donors,
default data/donor_bank.npz when it exists) fills get a donor face's fine
detail. Uploads and results go to --output (default data/demo), one folder
per upload; nothing is written elsewhere.
"""

import pathlib
import sys

import cv2  # noqa: F401  (OpenCV before JAX's threads)
from absl import app, flags, logging

from glcic_jax import locations

_HOST = flags.DEFINE_string("host", "127.0.0.1", "Address to listen on.")
_PORT = flags.DEFINE_integer(
    "port", 7860, "Port (0: any free one).", lower_bound=0, upper_bound=65535
)
_OUTPUT = flags.DEFINE_string(
    "output", str(locations.data_home() / "demo"), "Folder for uploads and results."
)
_CHECKPOINTS = flags.DEFINE_multi_string("checkpoint", [], "More completion models to offer.")
_DONORS = flags.DEFINE_string(
    "donors",
    str(locations.data_home() / "donor_bank.npz"),
    "Donor bank for fine detail ('' for none).",
)

PHOTO_LABEL = "photo model (worn masks, shipped)"
STUDY_LABEL = "study mouth-box model (shipped)"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.ERROR)
    from glcic_jax import web_server
    from glcic_jax.completion import inference, photo
    from glcic_jax.demo import app as demo_app
    from glcic_jax.detail import donor_bank

    loaders = {
        PHOTO_LABEL: lambda: inference.Completer.photo_model(batch_size=1),
        STUDY_LABEL: lambda: inference.Completer.from_model_file(inference.PRETRAINED, 1),
    }
    for run in _CHECKPOINTS.value:
        if not pathlib.Path(run).exists():
            sys.exit(f"error: checkpoint not found: {run}")
        loaders[run] = lambda run=run: inference.Completer.load(run, batch_size=1)
    bank = None
    if _DONORS.value and pathlib.Path(_DONORS.value).exists():
        try:
            bank = donor_bank.DonorBank.load(_DONORS.value)
        except donor_bank.DonorBankError as e:
            sys.exit(f"error: {e}")
    elif _DONORS.value and _DONORS.value != _DONORS.default:
        sys.exit(f"error: donor bank not found: {_DONORS.value}")
    models = demo_app.Models(loaders, bank)
    try:
        models.completer(PHOTO_LABEL)  # load the default model now: the first photo is then quick
        flask_app = demo_app.create_app(models, _OUTPUT.value)
        server = web_server.create_server(flask_app, host=_HOST.value, port=_PORT.value, threads=2)
    except (photo.PhotoError, OSError, ValueError) as e:
        sys.exit(f"error: {e}")
    host = server.effective_host
    print(f"serving the demo on http://{host}:{server.effective_port}/", flush=True)
    if bank is None:
        print("note: no donor bank: fills stay the network's smooth ones"
              " (python experiments/build_donor_bank.py)", flush=True)  # fmt: skip
    try:
        server.run()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    app.run(main)

"""Complete the masked faces in photos: one photo or a folder of them.

  python experiments/complete.py --input=photo.jpg        # the shipped model, into completed/
  python experiments/complete.py --checkpoint=runs/mouth-cpu64 --input=photos/ \
      --output=out/ [--step=N] [--region=box|mask|file] [--mask_file=mask.png] \
      [--no_postprocess]

Without --checkpoint the model shipped with the code is used
(glcic_jax/completion/pretrained/MODEL_CARD.md). --checkpoint takes a training run, a
folder of exported model files or one model file (.npz).

For each photo (a folder is searched recursively; its layout is kept under
--output) writes:
  NAME.png            the completed photo, the input's size
  NAME_side.png       input | filled region | completion (at most 1024 px high)
Photos with no face get a one-line message and are listed at the end.
--region=file reads --mask_file: white = fill, the photo's size (photo pixels)
or 256x256 (the aligned face). Wiring only: the work is in glcic_jax.completion.photo.
"""

import pathlib
import sys

from absl import app, flags, logging

from glcic_jax.completion import photo

_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "Run folder, model folder or model file (default: the shipped model)."
)
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_INPUT = flags.DEFINE_string("input", None, "A photo, or a folder of photos.")
_OUTPUT = flags.DEFINE_string("output", "completed", "Output folder.")
_REGION = flags.DEFINE_enum("region", "box", photo.REGIONS, "Region to fill.")
_MASK_FILE = flags.DEFINE_string("mask_file", None, "Region PNG for --region=file.")
_NO_POSTPROCESS = flags.DEFINE_boolean(
    "no_postprocess", False, "Skip the paper's Telea + seamlessClone blending."
)
flags.mark_flags_as_required(["input"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.ERROR)  # Orbax warns on every read-only open.
    sources, root = _sources(pathlib.Path(_INPUT.value))
    user_mask = None
    if _REGION.value == "file":
        if not _MASK_FILE.value:
            _fail("--region=file needs --mask_file")
        user_mask = _call(photo.load_user_mask, _MASK_FILE.value)
    elif _MASK_FILE.value:
        _fail("--mask_file is only used with --region=file")
    completer = _load_completer(_CHECKPOINT.value, _STEP.value)

    from tqdm import tqdm

    out_dir = pathlib.Path(_OUTPUT.value)
    no_face, failed = [], []
    pc = photo.PhotoCompleter(completer, postprocess=not _NO_POSTPROCESS.value)
    for path in tqdm(sources, desc="photos", unit="photo", disable=len(sources) < 2):
        name = path.relative_to(root).with_suffix("")
        try:
            rgb = photo.load_photo(path)
            result = pc.complete(rgb, _REGION.value, user_mask)
        except photo.PhotoError as e:
            tqdm.write(f"skipped: {e}")
            failed.append(path)
            continue
        if result.status == "no_face":
            tqdm.write(f"no face found: {path}")
            no_face.append(path)
        target = out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        _save(result.completed, target.with_name(target.name + ".png"))
        _save(photo.side_by_side(rgb, result), target.with_name(target.name + "_side.png"))
    done = len(sources) - len(no_face) - len(failed)
    print(f"completed {done} of {len(sources)} photos into {out_dir}")
    for label, paths in (("no face found", no_face), ("skipped", failed)):
        if paths:
            print(f"{label} ({len(paths)}): " + ", ".join(str(p) for p in paths))
    if failed:
        sys.exit(1)


def _sources(path: pathlib.Path):
    """(photos, root): the photo itself, or every photo under a folder."""
    from glcic_jax.dataset import prepare

    if path.is_file():
        return [path], path.parent
    if path.is_dir():
        sources = prepare.list_sources(path)
        if not sources:
            _fail(f"no photos ({', '.join(prepare.SUFFIXES)}) in {path}")
        return sources, path
    _fail(f"input not found: {path}")


def _load_completer(run, step):
    from glcic_jax import runs
    from glcic_jax.completion import inference

    try:
        if run is None:
            if step is not None:
                _fail("--step needs --checkpoint (the shipped model has one step)")
            return inference.Completer.pretrained(batch_size=1)
        if not pathlib.Path(run).exists():
            _fail(f"checkpoint not found: {run}")
        return inference.Completer.load(run, step, batch_size=1)
    except (runs.CheckpointError, FileNotFoundError, KeyError, ValueError) as e:
        _fail(f"cannot load a model from {run or inference.PRETRAINED}: {e}")


def _call(fn, *args):
    try:
        return fn(*args)
    except photo.PhotoError as e:
        _fail(str(e))


def _save(rgb, path: pathlib.Path):
    from PIL import Image

    Image.fromarray(rgb).save(path)


def _fail(message: str):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    app.run(main)

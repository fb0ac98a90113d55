"""Complete the masked faces in photos: one photo or a folder of them.

  python experiments/complete.py --input=photo.jpg        # the shipped models, into completed/
  python experiments/complete.py --checkpoint=runs/mouth-cpu64 --input=photos/ \
      --output=out/ [--step=N] [--region=mask|box|file] [--segmenter=net|grabcut] \
      [--mask_file=mask.png] [--refiner=none|shipped|FILE] [--no_postprocess]

A fine stage (opt-in, not the default): --refiner=shipped lets the shipped
refiner (pretrained/REFINER_CARD.md) redraw each face's fill at the face's
own resolution over the model's coarse fill; --refiner=FILE uses another
refiner file. It scores better than the coarse fill on held-out studio
portraits (LPIPS, fine detail) but draws creased or lumpy lower faces on
most real photos, so the coarse fill stays the default (docs/photos.md, "The fine
stage"). Models framed on the study's canvas cannot use it.

Fine detail: with a donor bank (--donors, default data/donor_bank.npz,
built once by experiments/build_donor_bank.py from sharp face photos) the
fill gets the fine texture of the donor face that best matches it (lips, the
nose's tip, skin grain; glcic_jax/detail/). Without one the fill is the
network's own, smooth at a large face's size, and a note says so.

Without --checkpoint the shipped photo model is used, trained on face-mask
shapes in a crop that holds the chin and cheeks
(glcic_jax/completion/pretrained/PHOTO_MODEL_CARD.md; the study's mouth-box
model is --checkpoint=glcic_jax/completion/pretrained/mouth64.npz). --checkpoint takes a training run, a
folder of exported model files or one model file (.npz).

--region=mask (the default) fills the face mask each face wears, found by the
shipped mask segmenter (pretrained/MASK_SEGMENTER_CARD.md) in the photo's own
pixels; faces without a mask are left untouched. --segmenter=grabcut uses the
older colour-based GrabCut segmentation instead, for comparison.

For each photo (a folder is searched recursively; its layout is kept under
--output) writes, keeping the photo's suffix so that face.jpg and face.png
get distinct results:
  NAME.png            the completed photo, the input's size (face.jpg -> face.jpg.png)
  NAME_side.png       input | filled region | completion (at most 1024 px high)
and two tables for the whole run, merged into the folder's earlier ones (a
photo done again replaces its rows): --output/completion_summary.csv, one row
per photo (outputs, faces found, masked and completed, region, its pixels,
the segmenter, seconds, status, error), and --output/completion_faces.csv, one row
per face (photo, face index, the detector's box and confidence, segmenter,
method, mask share, the pixels its fill wrote, completed, the donor that
lent the fill its detail): where to look for
a region put on something that is not a masked face. The last line printed
names both.
--output may lie inside the input folder: it is never read back as photos,
nor is any earlier output folder. Each photo ends "completed" (a face
filled), "no_masked_face" (faces found, no mask on any: written unchanged),
"no_face" (none found: written unchanged, with a hint), "failed" (listed;
the others go on) or "interrupted"; the last line counts them and names the
tables. Exit status: 0 when every photo was completed, 3 when none failed
but some had nothing to complete (no face, no masked face), 1 when any
failed, 130 on Ctrl-C, 2 for a usage error (one line, before any work). --region=file reads --mask_file: white =
fill, the photo's size (photo pixels) or 256x256 (the aligned face).
Wiring only: the work is in glcic_jax.completion.photo and photo_folder.
"""

import pathlib
import sys

from absl import app, flags, logging

from glcic_jax import locations
from glcic_jax.completion import photo, photo_folder

DEFAULT_DONORS = locations.data_home() / "donor_bank.npz"
STATUS_WORDS = {
    photo_folder.COMPLETED: "completed",
    photo_folder.NO_MASKED_FACE: "no masked face",
    photo_folder.NO_FACE: "no face found",
    photo_folder.FAILED: "failed",
    photo_folder.INTERRUPTED: "not reached",
}

_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "Run folder, model folder or model file (default: the shipped model)."
)
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_INPUT = flags.DEFINE_string("input", None, "A photo, or a folder of photos.")
_OUTPUT = flags.DEFINE_string("output", "completed", "Output folder.")
_REGION = flags.DEFINE_enum(
    "region", "mask", photo.REGIONS, "Region to fill: the worn mask, the study's box, or a file."
)
_SEGMENTER = flags.DEFINE_enum(
    "segmenter", "net", photo.MASK_SEGMENTERS, "For --region=mask: the trained network or GrabCut."
)
_MASK_FILE = flags.DEFINE_string("mask_file", None, "Region PNG for --region=file.")
_MIN_CONFIDENCE = flags.DEFINE_float(
    "min_confidence",
    photo.MIN_CONFIDENCE,
    "Face detections scoring below this are ignored (0..1]; lower it for faces the detector"
    " doubts, e.g. behind a face mask.",
)
_MASKED_MIN_CONFIDENCE = flags.DEFINE_float(
    "masked_min_confidence",
    photo.MASKED_MIN_CONFIDENCE,
    "With --region=mask and the net segmenter: a detection scoring from this up to"
    " --min_confidence counts as a face when the segmenter finds a mask on it.",
)
_DONORS = flags.DEFINE_string(
    "donors",
    str(DEFAULT_DONORS),
    "Donor bank (.npz) whose faces lend the fill fine detail; '' for the network's smooth fill."
    " Built by experiments/build_donor_bank.py.",
)
_REFINER = flags.DEFINE_string(
    "refiner",
    "none",
    "Fine stage: 'none' (the coarse fill), 'shipped' (pretrained/refiner.npz) or a refiner file.",
)
_NO_POSTPROCESS = flags.DEFINE_boolean(
    "no_postprocess", False, "Skip the paper's Telea + seamlessClone blending."
)
flags.mark_flags_as_required(["input"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.ERROR)  # Orbax warns on every read-only open.
    if _REGION.value == "file" and not _MASK_FILE.value:
        _fail("--region=file needs --mask_file")
    if _REGION.value != "file" and _MASK_FILE.value:
        _fail("--mask_file is only used with --region=file")
    if not 0 < _MIN_CONFIDENCE.value <= 1:
        _fail(f"--min_confidence must be in (0, 1], not {_MIN_CONFIDENCE.value}")
    if not 0 < _MASKED_MIN_CONFIDENCE.value <= 1:
        _fail(f"--masked_min_confidence must be in (0, 1], not {_MASKED_MIN_CONFIDENCE.value}")
    source, out_dir = pathlib.Path(_INPUT.value), pathlib.Path(_OUTPUT.value)
    if not source.exists():
        _fail(f"input not found: {source}")
    bank = _load_donors(_DONORS.value)  # a bad bank is refused before any folder is made
    refiner = _call(photo.refiner_from_flag, _REFINER.value)  # likewise a bad refiner file
    folder = source.is_dir()
    _call(photo_folder.check_output_dir, out_dir, source if folder else None)
    if folder:
        mask = [_MASK_FILE.value] if _MASK_FILE.value else []
        photos, root = photo_folder.list_photos(source, out_dir, exclude=mask), source
        if not photos:
            _fail(f"no photos ({', '.join(photo_folder.PHOTO_SUFFIXES)}) in {source}")
    else:
        photos, root = [source], source.parent
    user_mask = _call(photo.load_user_mask, _MASK_FILE.value) if _MASK_FILE.value else None
    model = _load_completer(_CHECKPOINT.value, _STEP.value)
    completer = _call(
        photo.PhotoCompleter,
        model,
        min_confidence=_MIN_CONFIDENCE.value,
        postprocess=not _NO_POSTPROCESS.value,
        segmenter=_SEGMENTER.value,
        masked_min_confidence=_MASKED_MIN_CONFIDENCE.value,
        detail_bank=bank,
        refiner=refiner,
    )
    if _REGION.value == "mask" and _SEGMENTER.value == "net":
        _call(lambda: completer.mask_net)  # a missing segmenter file: one line, before any work
    if bank is None and _DONORS.value:
        print(
            f"note: no donor bank at {_DONORS.value}: fills stay the network's smooth ones"
            " (build one: python experiments/build_donor_bank.py)"
        )

    from tqdm import tqdm

    def progress(items):
        return tqdm(items, desc="photos", unit="photo", disable=len(items) < 2)

    rows, interrupted = [], False
    run = photo_folder.complete_photos(
        completer, photos, root, out_dir, _REGION.value, user_mask, progress
    )
    try:
        for row in run:
            rows.append(row)
            if row.status in (photo_folder.NO_FACE, photo_folder.NO_MASKED_FACE):
                tqdm.write(f"{STATUS_WORDS[row.status]}: {row.photo}")
            elif row.status == photo_folder.FAILED:
                tqdm.write(f"failed: {row.error}")
    except KeyboardInterrupt:  # the table still says what was done
        interrupted = True
        rows += [
            photo_folder.SummaryRow(
                str(p), region_kind=_REGION.value, status=photo_folder.INTERRUPTED
            )
            for p in photos[len(rows) :]
        ]
    try:
        tables = photo_folder.write_tables(out_dir, rows)
    except OSError as e:
        print(f"error: cannot write the tables into {out_dir}: {e.strerror or e}", file=sys.stderr)
        sys.exit(1)
    counts = _report(rows, out_dir, *tables)
    sys.exit(photo_folder.exit_status(counts, interrupted))


def _report(rows, out_dir, summary, faces) -> dict:
    """Prints the closing lines (the last: the counts and where the tables are); returns the counts."""
    counts = {status: sum(r.status == status for r in rows) for status in photo_folder.STATUSES}
    hints = {
        photo_folder.NO_FACE: "the detector doubts faces behind a mask: try --min_confidence=0.7,"
        " or give the region with --region=file --mask_file=MASK.png",
        photo_folder.NO_MASKED_FACE: "left unchanged; --region=box fills the study's mouth box",
    }
    for status in (photo_folder.NO_FACE, photo_folder.NO_MASKED_FACE, photo_folder.FAILED):
        paths = [r.photo for r in rows if r.status == status]
        if paths:
            hint = f" ({hints[status]})" if status in hints else ""
            print(f"{STATUS_WORDS[status]} ({len(paths)}){hint}: " + ", ".join(paths))
    said = ", ".join(
        f"{STATUS_WORDS[s]} {n}" for s, n in counts.items() if n or s != photo_folder.INTERRUPTED
    )
    print(f"{len(rows)} photos into {out_dir}: {said}; summary: {summary}; per face: {faces}")
    return counts


def _load_donors(path):
    """The donor bank at `path`; None for '' or a missing default bank."""
    from glcic_jax.detail import donor_bank

    if not path:
        return None
    if not pathlib.Path(path).exists():
        if pathlib.Path(path) == DEFAULT_DONORS:
            return None  # said once the run starts (`_NO_BANK_NOTE`)
        _fail(f"donor bank not found: {path}")
    try:
        return donor_bank.DonorBank.load(path)
    except donor_bank.DonorBankError as e:
        _fail(str(e))


def _load_completer(run, step):
    from glcic_jax import runs
    from glcic_jax.completion import inference

    try:
        if run is None:
            if step is not None:
                _fail("--step needs --checkpoint (the shipped model has one step)")
            return inference.Completer.photo_model(batch_size=1)
        if not pathlib.Path(run).exists():
            _fail(f"checkpoint not found: {run}")
        return inference.Completer.load(run, step, batch_size=1)
    except (runs.CheckpointError, FileNotFoundError, KeyError, ValueError) as e:
        _fail(f"cannot load a model from {run or inference.PHOTO_MODEL}: {e}")


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except photo.PhotoError as e:
        _fail(str(e))


def _fail(message: str):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    app.run(main)

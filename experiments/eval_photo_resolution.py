r"""Scores the photo fill at the photo's own resolution on held-out sharp faces with pasted masks.

  python experiments/eval_photo_resolution.py --out=DIR              # all 200 CelebA-HQ test faces
  python experiments/eval_photo_resolution.py --n=100 --out=DIR
  python experiments/eval_photo_resolution.py --model=RUN_OR_FILE --faces=DIR --out=DIR

Faces: CelebA-HQ's held-out test faces at 512 px (the first --n by file name
in celebahq/test/images, found through `glcic_jax.locations`), or --faces.
Each gets a face-mask template pasted by its own landmarks (--seed), and is
completed by the whole photo pipeline with its defaults (--model: the
completion model, default the shipped photo model), by the same pipeline
given the true mask, and by OpenCV's Telea given the true mask.

Writes DIR/rows.csv (one row per face and method), DIR/summary.md (means
and medians, paired differences with 95% bootstrap intervals) and
DIR/typical.jpg, DIR/worst.jpg (the faces around the median and at the top
of the default pipeline's LPIPS), DIR/worst_found.jpg (the top among the
faces where the pipeline found a masked face); columns: masked, the region
the pipeline found, the pipeline, the pipeline given the true mask, Telea,
the truth; with --donors (a donor bank, experiments/build_donor_bank.py),
two more methods and columns: both pipeline fills with the donor detail.
With a refiner (--refiner=shipped or a file; default the shipped one when
the model is framed as it learnt; --refiner=none leaves it out), two more:
both pipeline fills through the fine stage, and with --donors as well, the
refined fill given the true mask with donor detail.
CelebA-HQ's terms: non-commercial research only, never committed or
published outside the lab (its README). Wiring only: the protocol is
glcic_jax/evaluation/photo_resolution.py.
"""

import pathlib
import sys
import time

import cv2  # noqa: F401  (OpenCV before JAX's threads)
from absl import app, flags, logging
from tqdm import tqdm

_FACES = flags.DEFINE_string(
    "faces", None, "Folder of held-out photos (default: celebahq/test/images of the data folders)."
)
_N = flags.DEFINE_integer("n", 200, "Faces (the first N photos, sorted by name).", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 7000, "Seed of the pasted masks' templates and jitter.")
_MODEL = flags.DEFINE_string(
    "model", None, "Completion model (run, folder or file; default: the shipped photo model)."
)
_OUT = flags.DEFINE_string("out", None, "Output folder.", required=True)
_DONORS = flags.DEFINE_string(
    "donors", None, "A donor bank (.npz, experiments/build_donor_bank.py): adds the detail rows."
)
_REFINER = flags.DEFINE_string(
    "refiner",
    None,
    "Fine-stage rows: 'none', 'shipped' or a refiner file (experiments/train_refiner.py"
    " --export); default the shipped one for a model framed as it learnt (the mask crop).",
)
_ROWS = flags.DEFINE_integer("sheet_rows", 4, "Faces on each of the typical and worst sheets.")
_TILE = flags.DEFINE_integer("tile", 200, "Side of a sheet's tile, px.")
_MAX_KB = flags.DEFINE_integer("max_sheet_kb", 150, "Largest sheet JPEG, KB (quality is lowered).")


def main(argv):
    del argv
    logging.set_verbosity(logging.ERROR)  # Orbax logs every checkpoint read at INFO
    from glcic_jax import runs
    from glcic_jax.completion import inference, photo
    from glcic_jax.detail import donor_bank
    from glcic_jax.evaluation import figures, tables
    from glcic_jax.evaluation import photo_resolution as pr
    from glcic_jax.face_masks import overlay
    from glcic_jax.refiner import refine_net

    paths = pr.held_out_paths(_FACES.value)[: _N.value]
    if not paths:
        where = _FACES.value or f"{pr.FACES_FOLDER}/test/images under the data folders"
        sys.exit(f"eval_photo_resolution: no photos in {where}")
    try:
        overlay.load_templates()
        model = inference.Completer.load(_MODEL.value or inference.PHOTO_MODEL, batch_size=1)
        completer = photo.PhotoCompleter(model)
        _ = completer.mask_net  # a missing segmenter file: one line, before any work
        bank = donor_bank.DonorBank.load(_DONORS.value) if _DONORS.value else None
        refining_completer = None
        choice = _REFINER.value
        if choice is None:  # the shipped one, for models framed as it learnt
            choice = "shipped" if model.framing == refine_net.FRAMING else "none"
        refiner = photo.refiner_from_flag(choice)
        if refiner is not None:
            refining_completer = photo.PhotoCompleter(
                model, mask_segmenter=completer.mask_net, refiner=refiner
            )
    except (
        overlay.OverlayError, runs.CheckpointError, photo.PhotoError, donor_bank.DonorBankError,
        ValueError,
    ) as e:  # fmt: skip
        sys.exit(f"eval_photo_resolution: {e}")
    out = pathlib.Path(_OUT.value)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    photos, skipped = pr.pasted_photos(paths, _SEED.value)
    print(f"{len(photos)} faces ({len(skipped)} photos unreadable or without a face at 0.9)")
    if not photos:
        sys.exit("eval_photo_resolution: no face found in any photo")
    rows, tiles = pr.score(
        completer,
        photos,
        lambda xs: tqdm(xs, desc="faces", unit="face"),
        _TILE.value,
        bank,
        refining_completer,
    )
    tables.write_csv(out / "rows.csv", rows)
    text = pr.report(rows)
    (out / "summary.md").write_text(text)
    print(text)
    pipeline = [r for r in rows if r["method"] == "pipeline"]
    lpips = [r["lpips"] for r in pipeline]
    sheets = pr.picks(lpips, _ROWS.value)
    # The worst fills, leaving out the faces the pipeline did not find or found no mask on.
    found = [i for i, r in enumerate(pipeline) if r["status"] == pr.FOUND]
    if found:
        sheets["worst_found"] = [
            found[j] for j in pr.picks([lpips[i] for i in found], _ROWS.value)["worst"]
        ]
    columns = pr.SHEET_COLUMNS + (pr.DETAIL_COLUMNS if bank is not None else ())
    if refining_completer is not None:
        columns += pr.REFINED_COLUMNS + (pr.REFINED_DETAIL_COLUMNS if bank is not None else ())
    for name, chosen in sheets.items():
        data = figures.jpeg_bytes(
            figures.contact_sheet(tiles, chosen, columns), _MAX_KB.value * 1000
        )
        (out / f"{name}.jpg").write_bytes(data)
        faces = ", ".join(f"{photos[i].name} ({lpips[i]:.3f})" for i in chosen)
        print(f"{name}.jpg ({len(data) // 1000} KB; pipeline LPIPS): {faces}")
    print(f"done in {time.perf_counter() - start:.0f} s; rows.csv, summary.md and sheets in {out}")


if __name__ == "__main__":
    app.run(main)

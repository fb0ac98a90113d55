r"""Builds the aligned 256x256 face set: flags only, the work is glcic_jax.dataset.prepare.

  python experiments/prepare_data.py --source=RAW_DIR --out=OUT
  python experiments/prepare_data.py --source=PHOTOS --out=data/faces256 --min_face=0
  python experiments/prepare_data.py --source=lfw --out=OUT  # online; --min_face=0 unless set

Writes OUT/train/, OUT/test/, OUT/manifest.csv, OUT/summary.json and
OUT/contact_sheet.png. A non-empty OUT is refused unless --overwrite. Photos
whose faces are smaller than --min_face (the study's 128 px) are dropped: pass
--min_face=0 for small pre-cropped sets such as LFW crops or CelebA.
"""

import json
import pathlib
import sys

from absl import app, flags, logging

from glcic_jax.dataset import lfw, prepare, prepare_settings, review
from glcic_jax.faces import framing

_SOURCE = flags.DEFINE_string("source", None, "Folder of raw photos, or 'lfw'.", required=True)
_OUT = flags.DEFINE_string("out", None, "Output folder.", required=True)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Rebuild a previous output folder.")
_MIN_FACE = flags.DEFINE_integer("min_face", 128, "Drop faces whose box is smaller (source px).")
_MIN_CONFIDENCE = flags.DEFINE_float("min_confidence", 0.9, "Detector score for a face.")
_DOMINANCE = flags.DEFINE_float(
    "dominance", 0.5, "Drop photos with a second face this large (fraction of the largest's area)."
)
_REQUIRE_MOUTH = flags.DEFINE_bool("require_mouth", True, "Drop implausible mouth landmarks.")
_MIN_MOUTH_SKIN = flags.DEFINE_float(
    "min_mouth_skin", 0.4, "Drop faces with less skin-coloured lower face: masks (0: off)."
)
_MAX_OUTSIDE = flags.DEFINE_float(
    "max_outside", 0.25, "Drop crops with more than this fraction beyond the photo's edge."
)
_DUP_DISTANCE = flags.DEFINE_integer(
    "dup_distance",
    40,
    "Near-duplicate if 256-bit perceptual hashes differ in at most this many bits (-1: off).",
)
_MAX_PIXELS = flags.DEFINE_integer("max_pixels", 64_000_000, "Larger images are dropped as bombs.")
_MAX_IMAGES = flags.DEFINE_integer(
    "max_images", 0, "Prepare a fixed, evenly spaced sample of this many source images (0: all)."
)
_TEST_FRACTION = flags.DEFINE_float("test_fraction", 0.2, "Share of kept images in test/.")
_SPLIT_SEED = flags.DEFINE_integer("split_seed", 0, "Seed of the train/test split.")
_FORMAT = flags.DEFINE_enum("format", "png", ["png", "jpg"], "Output image format.")
_FRAMING = flags.DEFINE_enum(
    "framing",
    "canvas",
    list(framing.FRAMINGS),
    "canvas: the study's aligned face; mask_crop: zoomed out to hold a worn mask's whole"
    " region (for --config=photo64).",
)
_WORKERS = flags.DEFINE_integer("workers", 2, "Processes for detection and alignment.")
_VERIFY = flags.DEFINE_bool(
    "verify",
    True,
    "Detect faces again on the outputs and report mouths inside the mouth box (canvas framing).",
)
_LFW_HOME = flags.DEFINE_string(
    "lfw_home",
    None,
    "scikit-learn data cache (default: $SCIKIT_LEARN_DATA, else ~/scikit_learn_data).",
)
_LFW_MIN_FACES = flags.DEFINE_integer("lfw_min_faces", 20, "LFW people with this many photos.")
_LFW_RETRIES = flags.DEFINE_integer("lfw_retries", 3, "LFW download attempts.")


def _settings(min_face: int) -> prepare.Settings:
    return prepare.Settings(
        min_face=min_face,
        min_confidence=_MIN_CONFIDENCE.value,
        dominance=_DOMINANCE.value,
        require_mouth=_REQUIRE_MOUTH.value,
        min_mouth_skin=_MIN_MOUTH_SKIN.value,
        max_outside=_MAX_OUTSIDE.value,
        dup_distance=_DUP_DISTANCE.value,
        max_pixels=_MAX_PIXELS.value,
        test_fraction=_TEST_FRACTION.value,
        split_seed=_SPLIT_SEED.value,
        image_format=_FORMAT.value,
        max_images=_MAX_IMAGES.value,
        framing=_FRAMING.value,
    )


def main(argv):
    if len(argv) > 1:
        sys.exit(
            f"prepare_data: unexpected argument {' '.join(argv[1:])!r} (flags are --NAME=VALUE)"
        )
    try:
        source, min_face = _SOURCE.value, _MIN_FACE.value
        settings = _settings(min_face)
        # Every flag is checked before LFW is fetched or anything is written.
        prepare.check_settings(settings, _WORKERS.value)
        if source == "lfw":
            prepare_settings.check_range("--lfw_min_faces", _LFW_MIN_FACES.value, "count", 0, None)
            prepare_settings.check_range("--lfw_retries", _LFW_RETRIES.value, "count", 1, None)
            home = pathlib.Path(_LFW_HOME.value).expanduser() if _LFW_HOME.value else None
            source = lfw.fetch_lfw(home, _LFW_MIN_FACES.value, _LFW_RETRIES.value)
            if not flags.FLAGS["min_face"].present:
                min_face = 0  # LFW's faces are ~110 px: the study's 128 px rule would drop most.
                logging.info("LFW: using --min_face=0 (pass --min_face to override)")
                settings = _settings(min_face)
        from tqdm import tqdm

        summary = prepare.build(
            source,
            _OUT.value,
            settings,
            overwrite=_OVERWRITE.value,
            workers=_WORKERS.value,
            progress=lambda it, total: tqdm(it, total=total, desc="prepare", disable=None),
        )
    except lfw.LfwUnavailable as e:
        sys.exit(f"prepare_data: {e}; or pass --source=DIR with a folder of photos")
    except prepare.PrepareError as e:
        sys.exit(f"prepare_data: {e}")
    out = pathlib.Path(_OUT.value)
    if _VERIFY.value and summary["kept"] and settings.framing == "canvas":
        check = review.redetect_in_box(
            out, prepare.read_manifest(out), settings.size, _WORKERS.value
        )
        summary["redetected_mouth_in_box"] = check
        (out / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    brief = {k: v for k, v in summary.items() if k not in ("dropped", "settings")}
    logging.info("summary: %s", json.dumps(brief, ensure_ascii=False))
    print(json.dumps(brief, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    app.run(main)

r"""Builds the donor bank whose faces lend their fine detail to photo fills.

  python experiments/build_donor_bank.py                      # celebahq/train of the data folders
  python experiments/build_donor_bank.py --faces=DIR [--parsing=DIR] [--out=FILE]

--faces: sharp, roughly frontal face photos (one face each, 256 px or more
across the face is best); default celebahq/train/images with its face-parsing
labels in celebahq/train/parsing (`glcic_jax.locations`). --parsing: class
maps (CelebAMask-HQ's 19 classes) named like the photos; without them the
lower-face ellipse says where texture may be taken. Faces with an open mouth
(by the labels) or a turned head are left out.
Writes --out (default data/donor_bank.npz, where complete.py looks for it).
The bank is made of the faces themselves: it carries their terms (CelebA-HQ:
non-commercial research only) and is never committed.
Wiring only: the work is in glcic_jax.detail.donor_bank.
"""

import pathlib
import sys

import cv2  # noqa: F401  (OpenCV before JAX's threads)
from absl import app, flags

from glcic_jax import locations

DEFAULT_OUT = locations.data_home() / "donor_bank.npz"
SUFFIXES = (".jpg", ".jpeg", ".png")

_FACES = flags.DEFINE_string(
    "faces", None, "Folder of donor face photos (default: celebahq/train/images)."
)
_PARSING = flags.DEFINE_string(
    "parsing", None, "Folder of their parsing labels (default: celebahq/train/parsing)."
)
_OUT = flags.DEFINE_string("out", str(DEFAULT_OUT), "The bank file to write (.npz).")
_LIMIT = flags.DEFINE_integer(
    "limit", None, "Use only the first N photos (sorted by name).", lower_bound=1
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from tqdm import tqdm

    from glcic_jax.detail import donor_bank
    from glcic_jax.faces import detection

    faces, parsing = _FACES.value, _PARSING.value
    if faces is None:
        root = locations.find("celebahq")
        if root is None:
            sys.exit(
                "build_donor_bank: no --faces given and no celebahq folder in the data folders"
            )
        faces = root / "train" / "images"
        parsing = parsing or root / "train" / "parsing"
    faces = pathlib.Path(faces)
    if not faces.is_dir():
        sys.exit(f"build_donor_bank: --faces {faces} is not a folder")
    if parsing is not None and not pathlib.Path(parsing).is_dir():
        sys.exit(f"build_donor_bank: --parsing {parsing} is not a folder")
    out = pathlib.Path(_OUT.value)
    if out.suffix != ".npz":
        sys.exit(f"build_donor_bank: --out must end in .npz, not {out.name}")
    paths = sorted(p for p in faces.iterdir() if p.suffix.lower() in SUFFIXES)[: _LIMIT.value]
    if not paths:
        sys.exit(f"build_donor_bank: no photos ({', '.join(SUFFIXES)}) in {faces}")
    progress = lambda xs: tqdm(xs, desc="donors", unit="face")  # noqa: E731
    try:
        bank, counts = donor_bank.DonorBank.build(paths, detection.Detector(), parsing, progress)
        size = bank.save(out)
    except donor_bank.DonorBankError as e:
        sys.exit(f"build_donor_bank: {e}")
    except OSError as e:
        sys.exit(f"build_donor_bank: cannot write {out}: {e.strerror or e}")
    said = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(f"{len(bank)} donors ({said}) -> {out} ({size / 1e6:.0f} MB)")


if __name__ == "__main__":
    app.run(main)

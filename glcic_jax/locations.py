"""Where data lives outside the code: the project's own data/ folder, then the lab's local mirror.

  data/             inside the project (gitignored): what the project prepares
                    for itself (aligned face sets, `dataset.bootstrap`) or is
                    given (`mask_overlays/`, MaskTheFace's 21 templates).
                    GLCIC_JAX_DATA moves it, e.g. for a non-editable install.
  ../shared/data/   the lab's local mirror beside the clone, present only on
                    the lab's machines: CelebA's first 10,000 (`celeba10k/`),
                    600 LFW crops (`faces/`), the mask templates. GLCIC_JAX_MIRROR
                    points elsewhere; elsewhere it is simply absent.

Every default path of the library goes through here, so nothing else names
a folder outside the project. Imports nothing of the project: every layer,
faces included, may use it.
"""

import os
import pathlib

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA_ENV = "GLCIC_JAX_DATA"
MIRROR_ENV = "GLCIC_JAX_MIRROR"


def data_home() -> pathlib.Path:
    """The project's own data folder: $GLCIC_JAX_DATA, else data/ in the project."""
    return pathlib.Path(os.environ.get(DATA_ENV) or PROJECT_ROOT / "data").absolute()


def mirror() -> pathlib.Path:
    """The lab's local mirror of raw data: $GLCIC_JAX_MIRROR, else ../shared/data beside the project."""
    default = PROJECT_ROOT.parent / "shared" / "data"
    return pathlib.Path(os.environ.get(MIRROR_ENV) or default).absolute()


def candidates(name: str) -> list[pathlib.Path]:
    """Where a named data folder is looked for, in order: data/NAME, then the mirror's NAME."""
    return [data_home() / name, mirror() / name]


def find(name: str) -> pathlib.Path | None:
    """The first of `candidates(name)` that is a folder, or None."""
    return next((path for path in candidates(name) if path.is_dir()), None)

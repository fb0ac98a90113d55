"""Single-file .npz artefacts (model files, segmenter files, donor banks): arrays plus a JSON header.

Written atomically (a temporary file renamed into place), so a killed export
never leaves a half-written file under the real name.
"""

import json
import pathlib

import numpy as np


def write(path, arrays: dict, header: dict) -> int:
    """Writes `arrays` and `header` (as the uint8 array "header") to `path`; returns its bytes."""
    arrays = {**arrays, "header": np.frombuffer(json.dumps(header).encode(), np.uint8)}
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    tmp.replace(path)
    return path.stat().st_size


def read(path) -> tuple[dict, dict]:
    """(arrays, header) of a file written by `write`, every array read into memory.

    Raises:
      OSError, ValueError (json.JSONDecodeError among them), KeyError: the
      file is missing, not an .npz, or has no readable header; callers turn
      these into their own one-line error.
    """
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays.pop("header").tobytes().decode())
    return arrays, header

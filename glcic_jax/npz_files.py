"""Single-file .npz artefacts (model files, segmenter files): arrays plus a JSON header.

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

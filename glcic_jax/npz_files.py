"""Single-file .npz artefacts (model files, segmenter files, donor banks): arrays plus a JSON header.

Written atomically (a temporary file renamed into place), so a killed export
never leaves a half-written file under the real name.
"""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

STORAGE_DTYPES = ("float32", "bfloat16")


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


def params_to_arrays(params, storage: str = "bfloat16") -> dict[str, np.ndarray]:
    """A network's parameter tree as named arrays for `write`, in `storage` precision.

    npz has no bfloat16, so bfloat16 weights are stored as their uint16 bit patterns.
    """
    if storage not in STORAGE_DTYPES:
        raise ValueError(f"storage must be one of {STORAGE_DTYPES}, not {storage!r}")
    leaves, _ = jax.tree_util.tree_flatten_with_path(params)
    arrays = {}
    for path, leaf in leaves:
        leaf = np.asarray(leaf)
        if storage == "bfloat16":
            leaf = np.asarray(leaf, jnp.bfloat16).view(np.uint16)
        arrays[jax.tree_util.keystr(path)] = leaf
    return arrays


def params_from_arrays(arrays: dict, abstract):
    """The float32 parameter tree shaped like `abstract`, from `params_to_arrays`' arrays.

    Raises:
      KeyError: an array is missing or has the wrong shape (its message names it).
    """
    leaves, treedef = jax.tree_util.tree_flatten_with_path(abstract)
    values = []
    for key_path, leaf in leaves:
        name = jax.tree_util.keystr(key_path)
        if name not in arrays or arrays[name].shape != leaf.shape:
            raise KeyError(name)
        value = arrays[name]
        if value.dtype == np.uint16:
            value = value.view(jnp.bfloat16)
        values.append(np.asarray(value, np.float32))
    return jax.tree_util.tree_unflatten(treedef, values)

"""The trained fine stage at work: its model file, and a sharpened fill for framed faces.

    net = RefineNet.from_file(path)
    sharp = net.refine(frames, holes, coarse)   # frames uint8, holes bool, coarse float

The file is an .npz of the refiner's weights (bfloat16 by default) with a
JSON header: its format, the storage, the training config (the frame sizes,
width and detail band it was made with; a file without `detail_sigma` has
its whole correction applied) and the step.
"""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from glcic_jax import npz_files
from glcic_jax.refiner import network

FORMAT = "glcic-jax-refiner-1"
# How the faces it learnt from were framed: the shipped photo model's mask crop.
FRAMING = "mask_crop"


class RefinerError(Exception):
    """A refiner file that cannot be used; the message is one line for the user."""


def save(path, params, config: dict, step: int, storage="bfloat16") -> int:
    """Writes a refiner file atomically; returns its size in bytes."""
    header = dict(format=FORMAT, step=int(step), storage=storage, config=dict(config))
    return npz_files.write(path, npz_files.params_to_arrays(params, storage), header)


def load(path):
    """(header, graphdef, params float32) of a refiner file.

    Raises:
      RefinerError: missing, truncated, foreign, or not matching its config.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise RefinerError(f"refiner file {path} does not exist")
    try:
        arrays, header = npz_files.read(path)
    except (OSError, ValueError, KeyError) as e:
        raise RefinerError(f"{path} is not a readable refiner file ({e})") from None
    if header.get("format") != FORMAT:
        raise RefinerError(f"{path} is not a glcic-jax refiner file")
    try:
        width, sides, step = (
            header["config"]["width"],
            header["config"]["frame_sizes"],
            header["step"],
        )
        header["frame_sizes"], header["step"] = tuple(int(s) for s in sides), int(step)
        header["detail_sigma"] = float(header["config"].get("detail_sigma", 0.0))
        if not header["detail_sigma"] >= 0:
            raise ValueError(f"detail_sigma {header['detail_sigma']}")
    except (KeyError, TypeError, ValueError) as e:
        raise RefinerError(f"{path} has an incomplete header ({e!r})") from None
    graphdef, abstract = network.abstract(width)
    try:
        params = npz_files.params_from_arrays(arrays, abstract)
    except KeyError as e:
        raise RefinerError(f"{path} does not match its config (at {e.args[0]})") from None
    return header, graphdef, params


class RefineNet:
    """A loaded refiner: `refine` sharpens coarse fills of framed faces.

    Frames of any side divisible by `network.DOWNSAMPLE` work (the network is
    fully convolutional); each new side compiles once.
    """

    def __init__(self, header: dict, graphdef, params):
        self.header = header
        # The frame sides it learnt in: the pipeline refines in the one nearest a face's resolution.
        self.frame_sizes = header["frame_sizes"]
        self.step = header["step"]
        # 0 (files before the detail band): the whole correction is applied.
        self.detail_sigma = header["detail_sigma"]
        self._params = jax.device_put(params)
        self._forward = jax.jit(
            lambda p, x, m, s, r: network.refine(graphdef, p, x, m, s, r), static_argnums=4
        )

    @classmethod
    def from_file(cls, path) -> "RefineNet":
        return cls(*load(path))

    def refine(self, frames, holes, coarse) -> np.ndarray:
        """Sharpened fills: float32 (N, S, S, 3) in [0, 1], equal to `frames` outside the holes.

        The correction is kept to the file's detail band (`network.detail_band`,
        sigma `detail_sigma` x S / 256) where it has one.

        Args:
          frames: uint8 (N, S, S, 3): the framed faces (their hole pixels are not read).
          holes: bool (N, S, S).
          coarse: float (N, S, S, 3) in [0, 1]: the coarse model's fill, at this size.
        """
        frames = np.asarray(frames, np.float32) / 255.0
        holes = np.asarray(holes, np.float32)
        m = holes[..., None]
        composite = frames * (1.0 - m) + np.asarray(coarse, np.float32) * m
        composite, holes = jnp.asarray(composite), jnp.asarray(holes)
        if self.detail_sigma:
            sigmas, radius = network.band_sigmas(self.detail_sigma, [frames.shape[1]] * len(frames))
            out = self._forward(self._params, composite, holes, sigmas, radius)
        else:
            out = self._forward(self._params, composite, holes, None, 0)
        return np.asarray(out, np.float32)

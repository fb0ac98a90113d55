"""Complete images with a trained model: the library entry point for evaluation and photos.

    completer = Completer.photo_model()                # the shipped model for masked photos
    completer = Completer.pretrained()                 # the study's shipped mouth-box model
    completer = Completer.load("runs/mouth-cpu64")      # a run's latest checkpoint
    completed = completer.complete(images, holes)       # (N, S, S, 3) in [0, 1]

A *run* is a training workdir (Orbax checkpoints), a model folder of
exported `step_<N>.npz` files or one such file (`glcic_jax.completion.model_io`); all
load the same way (`glcic_jax.completion.model_io.resolve` tells them apart). Only the
completion network is built and read, from the config stored with the
weights; nothing here imports the training code.

Images go through one jitted eval-mode function in fixed-size batches, so any
number of images costs one compilation.
"""

import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from glcic_jax import holes
from glcic_jax.completion import model_io, postprocess
from glcic_jax.nets import hole_filling

# The study's model: the mouth box on the aligned canvas (MODEL_CARD.md beside it).
PRETRAINED = pathlib.Path(__file__).resolve().parent / "pretrained" / "mouth64.npz"
# The photo pipeline's default: worn masks' shapes in the mask crop (PHOTO_MODEL_CARD.md).
PHOTO_MODEL = PRETRAINED.parent / "worn_mask64.npz"


def as_float_images(images) -> np.ndarray:
    """uint8 or float images -> float32 in [0, 1]."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32)


def as_hole_masks(holes, n: int, size: int) -> np.ndarray:
    """(N, H, W) or (N, H, W, 1) bool/float holes -> float32 (N, H, W, 1)."""
    holes = np.asarray(holes, np.float32)
    if holes.ndim == 3:
        holes = holes[..., None]
    if holes.shape != (n, size, size, 1):
        raise ValueError(f"holes of shape {holes.shape} do not match {n} images of {size}x{size}")
    return (holes > 0.5).astype(np.float32)


class Completer:
    """A trained completion network with its mean pixel, in eval mode."""

    def __init__(self, config, gen, gen_stats, mean_pixel, step: int, batch_size: int = 16):
        self.config = config
        self.step = step
        self.image_size = config.image_size
        self.framing = config.framing  # how the model's faces are framed (faces.framing)
        self.batch_size = batch_size
        self.mean_pixel = np.asarray(mean_pixel, np.float32)  # the training set's, in [0, 1]
        self._weights = (gen, gen_stats, jnp.asarray(mean_pixel, jnp.float32))
        self._run = hole_filling.jitted_complete(config)

    @classmethod
    def from_workdir(cls, workdir, step: int | None = None, batch_size: int = 16) -> "Completer":
        """The checkpoint at `step` (default: the latest) of a training run."""
        return cls(*model_io.read_run_weights(workdir, step), batch_size)

    @classmethod
    def from_model_file(cls, path, batch_size: int = 16) -> "Completer":
        """A model file written by `glcic_jax.completion.model_io` (raises ModelFileError)."""
        config, gen, gen_stats, mean_pixel, step = model_io.load(path)
        return cls(config, gen, gen_stats, mean_pixel, step, batch_size)

    @classmethod
    def pretrained(cls, batch_size: int = 16) -> "Completer":
        """The study's shipped model: mouth box, 64 px (pretrained/MODEL_CARD.md)."""
        return cls.from_model_file(PRETRAINED, batch_size)

    @classmethod
    def photo_model(cls, batch_size: int = 16) -> "Completer":
        """The shipped model for photos of masked people (pretrained/PHOTO_MODEL_CARD.md)."""
        return cls.from_model_file(PHOTO_MODEL, batch_size)

    @classmethod
    def load(cls, run, step: int | None = None, batch_size: int = 16) -> "Completer":
        """A model file, or the step `step` (default: latest) of a model folder or run.

        Raises runs.CheckpointError (one line) when there is no such model.
        """
        source = model_io.resolve(run, step)
        gen, gen_stats, mean_pixel = model_io.load_weights(source)
        return cls(source.config, gen, gen_stats, mean_pixel, source.step, batch_size)

    def complete(self, images, holes, postprocess_blend: bool = False) -> np.ndarray:
        """Fill the holes of (N, S, S, 3) images; returns float32 in [0, 1].

        Pixels outside the holes are returned unchanged. With
        `postprocess_blend` the paper's fast-marching + Poisson blending is
        applied to each result.
        """
        images = as_float_images(images)
        if images.ndim != 4 or images.shape[1:] != (self.image_size, self.image_size, 3):
            raise ValueError(
                f"images must be (N, {self.image_size}, {self.image_size}, 3), not {images.shape}"
            )
        n = len(images)
        holes = as_hole_masks(holes, n, self.image_size)
        out = np.empty_like(images)
        b = self.batch_size
        for start in range(0, n, b):
            chunk, hole = images[start : start + b], holes[start : start + b]
            pad = b - len(chunk)
            if pad:  # a fixed batch shape: one compilation for any N
                chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], chunk.dtype)])
                hole = np.concatenate([hole, np.zeros((pad,) + hole.shape[1:], hole.dtype)])
            result = np.asarray(self._run(*self._weights, chunk, hole))
            out[start : start + b] = result[: b - pad]
        if postprocess_blend:
            for i in range(n):
                out[i] = postprocess.blend(images[i], out[i], holes[i, ..., 0]) / 255.0
        return out

    def regime_holes(self, n: int, seed: int = 0) -> np.ndarray:
        """n holes of the regime this model was trained on (fixed for a seed)."""
        regime, size = self.config.mask, self.image_size
        bank_seed = self.config.seed + holes.OVERLAY_BANK_SEED_OFFSET  # not the training bank
        bank = holes.hole_bank(
            regime,
            size,
            self.config.overlay_bank,
            bank_seed,
            self.framing,
            self.config.overlay_dilation,
        )
        return np.asarray(holes.sample_holes(jax.random.key(seed), regime, n, size, bank)[0])


def run_steps(run) -> list[int]:
    """The steps a run can be loaded at: its checkpoints, its model files, or one model file's.

    Raises runs.CheckpointError (one line) when there are none.
    """
    return list(model_io.resolve(run).steps)


def load_config(run, step: int | None = None) -> ml_collections.ConfigDict:
    """The config a checkpoint (or a model file of a model folder) was trained with.

    Raises runs.CheckpointError (one line) when there is no such model.
    """
    return model_io.resolve(run, step).config

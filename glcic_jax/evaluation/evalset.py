"""The fixed evaluation set: the test split's images, each with one hole every method shares.

The evaluation set is the test split (``folders.list_images(data_dir, "test")``,
in its fixed order; unreadable files are skipped and the first ``num_images``
readable ones kept) with one hole per image: the study's mouth box for the
``mouth`` hole set, or boxes drawn by ``holes.sample_boxes`` from
``jax.random.key(HOLE_SEED)`` for the ``random`` hole set (the same regime as
training, but a stream no training step uses). The holes depend only on
(hole set, number of images, image size), so every model and baseline is
measured on exactly the same images and holes.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from glcic_jax import holes
from glcic_jax.dataset import folders, prepare

# Seed of the random hole set; experiments/bench_baselines.py draws its holes
# with the same default. Training draws its holes from
# fold_in(key(config.seed), step), a different stream.
HOLE_SEED = 0
HOLE_SETS = holes.BOX_REGIMES


@dataclasses.dataclass(frozen=True)
class EvalSet:
    """Test images and their fixed holes.

    Attributes:
      data_dir: the data folder the images came from.
      hole_set: "mouth" or "random".
      image_size: side S in pixels.
      files: the image paths, in order.
      images: uint8 (N, S, S, 3).
      holes: bool (N, S, S), True inside the hole.
      boxes: int (N, 4) holes as (top, left, height, width) in image pixels.
      seed: the random hole set's seed (unused for mouth holes).
    """

    data_dir: str
    hole_set: str
    image_size: int
    files: tuple[str, ...]
    images: np.ndarray
    holes: np.ndarray
    boxes: np.ndarray
    seed: int = HOLE_SEED

    def __len__(self) -> int:
        return len(self.files)

    def float_images(self) -> np.ndarray:
        return self.images.astype(np.float32) / 255.0

    def describe(self) -> str:
        seed = f", seed {self.seed}" if self.hole_set == "random" else ""
        return (
            f"{len(self)} test images of {self.data_dir} at {self.image_size} px, "
            f"{self.hole_set} holes{seed}"
        )


def eval_holes(hole_set: str, n: int, image_size: int, seed: int = HOLE_SEED):
    """The fixed holes: (boxes int (n, 4), bool masks (n, S, S))."""
    if hole_set not in HOLE_SETS:
        raise ValueError(f"unknown hole set {hole_set!r}; choose one of {HOLE_SETS}")
    boxes = holes.sample_boxes(jax.random.key(seed), hole_set, n, image_size)
    hole_masks = np.asarray(holes.boxes_to_masks(boxes, image_size))[..., 0] > 0.5
    return np.asarray(boxes), hole_masks


def build_eval_set(
    data_dir, image_size: int, hole_set: str, num_images: int | None = None, seed: int = HOLE_SEED
) -> EvalSet:
    """The test split of `data_dir` with the fixed holes of `hole_set`.

    Args:
      data_dir: a data folder (see ``glcic_jax.dataset.folders``).
      image_size: the models' image size.
      hole_set: "mouth" (the study's box on every image) or "random".
      num_images: keep the first this many readable test images (None: all).
      seed: seed of the random holes; keep the default to compare with
        other reports.

    Raises:
      folders.DataError: no data folder, no readable test images in it, or
        faces prepared in another framing than the study's canvas (the hole
        sets are canvas boxes).
    """
    framing = prepare.read_framing(data_dir)
    if framing not in (None, "canvas"):
        raise folders.DataError(
            f"{data_dir} holds faces in the {framing!r} framing; the {hole_set} hole set is a box"
            " on the study's canvas (score mask-crop models with experiments/eval_pasted_masks.py)"
        )
    files, images = [], []
    for path in folders.list_images(data_dir, "test"):
        if num_images is not None and len(images) >= num_images:
            break
        image = folders.try_load_image(path, image_size)
        if image is not None:
            files.append(path)
            images.append(image)
    if not images:
        raise folders.DataError(f"no readable test images in {data_dir}")
    boxes, hole_masks = eval_holes(hole_set, len(images), image_size, seed)
    return EvalSet(
        str(data_dir), hole_set, image_size, tuple(files), np.stack(images), hole_masks, boxes, seed
    )

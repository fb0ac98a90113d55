"""Hole regimes and local-discriminator patches, defined on the study's 256x256 canvas.

A hole is a box (top, left, height, width) in pixels of the configured image
size. The study's numbers live on a 256 canvas and are scaled by
`image_size / 256` (edges rounded), so a 64px model sees the same relative
holes as the 256px one. Everything here is a pure jnp function usable inside
a jitted step or on the host.

The local discriminator sees a square patch of `LOCAL_PATCH` (160 at 256px,
the config's `local_patch`): the smallest round size holding the mouth box
(144 x 96) whole, used for both regimes so the two models' discriminators
are the same network. For a completed image the patch is centred on the
hole (clipped to the image); for a real image it is taken at a uniformly
random position.
"""

import math

import jax
import jax.numpy as jnp

from glcic_jax.faces.align import CANVAS, MOUTH_BOX

# The study's fixed mouth hole (x=56, y=128, 144 wide, 96 high) as a hole box:
# `align.MOUTH_BOX` as (top, left, height, width).
MOUTH_HOLE = (MOUTH_BOX[1], MOUTH_BOX[0], MOUTH_BOX[3] - MOUTH_BOX[1], MOUTH_BOX[2] - MOUTH_BOX[0])
# The study's random holes: top-left in 5..145, sides in 48..96 (inclusive).
RANDOM_TOP_LEFT = (5, 145)
RANDOM_SIDE = (48, 96)
# A control the study lacked: holes of the mouth box's size (144 x 96) at
# random positions, inside the same 5..241 area the random holes can reach,
# so position and size can be told apart.
RANDOM_EXTENT = RANDOM_TOP_LEFT[1] + RANDOM_SIDE[1]  # 241
LOCAL_PATCH = 160
BOX_REGIMES = ("mouth", "random", "random_mouthsize")
# "overlay": face-mask-shaped holes from the 21 face-mask templates placed on
# the aligned face (glcic_jax.face_masks.overlay), drawn from a fixed bank (holes.overlay_bank).
REGIMES = BOX_REGIMES + ("overlay",)
OVERLAY_BANK_SEED_OFFSET = 1  # evaluation banks use seed + this, training banks the seed


def scale(value, image_size: int):
    """Canvas pixels -> image pixels, rounded half up."""
    return jnp.floor(jnp.asarray(value) * image_size / CANVAS + 0.5).astype(jnp.int32)


def patch_size(image_size: int, local_patch: int = LOCAL_PATCH) -> int:
    """The local patch's side in image pixels (`local_patch` on the canvas)."""
    return int(math.floor(local_patch * image_size / CANVAS + 0.5))


def scale_boxes(canvas_boxes, image_size: int):
    """(top, left, height, width) on the canvas -> the same box in image pixels."""
    canvas_boxes = jnp.asarray(canvas_boxes, jnp.int32)
    top, left, height, width = (canvas_boxes[..., i] for i in range(4))
    y0, x0 = scale(top, image_size), scale(left, image_size)
    y1, x1 = scale(top + height, image_size), scale(left + width, image_size)
    return jnp.stack([y0, x0, jnp.maximum(y1 - y0, 1), jnp.maximum(x1 - x0, 1)], axis=-1)


def sample_canvas_boxes(rng, regime: str, n: int):
    """n holes of `regime` on the 256 canvas, int32 (n, 4)."""
    if regime == "mouth":
        return jnp.tile(jnp.asarray(MOUTH_HOLE, jnp.int32), (n, 1))
    if regime == "random":
        corner_rng, side_rng = jax.random.split(rng)
        lo, hi = RANDOM_TOP_LEFT
        corner = jax.random.randint(corner_rng, (n, 2), lo, hi + 1)
        lo, hi = RANDOM_SIDE
        sides = jax.random.randint(side_rng, (n, 2), lo, hi + 1)
        return jnp.concatenate([corner, sides], axis=-1).astype(jnp.int32)
    if regime == "random_mouthsize":
        height, width = MOUTH_HOLE[2:]
        lo = RANDOM_TOP_LEFT[0]
        top = jax.random.randint(rng, (n,), lo, RANDOM_EXTENT - height + 1)
        left = jax.random.randint(jax.random.fold_in(rng, 1), (n,), lo, RANDOM_EXTENT - width + 1)
        sides = jnp.broadcast_to(jnp.asarray([height, width]), (n, 2))
        return jnp.concatenate([top[:, None], left[:, None], sides], axis=-1).astype(jnp.int32)
    raise ValueError(f"unknown mask regime {regime!r}; choose one of {REGIMES}")


def sample_boxes(rng, regime: str, n: int, image_size: int):
    return scale_boxes(sample_canvas_boxes(rng, regime, n), image_size)


def hole_bank(
    regime: str, image_size: int, size: int, seed: int, framing: str = "canvas", dilation: int = 0
):
    """The overlay regime's holes: (uint8 (size, S, S) masks, int32 (size, 4) boxes); else None.

    Built once on the host (a second or two) and passed to the steps, which
    draw from it with the step's key like the box regimes draw boxes. The
    holes are drawn in the model's `framing`, each grown by a random
    0..`dilation` canvas pixels.
    """
    if regime != "overlay":
        return None
    from glcic_jax.holes import overlay_bank  # OpenCV templates: only this regime needs them

    bank_masks, boxes = overlay_bank.mask_bank(
        image_size, size, seed, framing=framing, dilation=dilation
    )
    return jnp.asarray(bank_masks, jnp.uint8), jnp.asarray(boxes, jnp.int32)


def sample_holes(rng, regime: str, n: int, image_size: int, bank=None):
    """n holes of `regime`: (n, S, S, 1) float masks and their (n, 4) bounding boxes."""
    if regime == "overlay":
        if bank is None:
            raise ValueError("the overlay regime draws from a hole bank (hole_bank)")
        bank_masks, bank_boxes = bank
        index = jax.random.randint(rng, (n,), 0, bank_masks.shape[0])
        return bank_masks[index][..., None].astype(jnp.float32), bank_boxes[index]
    boxes = sample_boxes(rng, regime, n, image_size)
    return boxes_to_masks(boxes, image_size), boxes


def boxes_to_masks(boxes, image_size: int):
    """(n, 4) boxes -> (n, H, W, 1) float masks, 1 inside the hole."""
    coords = jnp.arange(image_size)
    top, left, height, width = (boxes[:, i, None] for i in range(4))
    rows = (coords >= top) & (coords < top + height)
    cols = (coords >= left) & (coords < left + width)
    return (rows[:, :, None] & cols[:, None, :])[..., None].astype(jnp.float32)


def hole_patch_origins(boxes, image_size: int, size: int):
    """Top-left of the `size` local patch centred on each hole, clipped to the image."""
    centre = boxes[:, :2] + boxes[:, 2:] // 2
    return jnp.clip(centre - size // 2, 0, image_size - size).astype(jnp.int32)


def random_patch_origins(rng, n: int, image_size: int, size: int):
    """Uniformly random positions of `size` patches, for real images."""
    return jax.random.randint(rng, (n, 2), 0, image_size - size + 1).astype(jnp.int32)


def crop_patches(images, origins, size: int):
    """(n, H, W, C) images, (n, 2) top-left corners -> (n, size, size, C)."""

    def crop(image, origin):
        return jax.lax.dynamic_slice(
            image, (origin[0], origin[1], 0), (size, size, image.shape[-1])
        )

    return jax.vmap(crop)(images, origins)

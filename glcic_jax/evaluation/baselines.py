"""Completion baselines that need no training: mean-pixel fill and OpenCV inpaint.

They run on exactly the images and holes the trained models see, so every
table can show what a user would get without GLCIC. Inputs and outputs use
the project's convention: float images in [0, 1], ``[B, H, W, 3]`` RGB, and
bool masks ``[B, H, W]`` that are True inside the hole. Pixels outside the
hole are returned bit-for-bit unchanged (the result is composited).
"""

from __future__ import annotations

import cv2
import numpy as np

METHODS = ("mean", "telea", "ns")
# Radius 5, with which both inpainting methods were measured (first 500 CelebA
# test faces, 64 px, mouth box: Telea 14.62 dB, Navier-Stokes 14.33 dB PSNR over the hole).
DEFAULT_INPAINT_RADIUS = 5


def composite(images: np.ndarray, fills: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Takes ``fills`` inside the hole and ``images`` outside it.

    Args:
      images: ``[..., H, W, C]`` originals.
      fills: same shape, the completion.
      masks: ``[..., H, W]`` bool, True inside the hole.

    Returns:
      ``where(mask, fills, images)`` with the dtype of ``images``.
    """
    masks = np.asarray(masks).astype(bool)[..., None]
    return np.where(masks, fills, images).astype(np.asarray(images).dtype)


def mean_pixel(images: np.ndarray) -> np.ndarray:
    """The mean RGB of a set of ``[B, H, W, 3]`` [0, 1] images, shape ``[3]``.

    This is the fill GLCIC puts into the hole of its input (computed on the
    training set); use the same value for the mean-fill baseline.
    """
    return np.asarray(images, np.float64).reshape(-1, 3).mean(axis=0)


def _inpaint_one(image: np.ndarray, mask: np.ndarray, flag: int, radius: float):
    # cv2.inpaint takes 8-bit images: round, inpaint, and scale back. The
    # rounding only touches the hole, because the caller composites.
    u8 = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    out = cv2.inpaint(np.ascontiguousarray(u8), mask.astype(np.uint8), radius, flag)
    return out.astype(np.float64) / 255.0


def complete_baseline(
    method: str,
    images: np.ndarray,
    masks: np.ndarray,
    mean_pixel: np.ndarray | None = None,
    radius: float = DEFAULT_INPAINT_RADIUS,
) -> np.ndarray:
    """Completes the holes of a batch with a baseline method.

    Args:
      method: ``"mean"`` (fill the hole with ``mean_pixel``), ``"telea"``
        (``cv2.inpaint`` with ``cv2.INPAINT_TELEA``, Telea 2004 fast marching)
        or ``"ns"`` (``cv2.INPAINT_NS``, Navier-Stokes, Bertalmio et al. 2001).
      images: ``[B, H, W, 3]`` float in [0, 1] (or uint8 0..255, or one
        ``[H, W, 3]`` image).
      masks: ``[B, H, W]`` bool, True inside the hole (``[B, H, W, 1]`` float
        masks as in ``glcic_jax.holes`` are accepted too).
      mean_pixel: ``[3]`` RGB in [0, 1] for ``"mean"``. The protocol uses the
        training set's mean pixel (:func:`mean_pixel`), as the model input
        does; ``None`` fills each image with the mean of its own pixels
        outside the hole (which needs no training data, and is 0.6 dB worse
        on the CelebA mouth box).
      radius: inpainting neighbourhood radius in pixels for telea and ns.

    Returns:
      ``[B, H, W, 3]`` float in [0, 1], of ``images``' float dtype (float32
      for uint8 input); exactly ``images`` (scaled to [0, 1]) outside the
      hole.
    """
    images = np.asarray(images)
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    masks = np.asarray(masks)
    if masks.ndim == images.ndim and masks.shape[-1] == 1:
        masks = masks[..., 0]
    masks = masks.astype(bool)
    single = images.ndim == 3
    if single:
        images, masks = images[None], masks[None]
    if images.ndim != 4 or images.shape[-1] != 3 or masks.shape != images.shape[:3]:
        raise ValueError(
            f"need images [B, H, W, 3] and masks [B, H, W], got {images.shape}, {masks.shape}"
        )
    x = images.astype(np.float64)
    if method == "mean":
        if mean_pixel is None:
            fill = np.stack(
                [
                    img[~m].mean(axis=0) if (~m).any() else np.full(3, 0.5)
                    for img, m in zip(x, masks)
                ]
            )
        else:
            fill = np.broadcast_to(np.asarray(mean_pixel, np.float64), (len(x), 3))
        fills = np.broadcast_to(fill[:, None, None, :], x.shape)
    elif method in ("telea", "ns"):
        flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
        fills = np.stack([_inpaint_one(i, m, flag, radius) for i, m in zip(x, masks)])
    else:
        raise ValueError(f"unknown baseline {method!r}; choose one of {METHODS}")
    out = composite(images, fills.astype(images.dtype), masks)
    return out[0] if single else out

"""The whole photo pipeline where the truth is known: masked faces of `segmenter.evaluation`.

The "plain" set (a template pasted on a held-out photo) keeps the face under
the mask, so the pipeline's PSNR, SSIM and LPIPS over the mask's pixels can
be measured, beside OpenCV's Telea given the same region.
"""

import cv2
import numpy as np

from glcic_jax.completion import photo
from glcic_jax.evaluation import metrics, perceptual
from glcic_jax.segmenter.evaluation import LPIPS_SIDE, style_of, yaw_bin


def score_pipeline(completer: photo.PhotoCompleter, faces) -> list[dict]:
    """PSNR, SSIM and LPIPS over the true mask's pixels: the pipeline against Telea.

    Telea fills the same region the pipeline filled (its segmentation, not
    the truth), so the comparison is of the completion; a face the pipeline
    left alone keeps its mask in both.
    """
    rows, crops = [], []
    for masked in faces:
        result = completer.complete(masked.photo, "mask")
        region = result.region.astype(np.uint8)
        telea = cv2.inpaint(masked.photo, region, 5, cv2.INPAINT_TELEA)
        row = dict(style=style_of(masked.template), yaw_bin=yaw_bin(masked.yaw))
        truth = masked.truth
        for name, image in (("pipeline", result.completed), ("telea", telea)):
            a, b = metrics.to_float01(masked.clean), metrics.to_float01(image)
            row[f"{name}_psnr"] = metrics.psnr(a, b, truth)
            row[f"{name}_ssim"] = metrics.ssim_hole(a, b, truth)
        crops.append(
            [
                metrics.hole_crop(im, truth, LPIPS_SIDE)
                for im in (masked.clean, result.completed, telea)
            ]
        )
        rows.append(row)
    clean, ours, telea = (np.stack(c).astype(np.float32) / 255.0 for c in zip(*crops))
    for row, d_ours, d_telea in zip(
        rows, perceptual.lpips(clean, ours), perceptual.lpips(clean, telea)
    ):
        row["pipeline_lpips"], row["telea_lpips"] = float(d_ours), float(d_telea)
    return rows


def example_sheet(completer: photo.PhotoCompleter, faces) -> np.ndarray:
    """masked input | filled region | completion | the face without its mask, one face per row."""
    rows = []
    for masked in faces:
        result = completer.complete(masked.photo, "mask")
        panels = [masked.photo, photo.region_view(masked.photo, result), result.completed]
        if masked.clean is not None:
            panels.append(masked.clean)
        gap = np.full((masked.photo.shape[0], 4, 3), 255, np.uint8)
        row = np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=1)
        rows.append(np.concatenate([row, np.full((4, row.shape[1], 3), 255, np.uint8)], axis=0))
    return np.concatenate(rows, axis=0)

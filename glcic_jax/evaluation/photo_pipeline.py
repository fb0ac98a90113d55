"""The whole photo pipeline where the truth is known: masked faces of `segmenter.evaluation`.

The "plain" set (a template pasted on a held-out photo) keeps the face under
the mask, so the pipeline's PSNR, SSIM and LPIPS over the mask's pixels can
be measured, beside OpenCV's Telea given the same region.

`pipeline_summary` and `example_picks` work on the per-face rows and
scores alone, so they are checked without a network.
"""

import cv2
import numpy as np

from glcic_jax.completion import photo, photo_views
from glcic_jax.evaluation import metrics, perceptual, stats
from glcic_jax.segmenter.evaluation import LPIPS_SIDE, style_of, yaw_bin

PIPELINE_METRICS = ("psnr", "ssim", "lpips")


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


def pipeline_summary(rows: list[dict]) -> dict:
    """The pipeline against Telea over `score_pipeline` rows, per metric.

    Returns:
      {"pipeline_{metric}": {"pipeline": mean, "telea": mean, "difference":
      `stats.summarize` of the paired differences (pipeline - Telea)}} for
      each of `PIPELINE_METRICS`; the means skip NaN.
    """
    summary = {}
    for metric in PIPELINE_METRICS:
        ours = np.array([r[f"pipeline_{metric}"] for r in rows])
        telea = np.array([r[f"telea_{metric}"] for r in rows])
        summary[f"pipeline_{metric}"] = dict(
            pipeline=float(np.nanmean(ours)),
            telea=float(np.nanmean(telea)),
            difference=stats.summarize(ours - telea),
        )
    return summary


def example_picks(faces, values, k: int) -> dict[str, list[int]]:
    """Indices of the typical (median of `values`) and worst (lowest) k LFW faces.

    LFW faces only (a source path with a "/faces/" folder): they may be
    published; CelebA's may not.

    Returns:
      {"typical": indices around the median, "worst": the lowest}, each in
      increasing order of value.
    """
    lfw = [i for i, f in enumerate(faces) if "/faces/" in f.source]
    order = sorted(lfw, key=lambda i: values[i])
    middle = len(order) // 2 - k // 2
    return {"typical": order[middle : middle + k], "worst": order[:k]}


def example_sheet(completer: photo.PhotoCompleter, faces) -> np.ndarray:
    """masked input | filled region | completion | the face without its mask, one face per row."""
    rows = []
    for masked in faces:
        result = completer.complete(masked.photo, "mask")
        panels = [masked.photo, photo_views.region_view(masked.photo, result), result.completed]
        if masked.clean is not None:
            panels.append(masked.clean)
        gap = np.full((masked.photo.shape[0], 4, 3), 255, np.uint8)
        row = np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=1)
        rows.append(np.concatenate([row, np.full((4, row.shape[1], 3), 255, np.uint8)], axis=0))
    return np.concatenate(rows, axis=0)

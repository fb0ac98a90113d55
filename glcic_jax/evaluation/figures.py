"""Evaluation figures: metrics against training steps, result grids, and contact sheets of faces.

Drawn with matplotlib's object API (``matplotlib.figure.Figure``, which
renders with Agg): no pyplot global state and no display needed.

The inputs are the rows ``glcic_jax.evaluation.summaries.summary_row`` makes
(one dict per step x method with ``{metric}_mean``, ``{metric}_ci_low`` and
``{metric}_ci_high``), so a figure can be redrawn from ``metrics.csv`` alone.
"""

from __future__ import annotations

import io
import pathlib
from collections.abc import Mapping, Sequence

import cv2
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from glcic_jax.evaluation import metrics, scoring

# Baselines do not change with the step: dashed, so the eye reads them as references.
_BASELINE_STYLE = dict(linestyle="--", linewidth=1.0)


def _series(rows: Sequence[Mapping], metric: str) -> dict[str, tuple[np.ndarray, ...]]:
    """method -> (steps, mean, ci_low, ci_high), sorted by step."""
    out = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = sorted((r for r in rows if r["method"] == method), key=lambda r: r["step"])
        cols = ("step", f"{metric}_mean", f"{metric}_ci_low", f"{metric}_ci_high")
        out[method] = tuple(np.array([float(r[c]) for r in mine]) for c in cols)
    return out


def draw_metric(ax, rows: Sequence[Mapping], metric: str) -> None:
    """Each method's mean with its 95% interval as a band, against the step."""
    for method, (steps, mean, lo, hi) in _series(rows, metric).items():
        baseline = method in scoring.BASELINE_METHODS
        style = _BASELINE_STYLE if baseline else dict(marker="o")
        (line,) = ax.plot(steps, mean, label=method, **style)
        band = 0.05 if baseline else 0.2  # faint for the references, to keep models legible
        ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=band, linewidth=0)
    better = metrics.direction(metric)
    ax.set_title(metric + ("" if better == "none" else f" ({better} is better)"), fontsize=9)
    ax.set_xlabel("training step", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def plot_metric(rows: Sequence[Mapping], metric: str, path, title: str | None = None) -> None:
    """One metric against the training step for every method in `rows`, saved to `path`."""
    fig = Figure(figsize=(5, 3.5), layout="constrained")
    ax = fig.subplots()
    draw_metric(ax, rows, metric)
    if title:
        ax.set_title(f"{title}\n{ax.get_title()}", fontsize=9)
    ax.legend(fontsize=7)
    _save(fig, path)


def plot_metrics_panel(
    rows: Sequence[Mapping], metric_keys: Sequence[str], path, title: str | None = None
) -> None:
    """Several metrics against the step, one small panel each, one shared legend."""
    cols = min(4, len(metric_keys))
    nrows = -(-len(metric_keys) // cols)
    fig = Figure(figsize=(3.2 * cols, 2.6 * nrows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, cols, squeeze=False)).ravel()
    for ax, metric in zip(axes, metric_keys):
        draw_metric(ax, rows, metric)
    for ax in axes[len(metric_keys) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, path)


def masked(images: np.ndarray, holes: np.ndarray, fill=1.0) -> np.ndarray:
    """[0, 1] images with the hole painted `fill` (white), as the model's input is shown."""
    return np.where(np.asarray(holes, bool)[..., None], np.float32(fill), images)


def result_grid(
    eval_set, columns: Mapping[str, np.ndarray], path, num_images: int = 8, title: str = ""
) -> None:
    """The study's comparison figure: one row per image, one column per method.

    Columns: original | masked | each of `columns` (label -> (N, S, S, 3)
    completions in [0, 1], e.g. random-trained, mouth-trained, telea). The
    completions are composited into the original outside the hole.
    """
    images = eval_set.float_images()[:num_images]
    holes = eval_set.holes[:num_images]
    shown = {"original": images, "masked": masked(images, holes)}
    for label, completed in columns.items():
        completed = np.asarray(completed[:num_images], np.float32)
        shown[label] = np.where(holes[..., None], completed, images)
    n, k = len(images), len(shown)
    fig = Figure(figsize=(1.3 * k, 1.3 * n + (0.5 if title else 0.3)), layout="constrained")
    axes = fig.subplots(n, k, squeeze=False)
    for j, (label, batch) in enumerate(shown.items()):
        axes[0, j].set_title(label, fontsize=8)
        for i in range(n):
            axes[i, j].imshow(np.clip(batch[i], 0, 1), interpolation="nearest")
            axes[i, j].set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    # At least one figure pixel per image pixel (a cell is 1.3 inches wide).
    _save(fig, path, dpi=max(110, int(eval_set.image_size / 1.2)))


def _save(fig: Figure, path, dpi: int = 110) -> None:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)


def contact_sheet(tiles, indices, columns, gap: int = 3) -> np.ndarray:
    """A contact sheet: a header of column names, then one row of tiles (`tiles[i]`, a list) per index."""
    rows = [tiles[i] for i in indices]
    side = rows[0][0].shape[0]
    width = len(columns) * side + (len(columns) - 1) * gap
    header = np.full((22, width, 3), 255, np.uint8)
    for j, name in enumerate(columns):
        x = j * (side + gap) + 4
        cv2.putText(
            header, name, (x, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA
        )
    out = [header]
    for row in rows:
        vgap = np.full((side, gap, 3), 255, np.uint8)
        out.append(np.concatenate([x for t in row for x in (t, vgap)][:-1], axis=1))
        out.append(np.full((gap, width, 3), 255, np.uint8))
    return np.concatenate(out[:-1], axis=0)


def jpeg_bytes(rgb, max_bytes: int | None = None, quality: int = 90) -> bytes:
    """`rgb` as JPEG: at `quality`, lowered in steps of 5 (to 40) until it fits `max_bytes`."""
    image = Image.fromarray(np.asarray(rgb, np.uint8))
    while True:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality, optimize=True)
        data = buffer.getvalue()
        if max_bytes is None or len(data) <= max_bytes or quality <= 40:
            return data
        quality -= 5

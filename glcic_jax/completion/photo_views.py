"""Pictures of a completed photo for people to look at: the region filled, and input | region | completion."""

import cv2
import numpy as np

from glcic_jax.completion.photo import PhotoResult


def region_view(rgb, result: PhotoResult) -> np.ndarray:
    """The debug picture: the filled region tinted red and outlined, face boxes in green."""
    view = np.asarray(rgb, np.uint8).copy()
    region = result.region
    tint = np.array([255, 0, 0], np.float32)
    view[region] = np.round(0.5 * view[region] + 0.5 * tint).astype(np.uint8)
    thick = max(1, round(max(rgb.shape[:2]) / 400))
    contours, _ = cv2.findContours(
        region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    cv2.drawContours(view, contours, -1, (255, 0, 0), thick)
    for face in result.faces:
        x0, y0, x1, y1 = (round(v) for v in face.box)
        cv2.rectangle(view, (x0, y0), (x1, y1), (0, 255, 0), thick)
    return view


def side_by_side(rgb, result: PhotoResult, max_height: int = 1024) -> np.ndarray:
    """input | filled region (`region_view`) | completion, shrunk to `max_height`."""
    panels = [np.asarray(rgb, np.uint8), region_view(rgb, result), result.completed]
    height, width = panels[0].shape[:2]
    k = min(1.0, max_height / height)
    if k < 1.0:
        size = (max(1, round(width * k)), max(1, round(height * k)))
        panels = [cv2.resize(p, size, interpolation=cv2.INTER_AREA) for p in panels]
    gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
    return np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)

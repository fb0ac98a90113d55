"""The photo pipeline's cost per photo: time, XLA compilations and peak memory, by photo size.

A user's folder mixes photo sizes. The pipeline frames every face onto
fixed canvases (the segmenter's, the completion model's) and runs its
networks in fixed-size batches, so after the first photo nothing should
compile again, whatever the size: `CompileCounter` counts XLA's backend
compilations (JAX's monitoring events) per photo, so a photo that does is
seen. `mixed_sizes` makes test photos of several sizes from one set of
faces; `summary_rows` is the table `experiments/bench_photos.py` prints.
"""

from __future__ import annotations

import dataclasses
import resource
from collections.abc import Sequence

import cv2
import numpy as np

# JAX's event for one XLA backend compilation (jax/_src/dispatch.py, JAX 0.4.31 .. 0.10).
BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
# Long sides of the test photos (px): a thumbnail to a phone photo's downscaled export.
DEFAULT_SIDES = (256, 384, 512, 768, 1024, 1600)


@dataclasses.dataclass
class CompileCounter:
    """XLA compilations (and their seconds) since `listen`."""

    count: int = 0
    seconds: float = 0.0

    def listen(self) -> CompileCounter:
        from jax import monitoring

        def on_duration(event: str, duration: float, **kwargs) -> None:
            if event == BACKEND_COMPILE_EVENT:
                self.count += 1
                self.seconds += duration

        monitoring.register_event_duration_secs_listener(on_duration)
        return self


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def resized(rgb: np.ndarray, long_side: int) -> np.ndarray:
    """`rgb` with its long side at `long_side` px (area filter down, cubic up)."""
    h, w = rgb.shape[:2]
    scale = long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(rgb, size, interpolation=interpolation)


def mixed_sizes(photos: Sequence[np.ndarray], n: int, sides: Sequence[int] = DEFAULT_SIDES):
    """n (long side, photo) pairs: photo i % len(photos) at side i % len(sides), so every size
    meets several faces and the sizes alternate (a size is never met only after the others)."""
    return [
        (sides[i % len(sides)], resized(photos[i % len(photos)], sides[i % len(sides)]))
        for i in range(n)
    ]


@dataclasses.dataclass
class PhotoCost:
    """One photo's cost: its long side, seconds, compilations during it, faces filled."""

    side: int
    seconds: float
    compiles: int
    faces: int


def size_class(side: int, sides: Sequence[int] = DEFAULT_SIDES) -> int:
    """The smallest of `sides` at least `side` (the largest for a larger photo)."""
    return min((s for s in sides if s >= side), default=max(sides))


def summary_rows(costs: Sequence[PhotoCost], sides: Sequence[int] = DEFAULT_SIDES) -> list[dict]:
    """Rows of the printed table: the first photo alone (it compiles), then each size class
    (`size_class`: long side up to) of the others."""
    rows = []
    if not costs:
        return rows
    first, rest = costs[0], costs[1:]
    rows.append(
        dict(photos="first", side=first.side, n=1, median_s=first.seconds, p90_s=first.seconds)
        | dict(compiles=first.compiles, faces=first.faces)
    )
    for side in sorted({size_class(c.side, sides) for c in rest}):
        mine = [c for c in rest if size_class(c.side, sides) == side]
        seconds = np.array([c.seconds for c in mine])
        rows.append(
            dict(photos="later", side=side, n=len(mine), median_s=float(np.median(seconds)))
            | dict(p90_s=float(np.percentile(seconds, 90)), compiles=sum(c.compiles for c in mine))
            | dict(faces=sum(c.faces for c in mine))
        )
    return rows

"""Run logs: metrics.jsonl, TensorBoard event files and sample-grid PNGs.

The same small interface as CLU's metric writers (scalars, images, flush),
over tensorboardX so that TensorBoard logs need no TensorFlow. Only process 0
of a multi-host run writes.
"""

import json
import logging
import os
import pathlib

import numpy as np
from PIL import Image


def image_grid(rows: list[np.ndarray], pad: int = 2) -> np.ndarray:
    """Rows of (n, H, W, 3) images in [0, 1] -> one uint8 (rows*H, n*W, 3) picture."""
    n, h, w, _ = rows[0].shape
    grid = np.full((len(rows) * (h + pad) + pad, n * (w + pad) + pad, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for i, image in enumerate(np.asarray(row)):
            y, x = pad + r * (h + pad), pad + i * (w + pad)
            grid[y : y + h, x : x + w] = np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
    return grid


METRICS_FILE = "metrics.jsonl"
# A fresh start's predecessor that died before its first checkpoint: kept aside, never appended to.
ABANDONED_METRICS_FILE = "metrics.abandoned.jsonl"


def _records(path: pathlib.Path):
    """(step, line) of each complete record; a line cut short by a kill is skipped."""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
            yield int(record["step"]), line
        except (ValueError, KeyError, TypeError):
            continue


def prepare_log(workdir, resume_from: int | None) -> None:
    """Make metrics.jsonl hold each step of this run once, before the writer appends.

    Resuming from a checkpoint at step S keeps the records up to S: a run killed
    after logging past its last checkpoint repeats those steps, and a kill between
    a write and its flush leaves half a line, both dropped here. A fresh start
    moves a log it finds (from an attempt killed before its first checkpoint)
    aside to metrics.abandoned.jsonl instead of appending to it.
    """
    path = pathlib.Path(workdir) / METRICS_FILE
    if not path.exists():
        return
    if resume_from is None:
        os.replace(path, path.with_name(ABANDONED_METRICS_FILE))
        logging.warning("an earlier, unfinished start's log moved to %s", ABANDONED_METRICS_FILE)
        return
    kept = [line for step, line in _records(path) if step <= resume_from]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    os.replace(tmp, path)


class MetricWriter:
    def __init__(self, workdir, enabled: bool = True):
        self.enabled = enabled
        self.workdir = pathlib.Path(workdir)
        self._jsonl = None
        self._tb = None
        if enabled:
            from tensorboardX import SummaryWriter

            self.workdir.mkdir(parents=True, exist_ok=True)
            self._jsonl = open(self.workdir / METRICS_FILE, "a", encoding="utf-8")
            self._tb = SummaryWriter(str(self.workdir / "tensorboard"))

    def write_scalars(self, step: int, scalars: dict) -> None:
        if not self.enabled:
            return
        record = {"step": int(step)}
        for key, value in scalars.items():
            record[key] = value if isinstance(value, int) else float(value)
            self._tb.add_scalar(f"train/{key}", value, int(step))
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()

    def write_image(self, step: int, name: str, image: np.ndarray) -> pathlib.Path | None:
        """Save a uint8 picture as WORKDIR/samples/<name>_<step>.png and in TensorBoard."""
        if not self.enabled:
            return None
        path = self.workdir / "samples" / f"{name}_{int(step):08d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(image).save(path)
        self._tb.add_image(name, image, int(step), dataformats="HWC")
        return path

    def flush(self) -> None:
        if self.enabled:
            self._jsonl.flush()
            self._tb.flush()

    def close(self) -> None:
        if self.enabled:
            self._jsonl.close()
            self._tb.close()

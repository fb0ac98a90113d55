"""A run's checkpoints scored one after another on the evaluation set.

A run is a training workdir or a folder of exported model files; both load
through ``glcic_jax.completion.inference``, so evaluation never imports
training.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from glcic_jax import runs
from glcic_jax.completion import inference
from glcic_jax.evaluation import scoring
from glcic_jax.evaluation.evalset import EvalSet


def checkpoint_steps(workdir, requested: Sequence[int] | None = None) -> list[int]:
    """The steps of a run (workdir or model folder), or `requested` after checking each exists.

    Raises:
      runs.CheckpointError: no run, no checkpoints or a missing step
        (one-line messages).
    """
    have = inference.run_steps(workdir)
    if not requested:
        return have
    missing = sorted(set(requested) - set(have))
    if missing:
        raise runs.CheckpointError(f"no checkpoint at step(s) {missing} in {workdir}: have {have}")
    return sorted(set(requested))


@dataclasses.dataclass
class Sweep:
    """A model's per-image metrics at each evaluated checkpoint.

    Attributes:
      label: the method name in tables, e.g. "mouth-trained".
      config: the run's training config (of the last checkpoint loaded).
      mean_pixel: the run's training mean pixel, (3,) in [0, 1].
      per_image: step -> metric -> float64 (N,).
      completed: step -> float32 (N, S, S, 3) completions, for the last
        `keep_completions` steps only (for result grids).
    """

    label: str
    config: object = None
    mean_pixel: np.ndarray | None = None
    per_image: dict = dataclasses.field(default_factory=dict)
    completed: dict = dataclasses.field(default_factory=dict)


def sweep_checkpoints(
    workdir,
    eval_set: EvalSet,
    steps: Sequence[int],
    label: str,
    batch_size: int = 16,
    keep_completions: int = 1,
    progress=None,
) -> Sweep:
    """Complete and score `eval_set` with each checkpoint of `workdir` in `steps`.

    Args:
      workdir: a training run or a folder of model files.
      eval_set: the images and holes.
      steps: the checkpoint steps, e.g. from :func:`checkpoint_steps`.
      label: the method name in tables.
      batch_size: images per jitted model call.
      keep_completions: keep the completions of this many last steps.
      progress: optional callable run after each step (e.g. a tqdm update).
    """
    result = Sweep(label)
    for step in steps:
        completer = inference.Completer.load(workdir, step, batch_size=batch_size)
        result.config, result.mean_pixel = completer.config, completer.mean_pixel
        completed = scoring.complete_with_model(completer, eval_set)
        result.per_image[step] = scoring.score(eval_set, completed)
        result.completed[step] = completed
        for old in sorted(result.completed)[:-keep_completions]:
            del result.completed[old]
        if progress is not None:
            progress()
    return result

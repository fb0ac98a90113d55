"""Completions of the evaluation set by a model or a baseline, and their per-image metrics.

Scoring follows the protocol of ``glcic_jax.evaluation.metrics``: the
completion is composited into the original outside the hole, rounded to
uint8, then measured, so a model and a baseline are scored the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from glcic_jax.evaluation import baselines, metrics
from glcic_jax.evaluation.evalset import EvalSet

BASELINE_METHODS = baselines.METHODS  # mean, telea, ns


def complete_with_model(completer, eval_set: EvalSet) -> np.ndarray:
    """A ``glcic_jax.completion.inference.Completer``'s completions, float32 [0, 1]."""
    if completer.image_size != eval_set.image_size:
        raise ValueError(
            f"model is {completer.image_size} px but the evaluation set is {eval_set.image_size} px"
        )
    return completer.complete(eval_set.images, eval_set.holes)


def run_baselines(
    eval_set: EvalSet, mean_pixel, methods: Sequence[str] = BASELINE_METHODS
) -> dict[str, np.ndarray]:
    """Each baseline's completions of the evaluation set.

    Args:
      eval_set: the images and holes.
      mean_pixel: (3,) RGB in [0, 1], the mean fill; pass the model's training
        mean pixel (``Completer.mean_pixel``) so it fills what the model sees.
      methods: the baselines to run (``baselines.METHODS``).
    """
    images = eval_set.float_images()
    return {
        m: baselines.complete_baseline(m, images, eval_set.holes, mean_pixel=mean_pixel)
        for m in methods
    }


def score(eval_set: EvalSet, completed: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image metrics (``metrics.METRIC_KEYS`` -> float64 (N,)) of completions.

    The completion is composited into the original outside the hole and
    rounded to uint8 first (the protocol).
    """
    completed = np.asarray(completed, np.float32)
    composed = baselines.composite(eval_set.float_images(), completed, eval_set.holes)
    return metrics.batch_metrics(eval_set.images, metrics.to_uint8(composed), eval_set.holes)

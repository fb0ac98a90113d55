"""One training run's per-image scores on one population, checkpoint by checkpoint, as CSV rows.

The seed study (``experiments/study.py``) scores every (regime, seed) run on
every population in the mouth box. A run's rows are written to one CSV when
all its steps are scored, so an interrupted study scores again only the
runs it had not finished. Beside the study's metrics (PSNR, SSIM and L1 in
the hole, the ORB feature distance) each row has the LPIPS distance of the
hole's box, because PSNR rewards a blur that a person would not accept.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Sequence

import numpy as np

from glcic_jax.evaluation import baselines, metrics, perceptual, sweep
from glcic_jax.evaluation.evalset import EvalSet

# The study's metrics, in report order; "lpips_hole" is added here.
METRICS = ("psnr_hole", "ssim_hole", "l1_hole", "lpips_hole", "feature_distance")
# The hole's box (36 x 24 px at 64 px) is scaled to this side for LPIPS (AlexNet).
LPIPS_SIDE = 64
# LFW's naming, as prepared: "test__Aaron_Peirsol_0002.png" -> person "Aaron_Peirsol" (words of
# letters joined by "_", then a 4-digit photo number). Anything else is its own person.
_PERSON = re.compile(r"^(?:train__|test__)?(?P<person>[A-Za-z](?:[\w'.-]*[A-Za-z.'])?)_\d{4}$")


def person_of(path) -> str:
    """Who is in a prepared LFW photo, read from its file name (`_PERSON`); else the file's name."""
    stem = pathlib.Path(path).stem
    match = _PERSON.match(stem)
    return match.group("person") if match else stem


def hole_lpips(eval_set: EvalSet, completed: np.ndarray) -> np.ndarray:
    """LPIPS of each hole's box (composited, rounded to uint8 as for every metric), float64 (N,)."""
    composed = baselines.composite(eval_set.float_images(), completed, eval_set.holes)
    composed = metrics.to_uint8(composed)
    crop = lambda images: np.stack(  # noqa: E731
        [metrics.hole_crop(x, h, LPIPS_SIDE) for x, h in zip(images, eval_set.holes)]
    )
    return perceptual.lpips(crop(eval_set.images), crop(composed))


def score_run(
    workdir,
    eval_set: EvalSet,
    steps: Sequence[int],
    keys: dict,
    batch_size: int = 16,
    progress=None,
    by_person: bool = False,
) -> list[dict]:
    """Rows (one per step x image) of `METRICS`, each also holding `keys` (population, seed, regime).

    With `by_person`, a row's person is read from LFW's file names (`person_of`), so
    a person's photos are resampled together; else each photo is its own person.

    Raises:
      runs.CheckpointError: a step the run does not have.
    """
    result = sweep.sweep_checkpoints(
        workdir, eval_set, steps, keys.get("regime", "model"), batch_size, len(steps), progress
    )
    names = [pathlib.Path(f).name for f in eval_set.files]
    people = [person_of(f) if by_person else pathlib.Path(f).stem for f in eval_set.files]
    rows = []
    for step in steps:
        per = dict(result.per_image[step], lpips_hole=hole_lpips(eval_set, result.completed[step]))
        for i, (name, person) in enumerate(zip(names, people)):
            rows.append(
                dict(keys, step=step, image=name, person=person)
                | {m: float(per[m][i]) for m in METRICS}
            )
    return rows

"""What `prepare.build` may be asked: its settings, their ranges, and the one-line refusal of the rest.

Every flag of `experiments/prepare_data.py` lands in a `Settings` field;
`check_settings` refuses a value out of range, naming the flag as the user
wrote it, before any photo is read or any folder written.
"""

import dataclasses

from glcic_jax.faces import align, framing


class PrepareError(Exception):
    """A request that cannot be carried out; the message is one line for the user."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Filters and output options; see the module docstring for each filter."""

    min_face: int = 128
    min_confidence: float = 0.9
    dominance: float = 0.5
    require_mouth: bool = True
    min_mouth_skin: float = 0.4
    max_outside: float = 0.25
    # On CelebA's aligned faces, unrelated people are >= 66 bits apart and
    # re-crops of one photo 6..38, so 40 (of 256) splits them.
    dup_distance: int = 40
    max_pixels: int = 64_000_000
    test_fraction: float = 0.2
    split_seed: int = 0
    size: int = align.CANVAS
    image_format: str = "png"
    detect_max_side: int = 1024
    # 0: every source image; else a fixed, evenly spaced sample of this many
    # of the sorted sources (`sample_sources`), for a quicker first set.
    max_images: int = 0
    framing: str = "canvas"  # faces.framing.FRAMINGS: how the written faces are framed


# Settings field -> (its prepare_data.py flag, kind, low, high): "count" an integer
# >= low (<= high unless None), "share" a number in [low, high]. Checked by `check_settings` before anything is read or written.
_SETTING_RANGES = {
    "min_face": ("--min_face", "count", 0, None),
    "min_confidence": ("--min_confidence", "share", 0, 1),
    "dominance": ("--dominance", "share", 0, 1),
    "min_mouth_skin": ("--min_mouth_skin", "share", 0, 1),
    "max_outside": ("--max_outside", "share", 0, 1),
    "dup_distance": ("--dup_distance", "count", -1, 256),
    "max_pixels": ("--max_pixels", "count", 1, None),
    "test_fraction": ("--test_fraction", "share", 0, 1),
    "max_images": ("--max_images", "count", 0, None),
    "size": ("size", "count", 32, None),
    "detect_max_side": ("detect_max_side", "count", 1, None),
}


def check_range(name: str, value, kind: str, low, high) -> None:
    """Raise PrepareError, in one line naming the flag `name`, for a value out of its range."""
    if kind == "count":
        if isinstance(value, bool) or not isinstance(value, int):
            raise PrepareError(f"{name} must be an integer, not {value!r}")
        if value < low or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"in {low}..{high}"
            raise PrepareError(f"{name} must be {bounds}, not {value}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PrepareError(f"{name} must be a number, not {value!r}")
    if not low <= value <= high:  # NaN is never inside
        raise PrepareError(f"{name} must be in [{low}, {high}], not {value}")


def check_settings(settings: "Settings", workers: int = 1) -> None:
    """Raise PrepareError, in one line naming the flag, for a setting out of its range.

    Shares in [0, 1] (a test fraction of 1 puts every face in test/: an
    evaluation-only population, such as the study's LFW faces), counts >= 0 or >= 1 as they mean, the duplicate distance in
    -1..256 (bits of the hash; -1: off), and at least one worker.
    """
    for field, (name, kind, low, high) in _SETTING_RANGES.items():
        check_range(name, getattr(settings, field), kind, low, high)
    if settings.image_format not in ("png", "jpg"):
        raise PrepareError(f"--format must be png or jpg, not {settings.image_format!r}")
    if settings.framing not in framing.FRAMINGS:
        raise PrepareError(
            f"framing must be one of {', '.join(framing.FRAMINGS)}, not {settings.framing!r}"
        )
    check_range("--workers", workers, "count", 1, None)

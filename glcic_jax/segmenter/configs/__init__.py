"""Presets for training the mask segmentation network (`segmenter.train`), one file each.

  cpu.py   96 px mask crops, width 16, batch 16, 4,000 steps: the shipped model,
           about 30 minutes on 2 CPU cores.
  tiny.py  32 px, width 4: tests, seconds.

`get_config("cpu")` returns a preset by name; experiments/train_segmenter.py
passes a preset's file to ml_collections' config_flags, so every field can be
overridden as --config.FIELD=VALUE. This package holds what the presets
share: `base_config()`, the fields a checkpoint's identity rests on and
`validate`.
"""

import importlib

import ml_collections

from glcic_jax.training.configs import MAX_SEED, ConfigError

PRESETS = ("cpu", "tiny")
# A checkpoint cannot be resumed under a config that changes any of these.
IDENTITY_FIELDS = ("image_size", "width", "batch_size", "seed", "lr", "total_steps", "unmasked")


def base_config() -> ml_collections.ConfigDict:
    """Every field at its default; the cpu preset is this unchanged."""
    c = ml_collections.ConfigDict()
    c.preset = ""
    c.image_size = 96  # side of the mask crop the network sees
    c.width = 16  # channels at full resolution, doubled per level
    c.batch_size = 16
    c.seed = 0
    c.lr = 2e-3  # Adam, cosine decay to 5% over total_steps after a short warmup
    c.total_steps = 4_000
    c.steps_per_run = 0  # stop cleanly after this many steps (0: run to total_steps)
    c.unmasked = 0.15  # share of faces drawn without a mask (label: nothing)
    c.log_every = 25
    c.checkpoint_every = 250
    c.sample_every = 500
    c.max_checkpoints = 3
    c.num_samples = 8
    return c


def get_config(name: str = "cpu") -> ml_collections.ConfigDict:
    """The named preset: `get_config()` of this package's module NAME."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return importlib.import_module(f"{__name__}.{name}").get_config()


def validate(config) -> None:
    """Raise ConfigError, in one line, for a config that cannot train."""
    if config.image_size < 16 or config.image_size % 8:
        raise ConfigError(f"image_size must be a multiple of 8 and >= 16, not {config.image_size}")
    if config.width < 4 or config.width % 4:
        raise ConfigError(f"width must be a multiple of 4 (GroupNorm groups), not {config.width}")
    if config.batch_size < 1 or config.total_steps < 1:
        raise ConfigError("batch_size and total_steps must be >= 1")
    if not config.lr > 0:
        raise ConfigError(f"lr must be positive, not {config.lr}")
    if not 0 <= config.unmasked < 1:
        raise ConfigError(f"unmasked must be in [0, 1), not {config.unmasked}")
    if not 0 <= config.seed <= MAX_SEED:
        raise ConfigError(f"seed must be an integer in 0..{MAX_SEED}, not {config.seed}")
    if config.steps_per_run < 0 or config.max_checkpoints < 0:
        raise ConfigError("steps_per_run and max_checkpoints must be >= 0")
    for field in ("log_every", "checkpoint_every", "sample_every", "num_samples"):
        if config[field] < 1:
            raise ConfigError(f"{field} must be >= 1, not {config[field]}")

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

from glcic_jax.training.configs import MAX_SEED, MAX_STEPS, ConfigError, check_fields

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


# (field, kind, low, high) for `check_fields`, in the order base_config() lists them.
_NUMERIC_RULES = (
    ("image_size", "count", 16, None),
    ("width", "count", 4, None),
    ("batch_size", "count", 1, None),
    ("seed", "range", 0, MAX_SEED),
    ("lr", "positive", 0, None),
    ("total_steps", "count", 1, MAX_STEPS),
    ("steps_per_run", "count", 0, MAX_STEPS),
    ("unmasked", "fraction", 0, 1),
    ("log_every", "count", 1, MAX_STEPS),
    ("checkpoint_every", "count", 1, MAX_STEPS),
    ("sample_every", "count", 1, MAX_STEPS),
    ("max_checkpoints", "count", 0, None),
    ("num_samples", "count", 1, None),
)


def validate(config, names: dict[str, str] | None = None) -> None:
    """Raise ConfigError, in one line naming the field as the user wrote it, for a config that cannot train.

    `names`: field -> its name on the command line (default --config.FIELD).
    """
    names = {f: f"--config.{f}" for f in base_config().keys()} if names is None else names
    check_fields(config, names, _NUMERIC_RULES)
    if config.image_size % 8:
        raise ConfigError(
            f"{names['image_size']} must be a multiple of 8 and >= 16, not {config.image_size}"
        )
    if config.width % 4:
        raise ConfigError(
            f"{names['width']} must be a multiple of 4 (GroupNorm groups), not {config.width}"
        )

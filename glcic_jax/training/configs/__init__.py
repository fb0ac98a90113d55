"""Training presets, one file each with its `get_config()`, as in the Flax examples.

  paper.py    the SIGGRAPH 2017 schedule at 256px (batch 96, Tc=90k, Td=10k, 500k).
  seed.py     the study's: 256px, 480k iterations run as six chunks of 80k.
  cpu64.py    64px, half width: all three phases in about 30 minutes on 2 CPU cores.
  photo64.py  cpu64 for real masked photos: face-mask-shaped holes in the mask
              crop (chin and cheeks inside), the shipped photo model's preset.
  tiny.py     32px, width 8: tests, seconds.

`get_config("cpu64")` etc. returns a preset by name; launch.py passes a
preset's file to ml_collections' config_flags, so every field can be
overridden as --config.FIELD=VALUE. This package also holds what every
preset shares: `base_config()` (each field's default and what it means),
the fields a checkpoint's identity rests on, the training phases and
`validate`, so a preset file says only what it changes.
"""

import importlib
import math

import ml_collections

from glcic_jax.faces import align

PRESETS = ("paper", "seed", "cpu64", "photo64", "tiny")

# Fields that define the networks, the data they see and the random streams:
# a checkpoint cannot be resumed under a config that changes any of them.
IDENTITY_FIELDS = (
    "image_size",
    "width",
    "d_width",
    "mask",
    "batch_size",
    "seed",
    "optimizer",
    "g_lr",
    "d_lr",
    "alpha",
    "bn_momentum",
    "phase1_steps",
    "phase2_steps",
    "compute_dtype",
    "overlay_bank",
    "local_patch",
    "real_patches",
    "framing",
    "overlay_dilation",
    "d_label_smoothing",
)

# Identity fields a branch (launch.py --branch_from) may change: the phase
# schedule and the adversarial settings, so phase 3 can be tried several ways
# from one completion-only checkpoint.
BRANCH_FREE_FIELDS = (
    "phase1_steps",
    "phase2_steps",
    "alpha",
    "g_lr",
    "d_lr",
    "d_label_smoothing",
    "real_patches",
)
BRANCH_FIELDS = tuple(f for f in IDENTITY_FIELDS if f not in BRANCH_FREE_FIELDS)

# What an identity field meant in checkpoints written before it existed,
# where that differs from base_config()'s default: runs before `real_patches`
# cut their real patches at uniformly random positions.
LEGACY_DEFAULTS = {"real_patches": "uniform"}

# The values of `real_patches` (base_config says what each does).
REAL_PATCHES = ("hole", "uniform")


# Seeds feed jax.random.key, grain's shuffle and NumPy generators: one range all take.
MAX_SEED = 2**31 - 1


class ConfigError(ValueError):
    """A config that cannot train; the message is one line for the user."""


def base_config() -> ml_collections.ConfigDict:
    """Every field at its default, each with what it means; the paper preset is this unchanged."""
    c = ml_collections.ConfigDict()
    c.preset = ""
    c.image_size = 256
    c.width = 64  # completion net's first-layer channels (paper: 64)
    c.d_width = 64  # discriminators' first-layer channels (paper: 64)
    c.mask = "mouth"  # hole regime: mouth | random | random_mouthsize | overlay (holes.REGIMES)
    c.overlay_bank = 1000  # overlay regime: how many mask-shaped holes to draw from
    # overlay regime: each hole grown by a random 0..this many canvas pixels
    # (the photo pipeline grows the segmenter's region by a margin).
    c.overlay_dilation = 0
    # How faces are framed (faces.framing): "canvas", the study's aligned 256
    # canvas, or "mask_crop", zoomed out so a worn mask's whole region is in
    # frame. The data folder must be prepared with the same framing.
    c.framing = "canvas"
    # The local discriminator's square patch, in pixels of the 256 canvas
    # (scaled like the holes). 160 holds the mouth box; the paper's 128 holds
    # the random holes only.
    c.local_patch = 160
    # Real local patches at the fake ones' positions ("hole"), or uniformly
    # random ("uniform", the code before it): with a fixed hole, uniform real
    # patches let the local discriminator tell real from fake by position.
    c.real_patches = "hole"
    c.batch_size = 96
    c.seed = 0
    # The paper trains with ADADELTA; Adam reaches a usable model sooner on
    # the short CPU schedules. optimizer: adadelta | adam.
    c.optimizer = "adadelta"
    c.g_lr = 1.0
    c.d_lr = 1.0
    c.alpha = 4e-4  # weight of the adversarial loss in the joint phase
    # One-sided label smoothing (Salimans et al. 2016): the discriminators'
    # target for real images is 1 - this (0: the paper's hard labels).
    c.d_label_smoothing = 0.0
    c.bn_momentum = 0.9
    c.phase1_steps = 90_000  # Tc: completion network alone, MSE
    c.phase2_steps = 10_000  # Td: discriminators alone
    c.total_steps = 500_000  # then joint training up to here
    c.steps_per_run = 0  # stop cleanly after this many steps (0: run to total_steps)
    c.compute_dtype = "float32"  # float32 | bfloat16 (params and losses stay float32)
    c.log_every = 100
    c.sample_every = 5_000
    c.checkpoint_every = 10_000
    c.max_checkpoints = 0  # keep this many (0: keep all, for checkpoint sweeps)
    c.decode_threads = 2
    c.num_samples = 8  # test images in the periodic sample grid
    return c


def get_config(name: str = "cpu64") -> ml_collections.ConfigDict:
    """The named preset: `get_config()` of this package's module NAME."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return importlib.import_module(f"{__name__}.{name}").get_config()


def phase_of(step: int, config) -> int:
    """Training phase (1, 2 or 3) of the step that follows `step` completed steps."""
    if step < config.phase1_steps:
        return 1
    if step < config.phase1_steps + config.phase2_steps:
        return 2
    return 3


def field_names(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """How a user names each config field on the command line: --config.FIELD.

    `overrides` names the fields a launcher sets from flags of its own (launch.py's
    --seed and --steps_per_run), so a refusal names the flag the user wrote.
    """
    names = {field: f"--config.{field}" for field in base_config().keys()}
    names.update(overrides or {})
    return names


def check_fields(config, names: dict[str, str], rules) -> None:
    """Raise ConfigError, in one line naming the field as the user wrote it, for the first bad value.

    Args:
      config: the config.
      names: field -> its name on the command line (`field_names`).
      rules: (field, kind, low, high) tuples: kind "count" (an integer >= low
        and, unless high is None, <= high), "range" (an integer in low..high),
        "positive" (a finite number > low), "min" (a finite number >= low) or
        "fraction" (a number in [low, high)).
    """
    for field, kind, low, high in rules:
        value, name = config[field], names.get(field, field)
        if kind in ("count", "range"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name} must be an integer, not {value!r}")
            if kind == "range" and not low <= value <= high:
                raise ConfigError(f"{name} must be an integer in {low}..{high}, not {value}")
            if value < low:
                raise ConfigError(f"{name} must be >= {low}, not {value}")
            if high is not None and value > high:
                raise ConfigError(f"{name} must be <= {high}, not {value}")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, not {value!r}")
        if kind == "positive" and not (math.isfinite(value) and value > low):
            raise ConfigError(f"{name} must be a finite number > {low}, not {value}")
        if kind == "min" and not (math.isfinite(value) and value >= low):
            raise ConfigError(f"{name} must be a finite number >= {low}, not {value}")
        if kind == "fraction" and not low <= value < high:
            raise ConfigError(f"{name} must be in [{low}, {high}), not {value}")


# Step counts feed the int32 step counter of the train state.
MAX_STEPS = 2**31 - 1
# (field, kind, low, high) for `check_fields`, in the order base_config() lists them.
_NUMERIC_RULES = (
    ("image_size", "count", 32, None),
    ("width", "count", 2, None),
    ("d_width", "count", 1, None),
    ("overlay_bank", "count", 1, None),
    ("overlay_dilation", "count", 0, None),
    ("local_patch", "range", 32, align.CANVAS),
    ("batch_size", "count", 1, None),
    ("seed", "range", 0, MAX_SEED),
    ("g_lr", "positive", 0, None),
    ("d_lr", "positive", 0, None),
    ("alpha", "min", 0, None),
    ("d_label_smoothing", "fraction", 0, 0.5),
    ("bn_momentum", "fraction", 0, 1),
    ("phase1_steps", "count", 0, MAX_STEPS),
    ("phase2_steps", "count", 0, MAX_STEPS),
    ("total_steps", "count", 1, MAX_STEPS),
    ("steps_per_run", "count", 0, MAX_STEPS),
    ("log_every", "count", 1, MAX_STEPS),
    ("sample_every", "count", 1, MAX_STEPS),
    ("checkpoint_every", "count", 1, MAX_STEPS),
    ("max_checkpoints", "count", 0, None),
    ("decode_threads", "count", 1, None),
    ("num_samples", "count", 1, None),
)


def validate(config, names: dict[str, str] | None = None) -> None:
    """Raise ConfigError, in one line, for a config that cannot train.

    Every numeric field is range-checked (learning rates finite and > 0,
    fractions in their ranges, counts >= 0 or >= 1 as they mean) and named
    as the user wrote it: `names` (default `field_names()`: --config.FIELD).
    """
    names = field_names() if names is None else names
    from glcic_jax import holes

    if config.mask not in holes.REGIMES:
        raise ConfigError(f"--mask must be one of {', '.join(holes.REGIMES)}, not {config.mask!r}")
    from glcic_jax.faces import framing

    if config.framing not in framing.FRAMINGS:
        raise ConfigError(
            f"{names['framing']} must be one of {', '.join(framing.FRAMINGS)},"
            f" not {config.framing!r}"
        )
    if config.framing != "canvas" and config.mask != "overlay":
        raise ConfigError(
            f"--mask={config.mask} holes are boxes on the study's canvas; framing"
            f" {config.framing!r} trains with --mask=overlay"
        )
    size = config.image_size
    if isinstance(size, int) and not isinstance(size, bool) and (size % 4 or size < 32):
        raise ConfigError(f"{names['image_size']} must be a multiple of 4 and >= 32, not {size}")
    check_fields(config, names, _NUMERIC_RULES)
    from glcic_jax.nets import models

    if models.discriminator_depth(config.image_size) > len(models.DISCRIMINATOR_CHANNELS):
        raise ConfigError(
            f"{names['image_size']}={config.image_size} is larger than the paper's 256 allows"
        )
    if config.real_patches not in REAL_PATCHES:
        raise ConfigError(
            f"{names['real_patches']} must be one of {', '.join(REAL_PATCHES)},"
            f" not {config.real_patches!r}"
        )
    if config.optimizer not in ("adam", "adadelta"):
        raise ConfigError(
            f"{names['optimizer']} must be adam or adadelta, not {config.optimizer!r}"
        )
    if config.compute_dtype not in ("float32", "bfloat16"):
        raise ConfigError(
            f"{names['compute_dtype']} must be float32 or bfloat16, not {config.compute_dtype!r}"
        )

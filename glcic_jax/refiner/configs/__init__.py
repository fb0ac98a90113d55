"""Presets for training the fine stage (`refiner.train`), one file each.

  cpu.py   128 px crops of mask-crop frames 256, 384 and 512 px wide,
           width 24, batch 8, 6,000 steps in chunks, the correction kept
           to its detail band (detail_sigma 2): the shipped refiner
           (about 1.2 s a step on 2 CPU cores).
  tiny.py  32 px crops of 64 and 96 px frames, width 4: tests, seconds.

`get_config("cpu")` returns a preset by name; experiments/train_refiner.py
passes a preset's file to ml_collections' config_flags, so every field can
be overridden as --config.FIELD=VALUE. This package holds what the presets
share: `base_config()`, the fields a checkpoint's identity rests on and
`validate`.
"""

import importlib

import ml_collections

from glcic_jax.training.configs import MAX_SEED, MAX_STEPS, ConfigError, check_fields

PRESETS = ("cpu", "tiny")
# A checkpoint cannot be resumed under a config that changes any of these.
IDENTITY_FIELDS = (
    "frame_sizes",
    "crop_size",
    "width",
    "critic_width",
    "batch_size",
    "seed",
    "lr",
    "critic_lr",
    "total_steps",
    "l1_weight",
    "perceptual_weight",
    "adversarial_weight",
    "holes",
    "hole_dilation",
    "degrade",
    "detail_sigma",
)


def base_config() -> ml_collections.ConfigDict:
    """Every field at its default (the first refiner's, where a field came later)."""
    c = ml_collections.ConfigDict()
    c.preset = ""
    # Sides of the mask-crop frames it learns in, one drawn per crop: the photo
    # pipeline refines a face in the frame nearest its own resolution.
    c.frame_sizes = (256, 384, 512)
    c.crop_size = 128  # side of the training crops (fully convolutional)
    c.width = 24  # refiner channels at full resolution, doubled per level
    c.critic_width = 32
    c.batch_size = 8
    c.seed = 0
    c.lr = 2e-4  # Adam (b1 0.5), constant
    c.critic_lr = 4e-4  # two time-scale update rule (Heusel et al. 2017)
    c.total_steps = 6_000
    c.steps_per_run = 0  # stop cleanly after this many steps (0: run to total_steps)
    c.l1_weight = 1.0  # mean absolute error over the hole
    c.perceptual_weight = 1.0  # LPIPS (AlexNet) of the crop
    c.adversarial_weight = 0.05  # hinge loss against the patch critic
    c.holes = 1_000  # size of the bank of face-mask-shaped holes
    c.hole_dilation = 8  # canvas pixels a hole may grow, as the photo model's
    # Share of crops whose whole frame (context and truth) is first made as soft
    # as a small or compressed face (`train.degrade`): real photos' faces are
    # often smaller than the frame, and the fill should be as sharp as the face
    # around it, no sharper.
    c.degrade = 0.5
    # The refiner's correction keeps only what lies above a Gaussian low-pass of
    # this sigma (pixels of a 256 px frame, scaled with the frame): shape and
    # colour stay the coarse fill's. 0: the whole correction (the first refiner).
    c.detail_sigma = 0.0
    # A refiner file whose weights a fresh run starts from ("": fresh weights).
    # Read once, at the start: not part of the run's identity, and a resumed
    # run or an export never reads it again.
    c.init_from = ""
    c.log_every = 25
    c.checkpoint_every = 250
    c.sample_every = 500
    c.max_checkpoints = 3
    c.num_samples = 6
    return c


def get_config(name: str = "cpu") -> ml_collections.ConfigDict:
    """The named preset: `get_config()` of this package's module NAME."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return importlib.import_module(f"{__name__}.{name}").get_config()


# (field, kind, low, high) for `check_fields`, in the order base_config() lists them.
_NUMERIC_RULES = (
    ("crop_size", "count", 16, None),
    ("width", "count", 4, None),
    ("critic_width", "count", 4, None),
    ("batch_size", "count", 1, None),
    ("seed", "range", 0, MAX_SEED),
    ("lr", "positive", 0, None),
    ("critic_lr", "positive", 0, None),
    ("total_steps", "count", 1, MAX_STEPS),
    ("steps_per_run", "count", 0, MAX_STEPS),
    ("l1_weight", "min", 0, None),
    ("perceptual_weight", "min", 0, None),
    ("adversarial_weight", "min", 0, None),
    ("holes", "count", 1, None),
    ("hole_dilation", "count", 0, None),
    ("degrade", "min", 0, None),
    ("detail_sigma", "min", 0, None),
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
    if config.degrade > 1:
        raise ConfigError(f"{names['degrade']} is a share of crops, 0..1, not {config.degrade}")
    if config.crop_size % 16:
        raise ConfigError(f"{names['crop_size']} must be a multiple of 16, not {config.crop_size}")
    sizes = config.frame_sizes
    if (
        not isinstance(sizes, tuple | list)
        or not sizes
        or not all(isinstance(s, int) and s % 16 == 0 and s >= config.crop_size for s in sizes)
    ):
        raise ConfigError(
            f"{names['frame_sizes']} must be multiples of 16, each at least "
            f"{names['crop_size']} ({config.crop_size}), not {sizes!r}"
        )
    # The low-pass reaches 3 sigma each side (`network.band_sigmas`), mirrored at a crop's edges.
    reach = 3.0 * config.detail_sigma * max(sizes) / 256.0
    if reach >= config.crop_size / 2:
        raise ConfigError(
            f"{names['detail_sigma']}={config.detail_sigma} is too wide for "
            f"{names['crop_size']} ({config.crop_size}) at frames of {max(sizes)} px"
        )

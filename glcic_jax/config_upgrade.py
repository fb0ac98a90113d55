"""Configs saved before a field existed, upgraded on load to what those runs did.

Fields were added to the training config as the project grew. A run or a
model file saved before a field existed was trained as the field's value
below says (runs before `real_patches` cut their real local patches at
uniformly random positions, not at the hole). Every reader of a saved
completion config (`completion.model_io`, `training.checkpoint`) upgrades it
here, once, so no other module needs a `config.get(field, fallback)`.
"""

import ml_collections

# field -> its value in runs saved before the field existed
ADDED_FIELDS = {
    "overlay_bank": 1000,
    "local_patch": 160,
    "real_patches": "uniform",
    "framing": "canvas",
    "overlay_dilation": 0,
    "d_label_smoothing": 0.0,
}


def upgrade(config) -> ml_collections.ConfigDict:
    """A copy of a saved config (dict or ConfigDict) with every later field filled in."""
    saved = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    return ml_collections.ConfigDict({**ADDED_FIELDS, **saved})

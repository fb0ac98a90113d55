"""Configs saved before a field existed load with the value those runs trained with."""

import numpy as np

from glcic_jax import config_upgrade
from glcic_jax.completion import inference, model_io
from glcic_jax.training import configs


def test_every_added_field_is_a_config_field_and_saved_values_win():
    fields = configs.base_config().keys()
    assert set(config_upgrade.ADDED_FIELDS) <= set(fields)
    old = {"image_size": 64, "mask": "mouth", "real_patches": "hole"}
    upgraded = config_upgrade.upgrade(old)
    assert upgraded.real_patches == "hole"  # saved: kept
    assert upgraded.framing == "canvas" and upgraded.local_patch == 160
    assert old == {"image_size": 64, "mask": "mouth", "real_patches": "hole"}  # not mutated


def test_a_model_file_from_before_the_fields_loads_upgraded(tmp_path):
    """The shipped study model predates local_patch, real_patches and framing."""
    config, gen, stats, mean_pixel, step = model_io.load(inference.PRETRAINED)
    header = model_io.read_header(inference.PRETRAINED)
    assert "framing" not in header["config"] and "real_patches" not in header["config"]
    assert config.framing == "canvas" and config.real_patches == "uniform"
    resolved = model_io.resolve(inference.PRETRAINED)
    assert resolved.config.to_dict() == config.to_dict()
    completer = inference.Completer.pretrained(batch_size=1)
    holes = completer.regime_holes(1)
    assert holes.shape == (1, 64, 64, 1) and np.isin(holes, (0, 1)).all()

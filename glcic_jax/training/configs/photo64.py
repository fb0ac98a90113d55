"""cpu64 for real masked photos: the shipped photo model's preset.

Its holes are face-mask shapes (the overlay regime) on faces framed by the
mask crop, zoomed out so the whole region a worn mask covers, chin and
cheeks included, is in frame; each hole is grown by up to 8 pixels, as the
photo pipeline grows the segmenter's region by a margin.
"""

import ml_collections

from glcic_jax.training.configs import cpu64


def get_config() -> ml_collections.ConfigDict:
    """cpu64 with overlay holes in the mask crop."""
    c = cpu64.get_config()
    c.preset = "photo64"
    c.mask = "overlay"
    c.framing = "mask_crop"
    c.overlay_dilation = 8
    # local_patch is in pixels of a 256 frame: 192 is 240 canvas pixels in the
    # mask crop, a patch that holds most of a worn mask's hole.
    c.local_patch = 192
    return c

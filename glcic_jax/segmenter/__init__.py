"""The mask segmenter: finds the worn face mask on a face, the region the photo pipeline fills.

network     the small U-Net (GroupNorm) that labels each pixel of a mask crop
mask_net    its model file (save/load) and MaskNet, which segments a face in a photo
grabcut     the untrained alternative: GrabCut seeded from the landmarks and skin chroma
synthetic/  the synthetic masked faces it learns from (templates, prints, scenes, photometry)
configs     its training presets
train       its training loop (on training's checkpoint and logging helpers)
evaluation  held-out masked faces with known masks, and the region scores

Completion imports `network`, `mask_net` and `grabcut` only; `synthetic` is
imported only by `train` and `evaluation` (import contracts, pyproject.toml).
"""

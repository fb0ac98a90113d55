"""Synthetic masked faces for the segmenter: a real face photo, a template on it, a known mask.

face_sources the real face photos masks are drawn on: found once, saved, decoded once
generator    the train/test regimes, `synthesize` one sample and `batch` many
mask         the mask itself: template, colour, print, straps of the drawn mask
prints       the colours and prints masks wear (train and held-out test families)
scene        what surrounds and covers the mask: neck, clothes, wall, hands, hair, glasses
photometric  lighting, blur, noise and JPEG
"""

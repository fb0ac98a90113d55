"""Synthetic masked faces for the segmenter: a real face photo, a template on it, a known mask.

generator    source faces, the train/test regimes, `synthesize` and `batch`
mask         the mask itself: template, colour, print, straps of the drawn mask
prints       the colours and prints masks wear (train and held-out test families)
scene        what surrounds and covers the mask: neck, clothes, wall, hands, hair, glasses
photometric  lighting, blur, noise and JPEG
"""

"""Skin chroma: the range of OpenCV's YCrCb in which nearly every skin tone falls.

Tone is mostly luminance, which this ignores, so one range serves all: the
dataset's masked-mouth filter, GrabCut's seeds and the synthetic scenes' colours read it.
"""

# Skin chroma in OpenCV's YCrCb (the common Chai & Ngan range, Cb widened to 70).
SKIN_CR, SKIN_CB = (133, 180), (70, 127)

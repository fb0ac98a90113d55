"""Face geometry: finding faces and framing them.

detection  MTCNN boxes, confidences and five landmarks; box arithmetic
align      the study's 256 canvas: its size, the mouth box, the aligning affine and warp
mask_crop  the segmenter's crop: the canvas zoomed out to hold a worn mask
framing    which frame a model's faces are in (canvas or mask crop)
skin       skin chroma in YCrCb
"""

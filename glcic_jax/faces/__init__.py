"""Faces in photos: detection and alignment, face-mask templates pasted on faces, segmentation of a worn mask."""

"""Face masks as pictures: the 21 RGBA templates and where they sit on a face.

overlay  templates, their anchors, placement by homography, pasting onto a face or a photo
"""

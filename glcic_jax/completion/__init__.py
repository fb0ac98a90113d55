"""Completing images with a trained model, without the training code.

model_io (model files, model folders, a run's completion weights, which one a
path is), inference (the Completer), photo completion (photo, paste,
photo_views, photo_folder), blending (postprocess), the shipped models
(pretrained/). The eval-mode completion function itself is
`nets.hole_filling`, shared with training.
"""

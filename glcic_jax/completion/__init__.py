"""Completing images with a trained model, without the training code.

sources (model file / model folder / training run), model_files, run_weights
(a run's completion network alone), network (eval-mode completion function),
inference (the Completer), photo completion, blending, the shipped model.
"""

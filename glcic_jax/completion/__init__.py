"""Completing images with a trained model: model files, the Completer, photo completion, blending, the shipped model."""

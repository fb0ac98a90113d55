"""Training GLCIC: presets (configs/), the data stream, pure steps, the loop and its shared helpers, Orbax checkpoints, metric logging."""

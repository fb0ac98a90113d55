"""Training: presets (configs), the data stream, pure steps, the loop, Orbax checkpoints, metric logging."""

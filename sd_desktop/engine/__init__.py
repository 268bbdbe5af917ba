"""The engine: checkpoints in, pixels out. Torch only; nothing here imports Qt."""

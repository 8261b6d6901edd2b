"""Pieces of the training loop in ``facedit/train.py``: run configuration, learning-rate schedule, EMA,
training-state checkpoints (with RNG states), distributed setup and validation."""

"""The learning rate as a pure function of the optimiser step (so resuming needs only the step)."""

from __future__ import annotations

import math


def learning_rate(step: int, *, peak: float, warmup: int, total: int, decay: str, min_ratio: float = 0.0) -> float:
    """lr for optimiser step ``step`` (0-based): linear warm-up to ``peak`` over ``warmup`` steps, then
    linear or cosine decay to ``min_ratio * peak`` at ``total`` steps, or constant."""
    if step < warmup:
        return peak * (step + 1) / warmup
    if decay == "constant" or total <= warmup:
        return peak
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    floor = peak * min_ratio
    if decay == "linear":
        return floor + (peak - floor) * (1.0 - progress)
    if decay == "cosine":
        return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"decay must be 'linear', 'cosine' or 'constant', got {decay!r}")

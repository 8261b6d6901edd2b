"""Exponential moving average of the weights (the inference weights, paper 3.4)."""

from __future__ import annotations

import torch


def ema_decay(step: int, decay: float, warmup: bool) -> float:
    """Decay for the EMA update after optimiser step ``step`` (1-based count of updates)."""
    return min(decay, (1.0 + step) / (10.0 + step)) if warmup else decay


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema = decay * ema + (1 - decay) * model for parameters; buffers (motion statistics) are copied."""
    for shadow, param in zip(ema.parameters(), model.parameters(), strict=True):
        shadow.lerp_(param.detach().to(shadow.dtype), 1.0 - decay)
    for shadow, buffer in zip(ema.buffers(), model.buffers(), strict=True):
        shadow.copy_(buffer)

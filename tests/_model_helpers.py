"""Shared builders for the FacEDiT model, flow and checkpoint tests."""

from __future__ import annotations

import torch

from facedit.config import FacEDiTConfig
from facedit.model import FacEDiT


def random_model(seed: int = 0, dtype: torch.dtype = torch.float32, **overrides) -> FacEDiT:
    """Tiny FacEDiT whose every weight (zero-initialised ones included) is random, so every path matters."""
    generator = torch.Generator().manual_seed(seed)
    model = FacEDiT(FacEDiTConfig.tiny(**overrides))
    with torch.no_grad():
        for name, param in model.named_parameters():
            scale = 0.3 if ("adaln" in name or name.startswith("proj_out")) else 1.0 / max(param.shape[-1], 1) ** 0.5
            param.copy_(torch.randn(param.shape, generator=generator) * scale)
        model.set_motion_stats(
            torch.randn(model.config.motion_dim, generator=generator),
            torch.rand(model.config.motion_dim, generator=generator) + 0.5,
        )
    return model.to(dtype).eval()


def random_inputs(model: FacEDiT, batch: int = 2, frames: int = 40, speech_frames: int | None = None, seed: int = 1):
    cfg = model.config
    generator = torch.Generator().manual_seed(seed)
    speech_frames = 2 * frames if speech_frames is None else speech_frames
    x_t = torch.randn(batch, frames, cfg.motion_dim, generator=generator)
    cond = torch.randn(batch, frames, cfg.motion_dim, generator=generator)
    speech = torch.randn(batch, speech_frames, cfg.speech_dim, generator=generator)
    t = torch.rand(batch, generator=generator)
    return x_t, cond, speech, t

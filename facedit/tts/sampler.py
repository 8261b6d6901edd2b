"""Flow-matching infill of a mel spectrogram with F5-TTS: Euler steps on Sway times, classifier-free guidance.

Same boundary as ``facedit/flow.py``: the sampler owns the mask, the noise, the schedule and the guidance; the
DiT only predicts a velocity. The Sway schedule is the pack's own (``facedit.flow.sway_timesteps``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..flow import sway_timesteps
from .f5_dit import F5DiT

ProgressFn = Callable[[int, int], None]


@torch.no_grad()
def infill_mel(
    model: F5DiT,
    cond: torch.Tensor,
    known: torch.Tensor,
    text: torch.Tensor,
    *,
    steps: int = 32,
    guidance: float = 2.0,
    sway: float = -1.0,
    seed: int = 0,
    progress: ProgressFn | None = None,
    cancel: Callable[[], None] | None = None,
) -> torch.Tensor:
    """Fill the frames of ``cond`` (1, N, mels) where ``known`` (1, N) is False; returns (1, N, mels) float32.

    text (1, L) holds the ids of the WHOLE edited transcript (L <= N). Known frames come back exactly as given.
    guidance g mixes v = v_c + g (v_c - v_u), v_u seeing neither audio nor text (F5-TTS's default g = 2).
    The noise is drawn on the CPU from torch.Generator(seed) so the result repeats on any device.
    """
    if cond.ndim != 3 or cond.shape[0] != 1 or cond.shape[-1] != model.config.mel_dim:
        raise ValueError(f"cond must be (1, N, {model.config.mel_dim}), got {tuple(cond.shape)}")
    frames = cond.shape[1]
    if known.shape != (1, frames):
        raise ValueError(f"known must be (1, {frames}), got {tuple(known.shape)}")
    if text.ndim != 2 or text.shape[0] != 1:
        raise ValueError(f"text must be (1, L) ids, got {tuple(text.shape)}")
    if text.shape[1] > frames:
        raise ValueError(f"the edited text has {text.shape[1]} characters but the speech only {frames} mel frames")
    if not guidance >= 0:
        raise ValueError(f"guidance must be >= 0, got {guidance}")
    param = next(model.parameters())
    device, dtype = param.device, param.dtype
    known = known.to(device, torch.bool)[..., None]
    cond = torch.where(known, cond.to(device, dtype), torch.zeros((), device=device, dtype=dtype))
    text = text.to(device)
    times = sway_timesteps(steps, sway, device).to(dtype)
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    x = torch.randn(frames, cond.shape[-1], generator=generator)[None].to(device, dtype)
    text_c = model.embed_text(text, frames)
    if guidance > 0:
        text_both = torch.cat((text_c, model.embed_text(text, frames, drop_text=True)))
        cond_both = torch.cat((cond, torch.zeros_like(cond)))
    for step in range(steps):
        if cancel is not None:
            cancel()
        t = times[step]
        if guidance > 0:
            v, v_blind = model(torch.cat((x, x)), cond_both, text_both, t).chunk(2)
            v = v + (v - v_blind) * guidance
        else:
            v = model(x, cond, text_c, t)
        x = x + (times[step + 1] - t) * v
        if progress is not None:
            progress(step + 1, steps)
    return torch.where(known, cond, x).float()

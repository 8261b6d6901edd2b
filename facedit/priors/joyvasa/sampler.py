"""Infilling with JoyVASA: its DDPM sampler with the known frames imposed at every step (replacement guidance).

Windows are JoyVASA's own: ``n_motions`` (100) frames, conditioned on the ``n_prev_motions`` (10) frames before
them, which is how the model joins windows when it generates a long clip. For infilling, a window is laid over
each masked run with the known frames around the run inside it (centred when the run is short); the frames
before the window condition it as JoyVASA's previous motion, so the left seam is the model's own join, and the
known frames inside the window are imposed at every denoising step (RePaint / replacement guidance: noised to the
step's level, exact at the end), which pins both seams. Runs longer than a window continue in the next window,
conditioned on the frames just generated. Scale is the one dimension never imposed: FacEDiT's motion does not hold
it (it stays with the source frame), so it is generated freely and discarded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ...flow import sway_timesteps
from ...motion import MOTION_DIM
from .motion import JOYVASA_DIM, SCALE, from_joyvasa, to_joyvasa
from .network import JoyVASANet

ProgressFn = Callable[[int, int], None]


def diffusion_steps(num_steps: int, steps: int, sway: float) -> list[int]:
    """Descending DDPM indices [num_steps, ..., 0] visited by ``steps`` denoising steps.

    ``steps == num_steps`` is JoyVASA's own sampler (every index); fewer steps are spaced like FacEDiT's Sway
    schedule (negative sway spends more of them near pure noise, where the coarse motion is decided).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if steps > num_steps:
        raise ValueError(f"steps: JoyVASA was trained with {num_steps} diffusion steps; choose at most {num_steps}")
    if steps == num_steps:
        return list(range(num_steps, -1, -1))
    flow_t = sway_timesteps(steps, sway).double().numpy()
    idx = {int(round((1 - t) * num_steps)) for t in flow_t} | {0, num_steps}
    return sorted(idx, reverse=True)


@torch.no_grad()
def denoise_window(
    net: JoyVASANet,
    audio_feat: torch.Tensor,
    prev_motion: torch.Tensor | None,
    prev_audio: torch.Tensor | None,
    known: torch.Tensor | None = None,
    known_mask: torch.Tensor | None = None,
    *,
    timesteps: list[int] | None = None,
    guidance: float = 0.0,
    generator: torch.Generator | None = None,
    x_T: torch.Tensor | None = None,
    step_noise: Callable[[int], torch.Tensor] | None = None,
    progress: ProgressFn | None = None,
    cancel: Callable[[], None] | None = None,
) -> torch.Tensor:
    """One window: (N, L, D) audio features -> (N, L, 70) clean normalised motion, float32.

    prev_motion / prev_audio (N, L_p, .) or None for JoyVASA's learned start tokens. known (N, L, 70) with
    known_mask (same shape, bool): entries imposed at every step. guidance g mixes x0 = x0_null + (1 + g)(x0_speech
    - x0_null) (JoyVASA's cfg_scale is 1 + g; its default 2.8 is g = 1.8). x_T and step_noise(t) replace the
    generator's draws (tests reproduce JoyVASA's own sampler with them).
    """
    cfg = net.cfg
    batch, frames = audio_feat.shape[:2]
    device, dtype = net.device, net.audio_feature_map.weight.dtype
    sched = net.diffusion_sched
    ts = timesteps if timesteps is not None else list(range(cfg.n_diff_steps, -1, -1))
    ab, alphas = sched.alpha_bars.double().cpu(), sched.alphas.double().cpu()

    def draw() -> torch.Tensor:
        return torch.randn(batch, frames, cfg.motion_feat_dim, generator=generator)

    prev_motion = net.start_motion_feat.expand(batch, -1, -1) if prev_motion is None else prev_motion
    prev_audio = net.start_audio_feat.expand(batch, -1, -1) if prev_audio is None else prev_audio
    audio_feat, prev_motion, prev_audio = (a.to(device, dtype) for a in (audio_feat, prev_motion, prev_audio))
    null = net.null_audio_feat.expand(batch, frames, -1)
    if guidance > 0:
        audio_in, prev_in, prev_audio_in = (
            torch.cat([null, audio_feat]),
            prev_motion.repeat(2, 1, 1),
            prev_audio.repeat(2, 1, 1),
        )
    else:
        audio_in, prev_in, prev_audio_in = audio_feat, prev_motion, prev_audio
    if known is not None:
        known = known.float().cpu()
        known_mask = known_mask.bool().cpu()

    def impose(x: torch.Tensor, t: int) -> torch.Tensor:
        if known is None:
            return x
        noisy = math.sqrt(ab[t]) * known + math.sqrt(1 - ab[t]) * draw()
        return torch.where(known_mask, noisy if t > 0 else known, x)

    x = (draw() if x_T is None else x_T.float().cpu()).clone()
    x = impose(x, ts[0])
    for k, (t, s) in enumerate(zip(ts[:-1], ts[1:], strict=True)):
        if cancel is not None:
            cancel()
        step = torch.full((audio_in.shape[0],), t, dtype=torch.long, device=device)
        x_in = (x.repeat(2, 1, 1) if guidance > 0 else x).to(device, dtype)
        out = net.denoising_net(x_in, audio_in, prev_in, prev_audio_in, step)[:, -frames:].float().cpu()
        if guidance > 0:
            blind, heard = out.chunk(2)
            x0 = blind + (1 + guidance) * (heard - blind)
        else:
            x0 = out
        a_ts = float(alphas[t]) if s == t - 1 else float(ab[t] / ab[s])
        c_x = (1 - ab[s]) * math.sqrt(a_ts) / (1 - ab[t])
        c_0 = (1 - a_ts) * math.sqrt(ab[s]) / (1 - ab[t])
        sigma = math.sqrt((1 - ab[s]) / (1 - ab[t]) * (1 - a_ts))
        x = float(c_x) * x + float(c_0) * x0
        if s > 0:
            x = x + sigma * (step_noise(t) if step_noise is not None else draw())
        x = impose(x, s)
        if progress is not None:
            progress(k + 1, len(ts) - 1)
    return x


def window_starts(mask: np.ndarray, length: int, prev: int) -> list[int]:
    """Start frames of the windows that generate every masked frame, in order (see the module docstring)."""
    mask = np.asarray(mask, dtype=bool)
    done = ~mask
    starts = []
    while not done.all():
        a = int(np.argmin(done))
        after = np.flatnonzero(done[a:])
        b = a + int(after[0]) if after.size else len(mask)
        s = a - max(0, (length - (b - a)) // 2)
        if s < prev:
            s = min(prev, a) if a >= prev else 0
        starts.append(s)
        done[s : s + length] = True
    return starts


def _window_audio(speech: Any, start_frame: int, offset_s: float, fps: float, samples: int) -> torch.Tensor:
    """``samples`` of audio from the time of motion frame ``start_frame``; zeros outside the speech."""
    wave = speech.samples
    first = int(round((start_frame / fps - offset_s) * speech.sample_rate))
    out = torch.zeros(samples, dtype=torch.float32)
    lo, hi = max(first, 0), min(first + samples, wave.shape[0])
    if hi > lo:
        out[lo - first : hi - first] = wave[lo:hi].float()
    return out


def _infill_one(
    prior: Any, motion: torch.Tensor, mask: np.ndarray, speech: Any, offset_s: float, scale: torch.Tensor | None,
    timesteps: list[int], guidance: float, generator: torch.Generator, report: Callable[[int], None],
    cancel: Callable[[], None] | None,
) -> torch.Tensor:  # fmt: skip
    net: JoyVASANet = prior.net
    cfg = net.cfg
    length, prev = cfg.n_motions, cfg.n_prev_motions
    frames = motion.shape[0]
    norm = torch.zeros(frames, JOYVASA_DIM)
    known = torch.from_numpy(~mask)
    if known.any():
        norm[known] = to_joyvasa(motion[known], prior.template, None if scale is None else scale[known])
    done = ~mask.copy()
    feats: dict[int, torch.Tensor] = {}

    def features(start: int) -> torch.Tensor:
        if start not in feats:
            wave = _window_audio(speech, start, offset_s, cfg.fps, cfg.window_samples)
            feats[start] = (
                net.audio_features(wave[None].to(net.device, net.audio_feature_map.weight.dtype)).float().cpu()
            )
        return feats[start]

    for n, s in enumerate(window_starts(mask, length, prev)):
        span = range(s, min(s + length, frames))
        imposed = torch.zeros(1, length, JOYVASA_DIM, dtype=torch.bool)
        target = torch.zeros(1, length, JOYVASA_DIM)
        for k in span:
            if done[k]:
                imposed[0, k - s] = True
                target[0, k - s] = norm[k]
        imposed[..., SCALE] = False
        if s == 0:
            prev_motion = prev_audio = None
        else:
            prev_motion = norm[s - prev : s][None]
            prev_audio = features(s - length)[:, -prev:]
        out = denoise_window(
            net, features(s), prev_motion, prev_audio, target, imposed, timesteps=timesteps, guidance=guidance,
            generator=generator, progress=lambda d, _t, n=n: report(n * (len(timesteps) - 1) + d), cancel=cancel,
        )[0]  # fmt: skip
        for k in span:
            if not done[k]:
                norm[k] = out[k - s]
                done[k] = True
    generated, _ = from_joyvasa(norm[torch.from_numpy(mask)], prior.template)
    return generated


def infill(
    prior: Any,
    motion: torch.Tensor | np.ndarray,
    infill_mask: torch.Tensor | np.ndarray,
    speech: Any,
    *,
    speech_frame_rate: float | None = None,
    speech_offset_s: float | None = None,
    steps: int = 32,
    sway: float = -1.0,
    guidance: float = 0.0,
    seed: int = 0,
    progress: ProgressFn | None = None,
    cancel: Callable[[], None] | None = None,
    attention: str = "auto",
    scale: torch.Tensor | np.ndarray | None = None,
) -> torch.Tensor | np.ndarray:
    """Generate the masked frames of RAW motion from speech; the other frames come back bit-identical.

    The contract of ``facedit.flow.infill``: motion (T, 75) or (B, T, 75) at the prior's fps (25), NaN allowed
    under the mask; infill_mask (T,) or (B, T) bool, True = generate; numpy in, numpy out. ``speech`` is
    :class:`SpeechAudio` (16 kHz mono; JoyVASA encodes it with its own HuBERT, window by window);
    ``speech_offset_s`` is the time of its first sample relative to motion frame 0 (default: its own
    ``offset_s``); ``speech_frame_rate``, if given, must be its sample rate. ``steps`` <= the model's diffusion
    steps (50: JoyVASA's own sampler); ``attention`` is accepted for the common interface and unused. ``scale``
    (T,) or (B, T), optional: the known frames' LivePortrait scale (else the template's mean).
    """
    if not hasattr(speech, "samples"):
        raise TypeError(
            f"speech: JoyVASA encodes the audio itself; give SpeechAudio (prior.speech_input(audio)), not "
            f"{type(speech).__name__}"
        )
    if speech_frame_rate is not None and float(speech_frame_rate) != float(speech.sample_rate):
        raise ValueError(f"speech_frame_rate={speech_frame_rate} contradicts the audio's {speech.sample_rate} Hz")
    offset = float(speech.offset_s if speech_offset_s is None else speech_offset_s)
    if not guidance >= 0:
        raise ValueError(f"guidance must be >= 0, got {guidance}")
    is_numpy = isinstance(motion, np.ndarray)
    motion_t = torch.from_numpy(motion) if is_numpy else motion
    if not isinstance(motion_t, torch.Tensor):
        raise TypeError(f"motion must be a torch tensor or numpy array, got {type(motion).__name__}")
    if motion_t.ndim not in (2, 3) or motion_t.shape[-1] != MOTION_DIM or not motion_t.is_floating_point():
        raise ValueError(f"motion must be float (T, {MOTION_DIM}) or (B, T, {MOTION_DIM}), got {tuple(motion_t.shape)}")
    single = motion_t.ndim == 2
    batched = motion_t[None] if single else motion_t
    batch, frames, _ = batched.shape
    mask = torch.as_tensor(infill_mask)
    if mask.dtype != torch.bool:
        raise ValueError(f"infill_mask must be bool (True = generate), got {mask.dtype}")
    if mask.shape == (frames,):
        mask = mask[None].expand(batch, frames)
    if mask.shape != (batch, frames):
        raise ValueError(f"infill_mask must be ({frames},) or ({batch}, {frames}), got {tuple(mask.shape)}")
    mask = mask.cpu()
    if not torch.isfinite(batched.cpu()[~mask]).all():
        raise ValueError("motion has NaN or infinite values in frames that are not masked for infilling")
    scales = None
    if scale is not None:
        scales = torch.as_tensor(scale, dtype=torch.float64).reshape(-1, frames).expand(batch, frames)
    timesteps = diffusion_steps(prior.config.n_diff_steps, steps, sway)
    result = batched.clone()
    masks = mask.numpy()
    windows = [len(window_starts(m, prior.config.n_motions, prior.config.n_prev_motions)) for m in masks]
    total = sum(windows) * (len(timesteps) - 1)
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    done = 0
    was_training = prior.training
    prior.eval()
    try:
        for b in range(batch):
            if not masks[b].any():
                continue
            base = done

            def report(d: int, base: int = base) -> None:
                if progress is not None:
                    progress(base + d, total)

            raw = batched[b].detach().cpu().double()
            gen = _infill_one(prior, torch.nan_to_num(raw), masks[b], speech, offset,
                              None if scales is None else scales[b], timesteps, float(guidance), generator, report,
                              cancel)  # fmt: skip
            result[b][mask[b].to(result.device)] = gen.to(result.device, result.dtype)
            done += windows[b] * (len(timesteps) - 1)
    finally:
        prior.train(was_training)
    result = result[0] if single else result
    return result.numpy() if is_numpy else result

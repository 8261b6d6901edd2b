"""Conditional flow matching for FacEDiT: the training loss, the Euler/Sway sampler and `infill`.

The backbone (`facedit.model.FacEDiT`) only predicts a velocity; this module owns masking, the
noise-to-data interpolation, targets, condition dropout and the ODE sampler (the F5-TTS split).

Path: x_t = (1 - t) x_0 + t x_1 with x_0 ~ N(0, I), target velocity x_1 - x_0 (paper eq. 1, 3).
One function serves editing (inner spans masked) and generation (everything after a prompt masked).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .accel.compiling import compiled
from .accel.fused import prepacked
from .model import FacEDiT

SWAY_RANGE = (-1.0, 1.0 / (math.pi / 2 - 1))  # outside it the Sway schedule stops being monotonic
ProgressFn = Callable[[int, int], None]
TANGENT_FADE_S = 0.8  # context_fill "smooth": how fast the boundary velocity's pull fades into the span


def cfm_loss(
    model: FacEDiT,
    x1: torch.Tensor,
    infill_mask: torch.Tensor,
    motion_mask: torch.Tensor | None,
    speech: torch.Tensor,
    speech_mask: torch.Tensor | None,
    *,
    speech_frame_rate: float | None = None,
    speech_offset_s: float | None = None,
    lambda_ts: float = 0.2,
    speech_drop_prob: float = 0.0,
    generator: torch.Generator | None = None,
    t: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Flow-matching loss plus temporal smoothness (paper eq. 3-5). Returns dict(loss, cfm, ts).

    x1: (B, T, D) normalised ground-truth motion; infill_mask (B, T) True where the model must
    generate (its input there is zeroed); motion_mask / speech_mask (B, T) / (B, N) True for real
    frames (None: all real). cfm is the flow-matching MSE over generated, real frames only: of the
    velocity (config.prediction "velocity", eq. 1) or of the motion estimate x1_hat ("motion": the same
    regression weighted by (1 - t)^2, see `read_output`).

    ts is eq. 4's L1 on consecutive-frame differences of the estimate of x1, but formed from the
    network's output (x1_hat = x_t + (1 - t) v; the paper's printed F0 + (Ft - F0) / t contains no
    network output and so could not train anything). Known frames are put back into x1_hat, as the sampler
    does, and only pairs of real frames that touch a generated frame count: so the loss also rewards
    seamless joins at the span boundaries. Both terms average over the motion dims.

    speech_drop_prob: per-sample probability of dropping speech (classifier-free guidance training).
    Off by default: guidance at sampling time then has no meaning, so enable it when training a model
    meant for `guidance > 0`. t / noise may be given for reproducible tests; otherwise they are drawn
    from `generator` (or torch's global RNG when None).
    """
    if x1.ndim != 3:
        raise ValueError(f"x1 must be (B, T, D), got {tuple(x1.shape)}")
    batch, frames, _ = x1.shape
    device = x1.device
    if infill_mask.shape != (batch, frames):
        raise ValueError(f"infill_mask must be ({batch}, {frames}), got {tuple(infill_mask.shape)}")
    if not 0.0 <= speech_drop_prob <= 1.0:
        raise ValueError(f"speech_drop_prob must be in [0, 1], got {speech_drop_prob}")
    valid = torch.ones(batch, frames, dtype=torch.bool, device=device) if motion_mask is None else motion_mask.bool()
    infill_mask = infill_mask.to(device, torch.bool)
    x1 = x1.float()

    def draw(shape: tuple[int, ...], normal: bool) -> torch.Tensor:
        gen_device = generator.device if generator is not None else device
        fn = torch.randn if normal else torch.rand
        return fn(shape, generator=generator, device=gen_device).to(device)

    t = draw((batch,), normal=False) if t is None else t.to(device, torch.float32)
    x0 = draw(tuple(x1.shape), normal=True) if noise is None else noise.to(device, torch.float32)
    drop = draw((batch,), normal=False) < speech_drop_prob if speech_drop_prob > 0 else False

    config = _config(model)
    x_t, cond = network_input(x0, x1, t, infill_mask, fill=config.context_fill, valid=valid, fps=config.fps)
    out = model(
        x_t, cond, speech, t, motion_mask=valid, speech_mask=speech_mask, speech_frame_rate=speech_frame_rate,
        speech_offset_s=speech_offset_s, drop_speech=drop,
    ).float()  # fmt: skip
    v, x1_hat = read_output(out, x_t, cond, t, config.prediction)

    target = infill_mask & valid
    if config.prediction == "motion":
        per_frame = ((x1_hat - x1) ** 2).mean(dim=-1)  # (B, T)
    else:
        per_frame = ((v - (x1 - x0)) ** 2).mean(dim=-1)
    cfm = (per_frame * target).sum() / target.sum().clamp(min=1)

    x1_hat = torch.where(infill_mask[..., None], x1_hat, x1)
    pairs = valid[:, 1:] & valid[:, :-1] & (infill_mask[:, 1:] | infill_mask[:, :-1])
    step = (x1_hat[:, 1:] - x1_hat[:, :-1]).abs().mean(dim=-1)  # (B, T - 1)
    ts = (step * pairs).sum() / pairs.sum().clamp(min=1)
    return {"loss": cfm + lambda_ts * ts, "cfm": cfm, "ts": ts}


def _config(model: torch.nn.Module) -> Any:
    """The FacEDiT config of a model, also through DistributedDataParallel's (or torch.compile's) wrapper."""
    while not hasattr(model, "config") and hasattr(model, "module"):
        model = model.module
    return model.config


def read_output(
    out: torch.Tensor, x_t: torch.Tensor, cond: torch.Tensor, t: torch.Tensor, prediction: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's output as (velocity, estimate of x1) at flow time t (scalar or (B,)).

    "velocity" (the paper's): the output is v and x1_hat = x_t + (1 - t) v. "motion": the output is
    what to add to the network's own masked-motion input cond (under the mask: the context fill) to
    get x1_hat, and v = (x1_hat - x_t) / (1 - t), the velocity that reaches x1_hat at t = 1. So an
    untrained "motion" network already lands on the fill, and the sampler's noise reaches the result
    only through what the network learns to take from x_t. v is not used at t = 1 (training computes
    its loss on x1_hat; the sampler never evaluates there).
    """
    tt = t.reshape(-1, 1, 1) if t.ndim else t
    if prediction == "velocity":
        return out, x_t + (1 - tt) * out
    x1_hat = cond + out
    return (x1_hat - x_t) / (1 - tt), x1_hat


def network_input(
    x0: torch.Tensor,
    x1: torch.Tensor,
    t: torch.Tensor,
    infill_mask: torch.Tensor,
    state: torch.Tensor | None = None,
    fill: str = "line",
    valid: torch.Tensor | None = None,
    fps: float = 25.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's (x_t, cond) at flow time t: the one place training and sampling build them.

    x0 (B, T, D): the noise the path starts from; x1: the known motion (its values under infill_mask
    are ignored); t: scalar or (B,); infill_mask (B, T) True where generated; state: the sampler's
    integrated frames, used under infill_mask only (None: the conditional path there too, as in
    training). Known frames always sit on their conditional path (1 - t) x0 + t x1, the only states
    training ever shows them in; integrating them with the network's velocity (which is never trained
    on them) lets them drift off it and puts the seams on inputs the network never saw. cond carries
    the known frames clean and, under the mask, `boundary_fill`'s line (fill "line"), that line bent to
    the boundary velocities fading over TANGENT_FADE_S at fps frames a second ("smooth") or zeros
    ("zeros": the paper's masked input); the model's config.context_fill says which it was trained with.
    valid (B, T): True for real frames (None: all); padding never anchors the line.
    """
    tt = t.reshape(-1, 1, 1) if t.ndim else t
    generated = infill_mask[..., None]
    on_path = (1 - tt) * x0 + tt * x1
    x_t = on_path if state is None else torch.where(generated, state, on_path)
    if fill == "zeros":
        return x_t, x1.masked_fill(generated, 0.0)
    return x_t, boundary_fill(x1, infill_mask, valid, TANGENT_FADE_S * fps if fill == "smooth" else None)


def boundary_fill(
    known: torch.Tensor,
    infill_mask: torch.Tensor,
    valid: torch.Tensor | None = None,
    tangent_frames: float | None = None,
) -> torch.Tensor:
    """known (B, T, D) with every frame under infill_mask (B, T) replaced by the straight line between
    the known frames on either side of its run (the nearer one held where the run touches an end of the
    clip; zeros where no frame is known). Only the known real frames (valid, None: all) anchor it."""
    batch, frames, _ = known.shape
    index = torch.arange(frames, device=known.device).expand(batch, frames)
    is_known = ~infill_mask if valid is None else ~infill_mask & valid.to(infill_mask.device, torch.bool)
    prev = torch.where(is_known, index, -1).cummax(dim=1).values
    nxt = torch.where(is_known, index, frames).flip(1).cummin(dim=1).values.flip(1)
    has_prev, has_next = prev >= 0, nxt < frames
    clean = known.masked_fill(infill_mask[..., None], 0.0)
    before = clean.gather(1, prev.clamp(min=0)[..., None].expand_as(known))
    after = clean.gather(1, nxt.clamp(max=frames - 1)[..., None].expand_as(known))
    span = (nxt - prev).clamp(min=1).to(known.dtype)
    weight = ((index - prev).to(known.dtype) / span)[..., None]
    line = before + (after - before) * weight
    if tangent_frames is not None:
        line = line + _tangent_correction(clean, is_known, prev, nxt, before, after, tangent_frames)
    line = torch.where(has_prev[..., None], line, after)
    line = torch.where(has_next[..., None], line, torch.where(has_prev[..., None], before, line))
    line = torch.where((has_prev | has_next)[..., None], line, torch.zeros_like(line))
    return torch.where(infill_mask[..., None], line, clean)


def _tangent_correction(clean, is_known, prev, nxt, before, after, tau: float) -> torch.Tensor:
    """What turns the line of an inner run into a curve that leaves each boundary frame with the known
    motion's own velocity there (its last step), the difference fading over tau frames: the cubic
    Hermite basis d (1 - d / L)^2 times exp(-d / tau), d the distance from that boundary frame, L the
    run's length + 1. Zero at both boundary frames; a boundary frame without a known neighbour outside
    the run keeps the line's slope there."""
    frames = clean.shape[1]
    index = torch.arange(frames, device=clean.device).expand_as(prev)
    gather = lambda i: clean.gather(1, i.clamp(0, frames - 1)[..., None].expand_as(clean))  # noqa: E731
    known_at = lambda i: is_known.gather(1, i.clamp(0, frames - 1)) & (i >= 0) & (i < frames)  # noqa: E731
    inner = ((prev >= 0) & (nxt < frames))[..., None]
    span = (nxt - prev).clamp(min=1).to(clean.dtype)[..., None]
    slope = (after - before) / span
    v_in = torch.where((known_at(prev - 1) & inner[..., 0])[..., None], before - gather(prev - 1), slope)
    v_out = torch.where((known_at(nxt + 1) & inner[..., 0])[..., None], gather(nxt + 1) - after, slope)

    def basis(d: torch.Tensor) -> torch.Tensor:
        d = d.to(clean.dtype)[..., None]
        return d * (1 - d / span) ** 2 * torch.exp(-d / tau)

    correction = (v_in - slope) * basis(index - prev) - (v_out - slope) * basis(nxt - index)
    return torch.where(inner, correction, torch.zeros_like(correction))


def sway_timesteps(steps: int, sway: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """Flow times t_0 = 0 < ... < t_steps = 1 with Sway scaling t = u + s (cos(pi/2 u) - 1 + u) (F5-TTS).

    s = -1 crowds the steps near t = 0, where the coarse shape of the motion is decided.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not SWAY_RANGE[0] <= sway <= SWAY_RANGE[1]:
        raise ValueError(f"sway must be in [{SWAY_RANGE[0]}, {SWAY_RANGE[1]:.4f}] (monotonic schedule), got {sway}")
    u = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    t = u + sway * (torch.cos(math.pi / 2 * u) - 1 + u)
    t[0], t[-1] = 0.0, 1.0
    return t.to(device=device, dtype=torch.float32)


@torch.no_grad()
def sample(
    model: FacEDiT,
    cond: torch.Tensor,
    infill_mask: torch.Tensor,
    speech: torch.Tensor,
    *,
    motion_mask: torch.Tensor | None = None,
    speech_mask: torch.Tensor | None = None,
    speech_frame_rate: float | None = None,
    speech_offset_s: float | None = None,
    steps: int = 32,
    sway: float = -1.0,
    guidance: float = 0.0,
    seed: int = 0,
    progress: ProgressFn | None = None,
    cancel: Callable[[], None] | None = None,
    attention: str = "auto",
    cache_speech: bool = True,
    compile: bool = False,
) -> torch.Tensor:
    """Euler ODE from noise to motion in NORMALISED space; returns (B, T, D) float32.

    cond (B, T, D): known motion (its values under infill_mask are ignored); infill_mask (B, T) True
    where motion is generated. Known frames of the result are cond's, exactly; during the integration
    they are held on their conditional path (see `network_input`), so the network sees at the seams
    exactly the states it was trained on. guidance > 0 mixes
    v = v_speech + guidance * (v_speech - v_no_speech) (needs a model trained with speech dropout).
    seed feeds a private CPU torch.Generator, so the result repeats exactly and on any device.
    progress(step, steps) runs after every step; cancel() runs before every step and stops the
    sampler by raising (for ComfyUI: its interrupt check).
    cache_speech: hold every block's speech keys/values for the whole sample (`FacEDiT.prepare`;
    2 * depth * B * N * dim values, ~540 MB per minute of speech at the paper size in float32, doubled
    by guidance); False recomputes them at every step instead, for the same result bit for bit.
    compile: evaluate the network through `torch.compile` (`facedit.accel.compiling`: a compilation on the
    first call and for every new length, an eager fallback with a logged reason where it cannot).
    """
    if cond.ndim != 3:
        raise ValueError(f"cond must be (B, T, D), got {tuple(cond.shape)}")
    batch, frames, dim = cond.shape
    if infill_mask.shape != (batch, frames):
        raise ValueError(f"infill_mask must be ({batch}, {frames}), got {tuple(infill_mask.shape)}")
    if not guidance >= 0:
        raise ValueError(f"guidance must be >= 0, got {guidance}")
    device = model.device
    times = sway_timesteps(steps, sway, device)
    infill_mask = infill_mask.to(device, torch.bool)
    known = cond.to(device, torch.float32).masked_fill(infill_mask[..., None], 0.0)
    speech = speech.to(device)
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    x0 = torch.randn(batch, frames, dim, generator=generator).to(device)
    x = x0
    config = _config(model)
    _, cond_net = network_input(
        x0, known, times[0], infill_mask, fill=config.context_fill, valid=motion_mask, fps=config.fps
    )

    # Speech, masks and timing are the same at every step: their share of the network (the speech
    # side of every cross-attention, RoPE tables, attention masks) is computed once here.
    kwargs: dict[str, Any] = dict(
        speech_frame_rate=speech_frame_rate, speech_offset_s=speech_offset_s, attention=attention
    )
    if guidance > 0:
        double = lambda a: None if a is None else torch.cat((a, a))  # noqa: E731
        cond_in, speech_in = double(cond_net), double(speech)
        kwargs.update(motion_mask=double(motion_mask), speech_mask=double(speech_mask))
        kwargs["drop_speech"] = torch.arange(2 * batch, device=device) >= batch
    else:
        cond_in, speech_in = cond_net, speech
        kwargs.update(motion_mask=motion_mask, speech_mask=speech_mask)
    was_training = model.training
    model.eval()
    try:
        with prepacked():  # the weights packed once for the row count of this sample
            cache = model.prepare(speech_in, frames, cache_speech=cache_speech, **kwargs)
            network = compiled(model) if compile else model
            for step in range(steps):
                if cancel is not None:
                    cancel()
                t = times[step]
                x_t, _ = network_input(x0, known, t, infill_mask, state=x)
                if guidance > 0:  # v is affine in the output at fixed x_t, t: mixing outputs mixes velocities
                    o_speech, o_blind = network(torch.cat((x_t, x_t)), cond_in, None, t, cache=cache).float().chunk(2)
                    out = o_speech + guidance * (o_speech - o_blind)
                else:
                    out = network(x_t, cond_in, None, t, cache=cache).float()
                v, _ = read_output(out, x_t, cond_net, t, config.prediction)
                x = x_t + (times[step + 1] - t) * v
                if progress is not None:
                    progress(step + 1, steps)
    finally:
        model.train(was_training)
    return torch.where(infill_mask[..., None], x, known)


def infill(
    model: FacEDiT,
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
    cache_speech: bool = True,
    compile: bool = False,
) -> torch.Tensor | np.ndarray:
    """Generate the masked frames of RAW motion from speech; the other frames come back bit-identical.

    motion: (T, D) or (B, T, D) raw LivePortrait motion at the model's fps (config.fps). Values under
    the mask are ignored and may be NaN (e.g. frames where no face was found).
    infill_mask: (T,) or (B, T) bool, True = generate. Editing masks inner spans; generation masks
    everything after a prompt.
    speech: (N, speech_dim) or (B, N, speech_dim) features, or an object with `.features`,
    `.frame_rate`, `.offset_s` (facedit.speech.SpeechFeatures); frame j stands at
    offset + j / rate seconds (defaults: the object's values, else the model config's).
    The network runs on the model's device and dtype; the result has motion's type, shape, device and
    dtype (numpy in, numpy out). cache_speech: see `sample` (False for very long motion on little memory).
    compile: see `sample`.
    """
    cfg = model.config
    if hasattr(speech, "features"):
        speech_frame_rate = _agree("speech_frame_rate", speech_frame_rate, getattr(speech, "frame_rate", None))
        speech_offset_s = _agree("speech_offset_s", speech_offset_s, getattr(speech, "offset_s", None))
        speech = speech.features
    is_numpy = isinstance(motion, np.ndarray)
    motion_t = torch.from_numpy(motion) if is_numpy else motion
    if not isinstance(motion_t, torch.Tensor):
        raise TypeError(f"motion must be a torch tensor or numpy array, got {type(motion).__name__}")
    if motion_t.ndim not in (2, 3) or motion_t.shape[-1] != cfg.motion_dim:
        raise ValueError(
            f"motion must be (T, {cfg.motion_dim}) or (B, T, {cfg.motion_dim}), got {tuple(motion_t.shape)}"
        )
    if not motion_t.is_floating_point():
        raise ValueError(f"motion must be floating point, got {motion_t.dtype}")
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
    mask = mask.to(batched.device)
    known_values = batched[~mask]
    if not torch.isfinite(known_values).all():
        raise ValueError("motion has NaN or infinite values in frames that are not masked for infilling")

    speech_t = torch.from_numpy(speech) if isinstance(speech, np.ndarray) else speech
    if not isinstance(speech_t, torch.Tensor):
        raise TypeError(f"speech must be a tensor, numpy array or SpeechFeatures, got {type(speech).__name__}")
    if speech_t.ndim == 2:
        speech_t = speech_t[None].expand(batch, *speech_t.shape)
    if speech_t.ndim != 3 or speech_t.shape[0] != batch or speech_t.shape[-1] != cfg.speech_dim:
        raise ValueError(
            f"speech must be (N, {cfg.speech_dim}) or ({batch}, N, {cfg.speech_dim}), got {tuple(speech_t.shape)}"
        )
    if not torch.isfinite(speech_t).all():
        raise ValueError("speech features contain NaN or infinite values")

    result = batched.clone()
    if not mask.any():
        return _like_input(result, single, is_numpy)
    device = model.device
    normalised = model.normalize(torch.nan_to_num(batched.to(device)))
    generated = sample(
        model, normalised, mask.to(device), speech_t.to(device), speech_frame_rate=speech_frame_rate,
        speech_offset_s=speech_offset_s, steps=steps, sway=sway, guidance=guidance, seed=seed, progress=progress,
        cancel=cancel, attention=attention, cache_speech=cache_speech, compile=compile,
    )  # fmt: skip
    raw = model.denormalize(generated).to(result.device, result.dtype)
    result[mask] = raw[mask]
    return _like_input(result, single, is_numpy)


def _agree(name: str, given: float | None, carried: float | None) -> float | None:
    if given is not None and carried is not None and float(given) != float(carried):
        raise ValueError(f"{name}={given} contradicts the speech features' own value {carried}")
    return carried if given is None else given


def _like_input(result: torch.Tensor, single: bool, is_numpy: bool) -> torch.Tensor | np.ndarray:
    result = result[0] if single else result
    return result.numpy() if is_numpy else result

"""A synthetic talking world for learning tests and benches: the mouth follows the speech, the pose does not.

Three smooth latent signals z(t) (about 80 ms correlation) drive the "speech" (16 features at 50 Hz: a
fixed random mix of z plus noise) and the mouth-like part of the motion (the first 45 dims at 25 fps:
tanh of z, 30 ms later, through a fixed random mix). The remaining 30 pose-like dims are a smooth random
drift the speech says nothing about: only the known frames around a span tell where the pose is going.

`train` is a short flow-matching run on random crops with random masked spans; `span_scores` infills one
masked span of held-out clips and scores it against speech-blind baselines and at its two seams.
Used by tests/test_learning.py and bench/bench_seams.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import FacEDiTConfig
from ..flow import cfm_loss, infill
from ..model import FacEDiT
from ..normalization import compute_motion_stats

LATENTS, SPEECH_DIM, MOTION_DIM, MOUTH = 3, 16, 75, 45
SPAN = slice(20, 44)  # 24 masked frames, about one second, in a clip of `Recipe.clip` frames
BLIND = ("line", "hold", "mean")  # the speech-blind baselines `span_scores` scores

Sampler = Callable[[FacEDiT, torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor]
"""(model, raw motion (T, D), infill mask (T,), speech (2T, SPEECH_DIM), seed) -> raw motion (T, D)."""


def _smooth(noise: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = int(3 * sigma)
    kernel = torch.exp(-0.5 * (torch.arange(-radius, radius + 1) / sigma) ** 2)
    smoothed = F.conv1d(noise.T[:, None], (kernel / kernel.sum())[None, None], padding=radius)[:, 0].T
    return smoothed / smoothed.std(dim=0, keepdim=True)


class World:
    """Paired (motion [F, 75] at 25 fps, speech [2F, 16] at 50 Hz) streams from one fixed mixing."""

    def __init__(self, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.speech_mix = torch.randn(LATENTS, SPEECH_DIM, generator=g)
        self.mouth_mix = torch.randn(LATENTS, MOUTH, generator=g) * 0.5
        self.pose_mix = torch.randn(2, MOTION_DIM - MOUTH, generator=g) * 0.3

    def stream(self, seconds: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        n = int(seconds * 50)
        z = _smooth(torch.randn(n, LATENTS, generator=g), sigma=4.0)  # 50 Hz
        speech = z @ self.speech_mix + 0.1 * torch.randn(n, SPEECH_DIM, generator=g)
        frames = n // 2
        lagged = z[(2 * torch.arange(frames) - 2).clamp(min=0)]  # motion frame i follows z at 0.04 i - 0.03 s
        pose = _smooth(torch.randn(frames, 2, generator=g), sigma=12.0) @ self.pose_mix
        return torch.cat((torch.tanh(lagged) @ self.mouth_mix, pose), dim=1), speech


def make_model(config: FacEDiTConfig, motion: torch.Tensor, seed: int = 0) -> FacEDiT:
    """A freshly initialised model (torch's global RNG seeded with `seed`) normalising with `motion`'s stats."""
    torch.manual_seed(seed)
    model = FacEDiT(config)
    model.set_motion_stats(*compute_motion_stats([motion]))
    return model


@dataclass(frozen=True)
class Recipe:
    """The training run of `train`: AdamW, linear warm-up then cosine decay, on random `clip`-frame crops
    with one random masked span each (a fifth to 70% of the clip, never the first frame)."""

    steps: int = 600
    batch: int = 16
    lr: float = 4e-3
    warmup: int = 20
    clip: int = 64
    lambda_ts: float = 0.2  # weight of the temporal-smoothness loss on x1_hat (paper eq. 5)
    seed: int = 1  # crops, masks, flow times and noise


def train(model: FacEDiT, motion: torch.Tensor, speech: torch.Tensor, recipe: Recipe = Recipe()) -> list[float]:
    """Train `model` in place on crops of one (motion, speech) stream; returns the loss of every step."""
    clip, steps = recipe.clip, recipe.steps
    if motion.shape[0] <= clip:
        raise ValueError(f"motion has {motion.shape[0]} frames; training crops need more than clip={clip}")
    g = torch.Generator().manual_seed(recipe.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: min(1.0, (i + 1) / recipe.warmup) * 0.5 * (1 + math.cos(math.pi * i / steps))
    )
    arange = torch.arange(clip)
    losses = []
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, motion.shape[0] - clip, (recipe.batch,), generator=g).tolist()
        x1 = model.normalize(torch.stack([motion[s : s + clip] for s in starts]))
        sp = torch.stack([speech[2 * s : 2 * s + 2 * clip] for s in starts])
        length = torch.randint(clip // 5, int(clip * 0.7), (recipe.batch,), generator=g)
        start = 1 + (torch.rand(recipe.batch, generator=g) * (clip - 1 - length)).long()
        mask = (arange >= start[:, None]) & (arange < (start + length)[:, None])
        loss = cfm_loss(model, x1, mask, None, sp, None, lambda_ts=recipe.lambda_ts, generator=g)["loss"]
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    return losses


def pinned_sampler(ode_steps: int) -> Sampler:
    """The pack's own sampler (`facedit.flow.infill`, known frames held on their path) with `ode_steps` steps."""

    def run(model: FacEDiT, truth: torch.Tensor, mask: torch.Tensor, speech: torch.Tensor, seed: int):
        return infill(model, truth, mask, speech, steps=ode_steps, seed=seed)

    return run


def span_scores(
    model: FacEDiT,
    held: tuple[torch.Tensor, torch.Tensor],
    sampler: Sampler,
    *,
    clips: int = 8,
    clip: int = 64,
    span: slice = SPAN,
) -> dict[str, float]:
    """Infill `span` of `clips` held-out clips (`clip` frames from frame 100 + 150 k) and score, averaged over clips:

    {model,line,hold,mean}_{mouth,pose}  span MSE in normalised units of the model and of the speech-blind
        guesses (linear interpolation of the boundary frames, holding the nearer one, the mean known frame)
    seam_in / seam_out   the result's frame-to-frame change (L2) into / out of the span over the clip's
        median true change (the mean of that ratio over clips); 1 is a seam as smooth as the clip itself
    truth_seam_in / truth_seam_out   the true motion's change at the same two seams over the same median
    {seam,truth_seam}_{in,out}_median   the same ratios' median over clips: the typical clip's seam
        against its own median change. A mean of step sizes sits above their median, so the mean
        ratios read above 1 even for the true motion; the medians read about 1 for it.
    seam_excess   mean | |x[k] - x[k-1]| - the true motion's | at both seams (L1 over dims, normalised):
        `facedit.training.validate`'s boundary_excess, the motion analogue of the paper's M_continuity
    """
    held_motion, held_speech = held
    if not 1 <= span.start < span.stop < clip:
        raise ValueError(f"span {span} must lie inside a {clip}-frame clip with a known frame on each side")
    if held_motion.shape[0] < 100 + 150 * (clips - 1) + clip:
        raise ValueError(f"held motion has {held_motion.shape[0]} frames, too few for {clips} clips")
    length = span.stop - span.start
    mask = torch.zeros(clip, dtype=torch.bool)
    mask[span] = True
    before, after = span.start - 1, span.stop
    weights = torch.linspace(0, 1, length + 2)[1:-1, None]
    nearer = torch.cat([torch.full((length // 2,), before), torch.full((length - length // 2,), after)])
    sums: dict[str, float] = {}
    seams, excess = torch.zeros(clips, 4), 0.0
    for k in range(clips):
        s = 100 + 150 * k
        truth = held_motion[s : s + clip]
        out = sampler(model, truth, mask, held_speech[2 * s : 2 * s + 2 * clip], k)
        if not torch.equal(out[~mask], truth[~mask]):
            raise RuntimeError("the sampler changed known frames: they must come back bit-identical")
        z_truth, z_out = model.normalize(truth), model.normalize(out)
        guesses = {
            "model": z_out[mask],
            "line": z_truth[before] + (z_truth[after] - z_truth[before]) * weights,
            "hold": z_truth[nearer],
            "mean": z_truth[~mask].mean(0).expand(length, -1),
        }
        for name, guess in guesses.items():
            err = (guess - z_truth[mask]).square()
            sums[f"{name}_mouth"] = sums.get(f"{name}_mouth", 0.0) + err[:, :MOUTH].mean().item() / clips
            sums[f"{name}_pose"] = sums.get(f"{name}_pose", 0.0) + err[:, MOUTH:].mean().item() / clips
        steps = (z_out[1:] - z_out[:-1]).norm(dim=-1)
        own = (z_truth[1:] - z_truth[:-1]).norm(dim=-1)
        seams[k] = torch.stack([steps[before], steps[after - 1], own[before], own[after - 1]]) / own.median()
        at = [before, after - 1]  # transitions k - 1 -> k at both seams, indexed by k - 1
        jump = (z_out[1:] - z_out[:-1]).abs().mean(-1)[at]
        true_jump = (z_truth[1:] - z_truth[:-1]).abs().mean(-1)[at]
        excess += (jump - true_jump).abs().mean().item() / clips
    names = ("seam_in", "seam_out", "truth_seam_in", "truth_seam_out")
    for name, mean, median in zip(names, seams.mean(0).tolist(), seams.quantile(0.5, dim=0).tolist(), strict=True):
        sums[name], sums[f"{name}_median"] = mean, median
    sums["seam_excess"] = excess
    return sums

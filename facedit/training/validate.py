"""Validation on held-out clips: infill masked spans with the sampler and score the motion.

Two tasks per clip (its first ``max_frames`` frames): "edit" masks the middle 30% (frames
[0.35 L, 0.65 L)), "generate" masks the second half. Scores, in normalised motion units (per-dimension
z-scores, so every dimension counts alike), averaged over clips:

    {task}_l1               mean |generated - true| over the generated frames
    {task}_boundary_jump    mean |x[k] - x[k-1]| of the result at the transitions between known and
                            generated frames
    {task}_boundary_excess  mean | that jump - the true motion's jump at the same transition |
                            (0 when the joins move exactly as the real motion did; the motion analogue
                            of the paper's M_continuity)
    {task}_seam_ratio       the result's frame-to-frame change (L2 over dims) at each transition, over the
                            clip's own median change; 1 is a seam as smooth as the clip itself
    {task}_context_use      how far the generated frames move (mean over them) when every known frame is
                            shifted by +1 in every dimension, same seed: about 1 when the model continues
                            from the context, about 0 when it ignores it (then the seams jump)
    true_step               mean |x[k] - x[k-1]| of the true motion, the scale to read the jumps against
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..data import ShardDataset, collate
from ..flow import sample
from ..model import FacEDiT

TASKS = {"edit": (0.35, 0.65), "generate": (0.5, 1.0)}


def task_mask(length: int, span: tuple[float, float]) -> np.ndarray:
    """Frames [round(a L), round(b L)) masked, at least one masked and (before it) one known frame."""
    start = min(max(1, round(span[0] * length)), length - 1)
    end = min(max(start + 1, round(span[1] * length)), length)
    mask = np.zeros(length, dtype=bool)
    mask[start:end] = True
    return mask


@torch.no_grad()
def validate(
    model: FacEDiT,
    dataset: ShardDataset,
    clips: Sequence[int],
    *,
    max_frames: int,
    ode_steps: int = 16,
    seed: int = 0,
) -> dict[str, float]:
    """Scores (see the module docstring) of ``model`` on ``clips`` (indices into ``dataset``)."""
    if not clips:
        return {}
    results: dict[str, float] = {}
    true_steps: list[float] = []
    for name, span in TASKS.items():
        items = []
        for clip in clips:
            length = min(dataset.infos[clip].frames, max_frames)
            items.append(dataset.item(clip, 0, length, task_mask(length, span)))
        batch = collate(items)
        device = model.device
        x1 = model.normalize(batch["motion"].to(device))
        infill, valid = batch["infill_mask"].to(device), batch["motion_mask"].to(device)
        speech, speech_mask = batch["speech"].to(device), batch["speech_mask"].to(device)
        given = dict(
            motion_mask=valid, speech_mask=speech_mask, steps=ode_steps, seed=seed,
            speech_frame_rate=batch["speech_frame_rate"], speech_offset_s=batch["speech_offset_s"],
        )  # fmt: skip
        out = sample(model, x1, infill, speech, **given)
        moved = (sample(model, x1 + 1.0, infill, speech, **given) - out).mean(-1)  # (B, T)
        generated = infill & valid
        results[f"{name}_context_use"] = float((moved * generated).sum() / generated.sum().clamp(min=1))
        error = (out - x1).abs().mean(-1)  # (B, T)
        results[f"{name}_l1"] = float((error * infill).sum() / infill.sum())
        pairs = valid[:, 1:] & valid[:, :-1]
        edges = pairs & (infill[:, 1:] != infill[:, :-1])
        jump = (out[:, 1:] - out[:, :-1]).abs().mean(-1)
        true_jump = (x1[:, 1:] - x1[:, :-1]).abs().mean(-1)
        results[f"{name}_boundary_jump"] = float(jump[edges].mean())
        results[f"{name}_boundary_excess"] = float((jump - true_jump).abs()[edges].mean())
        step = (out[:, 1:] - out[:, :-1]).norm(dim=-1)
        true_norm = (x1[:, 1:] - x1[:, :-1]).norm(dim=-1).masked_fill(~pairs, float("nan"))
        median = true_norm.nanmedian(dim=1).values[:, None]  # (B, 1)
        results[f"{name}_seam_ratio"] = float((step / median)[edges].mean())
        true_steps.append(float(true_jump[pairs].mean()))
    results["true_step"] = true_steps[0]
    return results

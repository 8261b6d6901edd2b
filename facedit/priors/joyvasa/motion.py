"""JoyVASA's 70-d normalised motion <-> FacEDiT's 75-d motion, with the motion template's statistics.

JoyVASA frame (as its training data): [exp 63 (z-scored by mean/std), scale 1, t 3, pitch 1, yaw 1, roll 1 (each
min-max scaled to [0, 1] over the training set)], angles in degrees. FacEDiT frame: [exp 63, R 9, t 3] with R in
LivePortrait's convention (``facedit.liveportrait.keypoints.rotation_matrix``). Scale is not part of FacEDiT's
motion (it stays with the source frame), so FacEDiT -> JoyVASA takes it from the caller or the template's mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...liveportrait.keypoints import rotation_matrix, rotation_to_angles
from ...motion import EXP_DIM, MOTION_DIM

EPS = 1e-9
"""JoyVASA's training normalisation adds this to every denominator."""
JOYVASA_DIM = EXP_DIM + 1 + 3 + 3
SCALE = EXP_DIM
"""Index of the scale in JoyVASA's vector (the one entry FacEDiT's motion does not determine)."""


@dataclass(frozen=True)
class MotionTemplate:
    """Per-dimension offset and span: normalised = (raw - offset) / span, raw = normalised * span + offset."""

    offset: np.ndarray
    span: np.ndarray
    mean_scale: float

    @classmethod
    def from_stats(cls, stats: dict[str, np.ndarray]) -> MotionTemplate:
        def minmax(name: str) -> tuple[np.ndarray, np.ndarray]:
            lo, hi = stats[f"min_{name}"], stats[f"max_{name}"]
            return lo, hi - lo + EPS

        parts = [(stats["mean_exp"], stats["std_exp"] + EPS)] + [
            minmax(n) for n in ("scale", "t", "pitch", "yaw", "roll")
        ]
        offset = np.concatenate([p[0] for p in parts]).astype(np.float64)
        span = np.concatenate([p[1] for p in parts]).astype(np.float64)
        if offset.shape != (JOYVASA_DIM,) or not (span > 0).all():
            raise ValueError(f"motion template: expected {JOYVASA_DIM} dimensions with positive spans")
        return cls(offset, span, float(stats["mean_scale"][0]))


def to_joyvasa(motion: torch.Tensor, template: MotionTemplate, scale: torch.Tensor | None = None) -> torch.Tensor:
    """FacEDiT motion (..., 75) -> normalised JoyVASA motion (..., 70), float32.

    ``scale`` (...,) per frame; None uses the template's mean scale (a neutral value the caller discards again).
    """
    if motion.shape[-1] != MOTION_DIM:
        raise ValueError(f"motion must end in {MOTION_DIM}, got {tuple(motion.shape)}")
    lead = motion.shape[:-1]
    flat = motion.reshape(-1, MOTION_DIM).double()
    angles = rotation_to_angles(flat[:, EXP_DIM : EXP_DIM + 9].reshape(-1, 3, 3))  # (N, 3) degrees
    if scale is None:
        s = torch.full((flat.shape[0], 1), template.mean_scale, dtype=torch.float64)
    else:
        s = torch.as_tensor(scale, dtype=torch.float64).reshape(-1, 1)
    raw = torch.cat([flat[:, :EXP_DIM], s, flat[:, EXP_DIM + 9 :], angles], dim=1)
    offset, span = torch.from_numpy(template.offset), torch.from_numpy(template.span)
    return ((raw - offset) / span).float().reshape(*lead, JOYVASA_DIM)


def from_joyvasa(normalised: torch.Tensor, template: MotionTemplate) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised JoyVASA motion (..., 70) -> (FacEDiT motion (..., 75) float32, scale (...,) float32)."""
    if normalised.shape[-1] != JOYVASA_DIM:
        raise ValueError(f"JoyVASA motion must end in {JOYVASA_DIM}, got {tuple(normalised.shape)}")
    lead = normalised.shape[:-1]
    flat = normalised.reshape(-1, JOYVASA_DIM).double()
    raw = flat * torch.from_numpy(template.span) + torch.from_numpy(template.offset)
    rot = rotation_matrix(raw[:, 67], raw[:, 68], raw[:, 69]).reshape(-1, 9)
    motion = torch.cat([raw[:, :EXP_DIM], rot, raw[:, EXP_DIM + 1 : EXP_DIM + 4]], dim=1)
    return motion.float().reshape(*lead, MOTION_DIM), raw[:, SCALE].float().reshape(lead)

"""Batched motion extraction for a clip of 256x256 face crops."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..motion import MOTION_DIM, motion_to_keypoints, pack_motion
from .frames import as_torch_frames
from .model import LivePortrait

INPUT_SIZE = 256


@dataclass
class MotionTrack:
    """Per frame: the 75-d motion, and what rendering needs from the frame as a source (float32, CPU).

    motion (T, 75): [exp 63, R 9, t 3]; kp_canonical (T, 21, 3); scale (T,); angles (T, 3) pitch/yaw/roll in
    degrees (for inspection; R is the authority).
    """

    motion: torch.Tensor
    kp_canonical: torch.Tensor
    scale: torch.Tensor
    angles: torch.Tensor

    def __post_init__(self) -> None:
        t = self.motion.shape[0]
        if tuple(self.motion.shape) != (t, MOTION_DIM):
            raise ValueError(f"motion must be (T, {MOTION_DIM}), got {tuple(self.motion.shape)}")
        for name, shape in (("kp_canonical", (t, 21, 3)), ("scale", (t,)), ("angles", (t, 3))):
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"{name} must be {shape}, got {tuple(getattr(self, name).shape)}")

    def __len__(self) -> int:
        return self.motion.shape[0]

    def source_keypoints(self) -> torch.Tensor:
        """Each frame's own transformed keypoints x_s (T, 21, 3)."""
        return motion_to_keypoints(self.motion, self.kp_canonical, self.scale)

    def select(self, index: Sequence[int] | torch.Tensor) -> MotionTrack:
        idx = torch.as_tensor(index, dtype=torch.long)
        return MotionTrack(self.motion[idx], self.kp_canonical[idx], self.scale[idx], self.angles[idx])

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {"motion": self.motion, "kp_canonical": self.kp_canonical, "scale": self.scale, "angles": self.angles}

    @classmethod
    def from_dict(cls, d: dict[str, torch.Tensor]) -> MotionTrack:
        keys = ("motion", "kp_canonical", "scale", "angles")
        return cls(**{k: torch.as_tensor(d[k], dtype=torch.float32) for k in keys})


def extract_motion(
    lp: LivePortrait,
    crops,
    *,
    chunk_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> MotionTrack:
    """Motion extractor over crops (T, 256, 256, 3) float in [0, 1] (numpy or torch), ``chunk_size`` at a time."""
    frames = as_torch_frames(crops, "crops", size=INPUT_SIZE)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    n = frames.shape[0]
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("motion", "kp_canonical", "scale", "angles")}
    for start in range(0, n, chunk_size):
        x = frames[start : start + chunk_size].permute(0, 3, 1, 2)
        out = {k: v.cpu() for k, v in lp.motion(x).items()}
        parts["motion"].append(pack_motion(out["exp"], out["rot"], out["t"]))
        parts["kp_canonical"].append(out["kp"])
        parts["scale"].append(out["scale"])
        parts["angles"].append(torch.stack([out["pitch"], out["yaw"], out["roll"]], dim=1))
        if progress is not None:
            progress(min(start + chunk_size, n), n)
    return MotionTrack(**{k: torch.cat(v) for k, v in parts.items()})

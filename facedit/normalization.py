"""Per-dimension motion normalisation: statistics from training data, kept with the model.

The network works on normalised motion (zero mean, unit variance per dimension); users and the
pipeline work in raw LivePortrait units. The statistics live in the model as float32 buffers (and so
in its checkpoint) and stay float32 when the model is cast to half precision, because rounding them
would shift every generated frame.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

MIN_STD = 1e-4  # a dimension that barely moves in the data is scaled by at most 1 / MIN_STD


def compute_motion_stats(
    clips: Iterable[np.ndarray | torch.Tensor], min_std: float = MIN_STD
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per dimension over every frame of every clip ([T, D] arrays).

    Accumulates in float64 with Chan's parallel update, so long datasets neither overflow nor lose
    precision. Standard deviations below `min_std` are raised to it (a constant dimension would
    otherwise divide by zero) and a warning names those dimensions.
    """
    count = 0
    mean: np.ndarray | None = None
    m2: np.ndarray | None = None
    for index, clip in enumerate(clips):
        array = clip.detach().cpu().numpy() if isinstance(clip, torch.Tensor) else np.asarray(clip)
        if array.ndim != 2:
            raise ValueError(f"motion clip {index} must be [T, D], got shape {tuple(array.shape)}")
        if mean is not None and array.shape[1] != mean.shape[0]:
            raise ValueError(f"motion clip {index} has {array.shape[1]} dims, earlier clips had {mean.shape[0]}")
        if array.shape[0] == 0:
            continue
        array = array.astype(np.float64)
        if not np.isfinite(array).all():
            raise ValueError(f"motion clip {index} contains NaN or infinite values")
        n = array.shape[0]
        clip_mean = array.mean(axis=0)
        clip_m2 = ((array - clip_mean) ** 2).sum(axis=0)
        if mean is None:
            count, mean, m2 = n, clip_mean, clip_m2
            continue
        total = count + n
        delta = clip_mean - mean
        mean = mean + delta * (n / total)
        m2 = m2 + clip_m2 + delta**2 * (count * n / total)
        count = total
    if mean is None or count < 2:
        raise ValueError(f"compute_motion_stats needs at least 2 frames in total, got {count}")
    std = np.sqrt(m2 / (count - 1))
    low = np.flatnonzero(std < min_std)
    if low.size:
        logger.warning("motion dims %s vary less than %g; their std is raised to %g", low.tolist(), min_std, min_std)
    return mean.astype(np.float32), np.maximum(std, min_std).astype(np.float32)


class MotionNormalizer(nn.Module):
    """Holds the motion mean/std as float32 buffers and maps raw <-> normalised motion."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float32))
        self.register_buffer("std", torch.ones(dim, dtype=torch.float32))

    def _apply(self, fn, recurse=True):
        # Follow device moves but never dtype casts: .half() / .to(bfloat16) would round the statistics.
        for name, buffer in self._buffers.items():
            if buffer is not None:
                self._buffers[name] = buffer.to(device=fn(buffer).device, dtype=torch.float32)
        return self

    def set_stats(self, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor) -> None:
        dim = self.mean.shape[0]
        mean_t = torch.as_tensor(np.asarray(mean, dtype=np.float32) if not isinstance(mean, torch.Tensor) else mean)
        std_t = torch.as_tensor(np.asarray(std, dtype=np.float32) if not isinstance(std, torch.Tensor) else std)
        if mean_t.shape != (dim,) or std_t.shape != (dim,):
            raise ValueError(
                f"motion stats must be [{dim}] each, got mean {tuple(mean_t.shape)} and std {tuple(std_t.shape)}"
            )
        if not (torch.isfinite(mean_t).all() and torch.isfinite(std_t).all()) or (std_t <= 0).any():
            raise ValueError("motion stats must be finite with std > 0")
        with torch.no_grad():
            self.mean.copy_(mean_t.float())
            self.std.copy_(std_t.float())

    def normalize(self, motion: torch.Tensor) -> torch.Tensor:
        """Raw motion [..., D] -> float32 normalised motion."""
        return (motion.float() - self.mean.to(motion.device)) / self.std.to(motion.device)

    def denormalize(self, motion: torch.Tensor) -> torch.Tensor:
        """Normalised motion [..., D] -> float32 raw motion."""
        return motion.float() * self.std.to(motion.device) + self.mean.to(motion.device)

"""Validation and conversion of IMAGE-style frame stacks: (T, H, W, 3) float in [0, 1], numpy or torch."""

from __future__ import annotations

import numpy as np
import torch


def as_numpy_frames(frames, name: str = "frames") -> np.ndarray:
    """(T, H, W, 3) float32 numpy view/copy of numpy or torch input; clear errors for anything else."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().float().numpy()
    if not isinstance(frames, np.ndarray):
        raise TypeError(f"{name} must be a numpy array or torch tensor (T, H, W, 3), got {type(frames).__name__}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (T, H, W, 3), got {frames.shape}")
    if frames.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 frames)")
    if not np.issubdtype(frames.dtype, np.floating):
        raise ValueError(f"{name} must be float in [0, 1], got dtype {frames.dtype}")
    return frames.astype(np.float32, copy=False)


def as_torch_frames(frames, name: str = "frames", size: int | None = None) -> torch.Tensor:
    """(T, H, W, 3) float32 torch tensor on CPU; with ``size``, H and W must both equal it."""
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(np.ascontiguousarray(frames))
    if not isinstance(frames, torch.Tensor):
        raise TypeError(f"{name} must be a numpy array or torch tensor (T, H, W, 3), got {type(frames).__name__}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (T, H, W, 3), got {tuple(frames.shape)}")
    if frames.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 frames)")
    if not frames.is_floating_point():
        raise ValueError(f"{name} must be float in [0, 1], got dtype {frames.dtype}")
    if size is not None and tuple(frames.shape[1:3]) != (size, size):
        raise ValueError(
            f"{name} must be {size}x{size} face crops (use crop_faces(..., size={size})), "
            f"got {tuple(frames.shape[1:3])}"
        )
    return frames.float()


def to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def as_numpy_image(image, name: str = "image") -> np.ndarray:
    """One (H, W, 3) float32 image from numpy or torch."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().float().numpy()
    if not isinstance(image, np.ndarray) or image.ndim != 3:
        raise ValueError(f"{name} must be one image (H, W, 3), got {getattr(image, 'shape', type(image).__name__)}")
    return as_numpy_frames(image[None], name)[0]

"""Validation and conversion of IMAGE-style frame stacks: (T, H, W, 3) float in [0, 1], numpy or torch."""

from __future__ import annotations

from collections.abc import Callable

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


def frame_reader(frames, name: str = "frames") -> tuple[int, tuple[int, int], Callable[[int], np.ndarray]]:
    """(count, (H, W), frame(i) -> (H, W, 3) float32) of a stack (T, H, W, 3), numpy or torch, or of a lazy
    sequence of frames (``len`` and indexing, e.g. a video reader): those are read one at a time when asked
    (frame 0 at once, for the size), so a whole clip is never held."""
    if isinstance(frames, np.ndarray | torch.Tensor):
        stack = as_numpy_frames(frames, name)
        return stack.shape[0], (stack.shape[1], stack.shape[2]), stack.__getitem__
    if not (hasattr(frames, "__len__") and hasattr(frames, "__getitem__")):
        raise TypeError(f"{name} must be frames (T, H, W, 3) or a sequence of frames, got {type(frames).__name__}")
    count = len(frames)
    if count == 0:
        raise ValueError(f"{name} is empty (0 frames)")
    size = as_numpy_image(frames[0], f"{name} frame 0").shape[:2]

    def frame(i: int) -> np.ndarray:
        image = as_numpy_image(frames[i], f"{name} frame {i}")
        if image.shape[:2] != size:
            raise ValueError(f"{name} frame {i} is {image.shape[:2]}, frame 0 is {size}: every frame needs one size")
        return image

    return count, size, frame


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

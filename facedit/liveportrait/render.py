"""Rendering: warp each source frame's appearance to driving keypoints and decode to 512x512, frame by frame on a
CPU (progress and cancel per frame), chunk by chunk on a GPU.

Appearance features (about 8 MB a frame at official size) are computed per chunk and never kept for the clip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from ..motion import MOTION_DIM, motion_to_keypoints
from .extract import INPUT_SIZE, MotionTrack
from .frames import as_torch_frames
from .model import LivePortrait


def _source_index(source_index, n_source: int, n_target: int) -> torch.Tensor:
    if source_index is None:
        if n_source == n_target:
            return torch.arange(n_target)
        if n_source == 1:
            return torch.zeros(n_target, dtype=torch.long)
        raise ValueError(
            f"source_crops has {n_source} frames and driving_motion {n_target}: pass source_index "
            "(one source frame per driving frame) or a single source frame"
        )
    idx = torch.as_tensor(np.asarray(source_index), dtype=torch.long).reshape(-1)
    if idx.shape[0] != n_target:
        raise ValueError(f"source_index has {idx.shape[0]} entries, driving_motion has {n_target} frames")
    if n_target and (idx.min() < 0 or idx.max() >= n_source):
        raise ValueError(f"source_index must lie in [0, {n_source}), got range [{int(idx.min())}, {int(idx.max())}]")
    return idx


def iter_render(
    lp: LivePortrait,
    source_crops,
    source_motion: MotionTrack,
    driving_motion,
    *,
    source_index: Sequence[int] | None = None,
    chunk_size: int = 4,
    stitching: bool = True,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], None] | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (first frame index, frames (B, 512, 512, 3) float32 CPU in [0, 1]) as they are decoded.

    source_crops (S, 256, 256, 3) with their MotionTrack (S frames); driving_motion (T, 75). Frame i is rendered
    from source frame ``source_index[i]`` (default: i when S == T, 0 when S == 1) with driving keypoints built
    from the driving motion and that source frame's canonical keypoints and scale.

    ``chunk_size`` frames share one appearance pass and, on a GPU, one warp + decode batch. On a CPU, where a
    batch is no faster per frame, the frames of a chunk are warped and decoded one at a time, so ``progress``
    and ``cancel`` (called before each decode; it raises to stop) come per frame: a frame at official size
    takes seconds there.
    """
    crops = as_torch_frames(source_crops, "source_crops", size=INPUT_SIZE)
    if len(source_motion) != crops.shape[0]:
        raise ValueError(f"source_motion has {len(source_motion)} frames, source_crops {crops.shape[0]}")
    if not isinstance(driving_motion, torch.Tensor):
        driving_motion = torch.as_tensor(np.asarray(driving_motion))
    driving = driving_motion.float().cpu()
    if driving.ndim != 2 or driving.shape[1] != MOTION_DIM:
        raise ValueError(f"driving_motion must be (T, {MOTION_DIM}), got {tuple(driving.shape)}")
    if not torch.isfinite(driving).all():
        raise ValueError("driving_motion contains NaN or infinite values")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if stitching and lp.stitching is None:
        raise ValueError(
            "stitching=True needs the stitching_retargeting_module weights; load them or pass stitching=False"
        )
    n = driving.shape[0]
    index = _source_index(source_index, crops.shape[0], n)
    kp_source_all = source_motion.source_keypoints()
    batch = 1 if lp.device.type == "cpu" else chunk_size
    for start in range(0, n, chunk_size):
        if cancel is not None:
            cancel()
        idx = index[start : start + chunk_size]
        unique, inverse = torch.unique(idx, return_inverse=True)
        feats = lp.appearance(crops[unique].permute(0, 3, 1, 2))[inverse]  # (B, 32, 16, 64, 64)
        kp_source = kp_source_all[idx]
        kp_driving = motion_to_keypoints(
            driving[start : start + chunk_size], source_motion.kp_canonical[idx], source_motion.scale[idx]
        )
        if stitching:
            kp_driving = lp.stitch(kp_source, kp_driving).float().cpu()
        for first in range(0, len(idx), batch):
            if cancel is not None and first:
                cancel()
            part = slice(first, first + batch)
            images = lp.warp_decode(feats[part], kp_source[part], kp_driving[part])
            yield start + first, images.permute(0, 2, 3, 1).cpu()
            if progress is not None:
                progress(start + first + images.shape[0], n)
        del feats


def render(
    lp: LivePortrait,
    source_crops,
    source_motion: MotionTrack,
    driving_motion,
    *,
    source_index: Sequence[int] | None = None,
    chunk_size: int = 4,
    stitching: bool = True,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], None] | None = None,
) -> torch.Tensor:
    """All frames of :func:`iter_render` in one (T, 512, 512, 3) float32 tensor."""
    chunks = [
        frames
        for _, frames in iter_render(
            lp,
            source_crops,
            source_motion,
            driving_motion,
            source_index=source_index,
            chunk_size=chunk_size,
            stitching=stitching,
            progress=progress,
            cancel=cancel,
        )
    ]
    return torch.cat(chunks) if chunks else torch.zeros(0, 512, 512, 3)

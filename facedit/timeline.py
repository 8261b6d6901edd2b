"""Motion timelines between the video's fps and the model's fps, and the windows of work around edits.

The model works at the fps it was trained at (``FacEDiTConfig.fps``); a clip may be 24, 29.97, 30 or 60 fps.
Motion is carried to the model's grid by interpolation and brought back only for the frames that are
generated, so audio and video never drift apart and known frames are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .motion import project_to_rotation

_ROT = slice(63, 72)


def mask_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open runs [start, end) where ``mask`` is True."""
    padded = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


@dataclass(frozen=True)
class Window:
    """Frames [start, end) of the video timeline that one infill call sees, and the masked runs inside it."""

    start: int
    end: int
    runs: tuple[tuple[int, int], ...]


def work_windows(infill_mask: np.ndarray, context_frames: int) -> list[Window]:
    """Group masked runs into windows with ``context_frames`` of known motion on each side.

    Runs whose context would overlap share a window, so each window is one consistent infill problem and
    frames far from every edit are never extracted nor sampled.
    """
    if context_frames < 0:
        raise ValueError(f"context_frames must be >= 0, got {context_frames}")
    total = len(infill_mask)
    windows: list[Window] = []
    for run in mask_runs(infill_mask):
        start, end = max(0, run[0] - context_frames), min(total, run[1] + context_frames)
        if windows and start <= windows[-1].end:
            last = windows.pop()
            windows.append(Window(last.start, max(last.end, end), (*last.runs, run)))
        else:
            windows.append(Window(start, end, (run,)))
    return windows


def orthonormalize_rotations(motion: np.ndarray) -> np.ndarray:
    """Project the 3x3 rotation block of every frame back onto SO(3) (after interpolation)."""
    out = np.array(motion, dtype=np.float64)
    out[:, _ROT] = project_to_rotation(out[:, _ROT].reshape(-1, 3, 3)).reshape(-1, 9)
    return out


def interpolate_motion(motion: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Motion (T, 75) sampled at fractional frame positions (K,); integer positions return rows exactly."""
    motion = np.asarray(motion, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.float64)
    if positions.size and (positions.min() < -1e-9 or positions.max() > len(motion) - 1 + 1e-9):
        raise ValueError(f"positions must lie in [0, {len(motion) - 1}], got {positions.min()}..{positions.max()}")
    positions = np.clip(positions, 0, len(motion) - 1)
    lo = np.floor(positions).astype(np.int64)
    hi = np.minimum(lo + 1, len(motion) - 1)
    frac = (positions - lo)[:, None]
    out = motion[lo] * (1 - frac) + motion[hi] * frac
    exact = frac[:, 0] == 0
    out[exact] = motion[lo[exact]]
    inexact = ~exact
    if inexact.any():
        out[inexact] = orthonormalize_rotations(out[inexact])
    return out


@dataclass(frozen=True)
class ModelGrid:
    """The model-fps grid that covers video frames [0, n) of a window.

    ``positions[k]`` is model frame k expressed in video frames of the window; ``mask[k]`` is True where the
    model generates. ``identity`` means both grids coincide (same fps), so no interpolation happens at all.
    The last model frame may overhang the window's last video frame by less than one model frame, so that
    every video frame lies between two model frames; a known overhanging frame holds the last frame's motion.
    """

    positions: np.ndarray
    mask: np.ndarray
    identity: bool


def model_grid(video_mask: np.ndarray, video_fps: float, model_fps: float) -> ModelGrid:
    """Carry a window's infill mask (n,) at ``video_fps`` to the model's grid.

    A model frame is generated when it falls strictly between the known video frames that border a masked run,
    i.e. anywhere the video has no known motion to interpolate from.
    """
    video_mask = np.asarray(video_mask, dtype=bool)
    n = len(video_mask)
    if video_fps <= 0 or model_fps <= 0:
        raise ValueError(f"fps must be positive, got video {video_fps}, model {model_fps}")
    if abs(video_fps - model_fps) < 1e-9:
        return ModelGrid(np.arange(n, dtype=np.float64), video_mask.copy(), True)
    count = int(np.ceil((n - 1) * model_fps / video_fps - 1e-9)) + 1
    positions = np.arange(count, dtype=np.float64) * (video_fps / model_fps)
    mask = np.zeros(count, dtype=bool)
    for start, end in mask_runs(video_mask):
        mask |= (positions > start - 1) & (positions < end)
    return ModelGrid(positions, mask, False)


def to_model_grid(motion: np.ndarray, grid: ModelGrid) -> np.ndarray:
    """Known motion (n, 75) of a window on the model grid; masked grid frames are zero (they are generated)."""
    if grid.identity:
        out = np.array(motion, dtype=np.float64)
        out[grid.mask] = 0.0
        return out
    out = np.zeros((len(grid.positions), motion.shape[1]), dtype=np.float64)
    known = ~grid.mask
    out[known] = interpolate_motion(motion, np.minimum(grid.positions[known], len(motion) - 1))
    return out


def from_model_grid(generated: np.ndarray, grid: ModelGrid, video_mask: np.ndarray) -> np.ndarray:
    """Generated motion (K, 75) on the model grid, read at the masked video frames (m, 75), in mask order."""
    frames = np.flatnonzero(video_mask)
    if grid.identity:
        return np.asarray(generated, dtype=np.float64)[frames]
    step = grid.positions[1] - grid.positions[0] if len(grid.positions) > 1 else 1.0
    return interpolate_motion(generated, frames / step)

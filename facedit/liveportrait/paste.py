"""Feathered paste-back of rendered crops into full-resolution frames.

Only pixels under the (warped) mask change; everything else in the frame is returned bit for bit. The work is
done inside the crop's bounding box, so the cost does not grow with the frame resolution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

from .crop import CropTrack
from .frames import as_numpy_frames, as_numpy_image

# The face sits below the crop centre (LivePortrait's vy_ratio -0.125 moves the crop up): an ellipse over the
# head, in fractions of the crop side.
MASK_CENTER = (0.5, 0.56)
MASK_RADIUS = (0.36, 0.42)
DEFAULT_FEATHER = 0.08


def face_mask(
    size: int = 512,
    *,
    center: tuple[float, float] = MASK_CENTER,
    radius: tuple[float, float] = MASK_RADIUS,
    feather: float = DEFAULT_FEATHER,
) -> np.ndarray:
    """Soft elliptical mask (size, size) float32 in [0, 1] in crop space; ``feather`` is the width of the soft
    edge as a fraction of the crop side (0 = hard edge)."""
    if size < 2:
        raise ValueError(f"mask size must be >= 2, got {size}")
    if feather < 0 or min(radius) <= 0:
        raise ValueError(f"feather must be >= 0 and radii > 0, got feather={feather}, radius={radius}")
    coords = (np.arange(size) + 0.5) / size
    x, y = np.meshgrid(coords, coords)
    r = np.sqrt(((x - center[0]) / radius[0]) ** 2 + ((y - center[1]) / radius[1]) ** 2)
    if feather == 0:
        return (r <= 1).astype(np.float32)
    half = feather / (2 * min(radius))
    u = np.clip((1 + half - r) / (2 * half), 0.0, 1.0)
    return (u * u * (3 - 2 * u)).astype(np.float32)


def _roi(track: CropTrack, index: int) -> tuple[int, int, int, int] | None:
    h, w = track.frame_size
    x0, y0, x1, y1 = track.crop_box(index)
    x0, y0 = max(0, int(np.floor(x0)) - 1), max(0, int(np.floor(y0)) - 1)
    x1, y1 = min(w, int(np.ceil(x1)) + 1), min(h, int(np.ceil(y1)) + 1)
    return None if x1 <= x0 or y1 <= y0 else (x0, y0, x1, y1)


def _warp_to_roi(image: np.ndarray, track: CropTrack, index: int, roi: tuple[int, int, int, int]) -> np.ndarray:
    """Crop-space image -> the frame's ROI (pixels sampled through the frame -> crop affine)."""
    x0, y0, x1, y1 = roi
    m = track.matrix(index, image.shape[0]).copy()
    m[:, 2] += m[:, :2] @ np.array([x0, y0], dtype=np.float64)
    return cv2.warpAffine(
        image, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT
    )


def _crop_mask(mask: np.ndarray | None, size: int, feather: float | None = None) -> np.ndarray:
    if mask is None:
        return face_mask(size, feather=DEFAULT_FEATHER if feather is None else feather)
    if feather is not None:
        raise ValueError("pass either a mask or feather (the feather of the default mask), not both")
    mask = np.asarray(mask, dtype=np.float32)
    if mask.shape != (size, size):
        raise ValueError(f"mask must be ({size}, {size}) like the rendered crop, got {mask.shape}")
    return mask


def frame_face_mask(
    track: CropTrack, index: int, *, mask: np.ndarray | None = None, feather: float | None = None, size: int = 512
) -> np.ndarray:
    """The paste-back mask of frame ``index`` in frame coordinates (H, W) float32: the region that changes."""
    crop_mask = _crop_mask(mask, size if mask is None else np.asarray(mask).shape[0], feather)
    out = np.zeros(track.frame_size, np.float32)
    roi = _roi(track, index)
    if roi is not None:
        x0, y0, x1, y1 = roi
        out[y0:y1, x0:x1] = _warp_to_roi(crop_mask, track, index, roi)
    return out


def paste_back(
    frame, rendered, track: CropTrack, index: int, *, mask: np.ndarray | None = None, feather: float | None = None
) -> np.ndarray:
    """Blend a rendered crop (S, S, 3) into ``frame`` (H, W, 3) through the crop transform of ``track[index]``.

    mask: crop-space (S, S) weights in [0, 1] (default :func:`face_mask` with ``feather``, 0.08 of the crop side
    unless given). Returns a new float32 frame; pixels where the warped mask is 0 equal the input exactly.
    """
    frame = as_numpy_image(frame, "frame")
    rendered = as_numpy_image(rendered, "rendered")
    if tuple(frame.shape[:2]) != track.frame_size:
        raise ValueError(f"frame is {tuple(frame.shape[:2])}, the track was made for {track.frame_size}")
    size = rendered.shape[0]
    if rendered.shape[1] != size:
        raise ValueError(f"rendered crop must be square, got {rendered.shape[:2]}")
    crop_mask = _crop_mask(mask, size, feather)
    out = frame.copy()
    roi = _roi(track, index)
    if roi is None:
        return out
    x0, y0, x1, y1 = roi
    m = _warp_to_roi(crop_mask, track, index, roi)[..., None]
    warped = _warp_to_roi(np.ascontiguousarray(rendered), track, index, roi)
    region = out[y0:y1, x0:x1]
    out[y0:y1, x0:x1] = np.where(m > 0, m * warped + (1 - m) * region, region)
    return out


def paste_back_batch(
    frames,
    rendered,
    track: CropTrack,
    *,
    indices: Sequence[int] | None = None,
    mask: np.ndarray | None = None,
    feather: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """:func:`paste_back` for frames (N, H, W, 3) and rendered crops (N, S, S, 3); frame k uses track entry
    ``indices[k]`` (default k). Returns new float32 frames."""
    frames = as_numpy_frames(frames)
    rendered = as_numpy_frames(rendered, "rendered")
    n = frames.shape[0]
    idx = list(range(n)) if indices is None else [int(i) for i in indices]
    if rendered.shape[0] != n or len(idx) != n:
        raise ValueError(f"frames ({n}), rendered ({rendered.shape[0]}) and indices ({len(idx)}) must match")
    out = np.empty_like(frames)
    for k in range(n):
        out[k] = paste_back(frames[k], rendered[k], track, idx[k], mask=mask, feather=feather)
        if progress is not None:
            progress(k + 1, n)
    return out

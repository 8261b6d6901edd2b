"""Optical-flow frame resampling: retime the original frames to an edit plan's source-time map.

For every target frame the map gives a source time in SOURCE FRAME units (``EditPlan.source_time``).

- Integer time: that source frame, bit for bit (float32). The one exception is a frame inside a
  compressed run (see below) whose neighbours are both more than one source frame away; the frames at
  the edges of a squeezed span, unedited ones, stay exact.
- Fractional time: flow-based interpolation between the two neighbouring frames. Flow is estimated
  both ways, projected to the intermediate time (fixed-point iteration ``u = F01(x - t u)``), both
  neighbours are backward-warped to it and blended with occlusion-aware weights (forward-backward
  consistency says where a neighbour's content has no counterpart in the other one).
- Faces and backgrounds move differently, so with ``face_regions`` every step runs twice: a face layer
  (flow on the face crop with the background replaced by a flat contrasting tone) and a background
  layer (flow on the frame with the face filled in, flow under the face inpainted from around it, face
  pixels never sampled), then composited with a feathered face mask that was warped to the target time
  with the face flow.
- Compression (the map advances more than one source frame per target frame): each target frame
  averages the source frames its interval covers after aligning them to its time along the motion
  trajectories (chained flows). Temporal content that is not motion (flicker, blinks, noise) is
  low-passed instead of aliased; moving content stays sharp. ``ResampleConfig.shutter`` adds a
  synthetic motion blur on top for a camera-like exposure.

Only the source frames the map needs are read, a few at a time: ``iter_resampled_frames`` yields chunks
and holds only the frames and flows of the current window, so long clips are never held whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .flow_estimators import DIS_PRESETS, MIN_FLOW_SIDE, DISFlow, FlowEstimator, check_flow

__all__ = [
    "TIME_TOLERANCE",
    "ResampleConfig",
    "Windows",
    "interval_weights",
    "iter_resampled_frames",
    "plan_windows",
    "resample_frames",
    "validate_source_time",
]

TIME_TOLERANCE = 1e-6  # source times this close to an integer are that integer (float noise, not intent)
_MIN_WEIGHT = 1e-3  # floor of the occlusion weights, so that fully occluded pixels still get a blend
TAPS_PER_PIXEL = 2.0  # motion-blur samples per pixel of path


@dataclass(frozen=True)
class ResampleConfig:
    """Settings of ``resample_frames``. Margins and feather are fractions of the face's size (sqrt of area)."""

    preset: str = "medium"  # DIS quality preset: 'ultrafast' | 'fast' | 'medium'
    flow_scale: float | None = None  # scale of the flow's working images; None: from flow_max_side
    flow_max_side: int = 960  # with flow_scale None: the working images' longer side is at most this
    projection_iterations: int = 2  # fixed-point steps projecting the 0<->1 flows to the target time
    occlusion: bool = True  # weight the neighbours by visibility (False: plain flow-warped blend)
    occlusion_alpha: float = 0.01  # forward-backward check: error^2 < alpha * (|f|^2 + |b|^2) + beta
    occlusion_beta: float = 0.5
    face_margin: float = 0.25  # context around the face for the face flow, fraction of the face size
    exclude_margin: float = 0.1  # face region grown by this fraction of the face size for the background
    feather: float = 0.02  # composite feather (Gaussian sigma), fraction of the face size, outward
    box_shape: str = "ellipse"  # face boxes stand for their inscribed ellipse (a head) or the whole 'rect'
    prefilter: bool = True  # compressed spans: trajectory-aligned averaging instead of point sampling
    max_prefilter_radius: float = 4.0  # source frames on each side of a target frame, at most
    shutter: float = 0.0  # compressed spans: synthetic motion blur, fraction of the target frame interval
    cubic: bool = True  # bicubic warping of the frames (bilinear loses fine texture at subpixel shifts)

    def __post_init__(self):
        if self.preset not in DIS_PRESETS:
            raise ValueError(f"ResampleConfig.preset must be one of {DIS_PRESETS}, got {self.preset!r}")
        if self.box_shape not in ("ellipse", "rect"):
            raise ValueError(f"ResampleConfig.box_shape must be 'ellipse' or 'rect', got {self.box_shape!r}")
        if self.flow_scale is not None and not 0 < self.flow_scale <= 1:
            raise ValueError(f"ResampleConfig.flow_scale must be in (0, 1] or None, got {self.flow_scale}")
        if self.flow_max_side < MIN_FLOW_SIDE:
            raise ValueError(f"ResampleConfig.flow_max_side must be >= {MIN_FLOW_SIDE}, got {self.flow_max_side}")
        if self.projection_iterations < 0:
            raise ValueError(f"ResampleConfig.projection_iterations must be >= 0, got {self.projection_iterations}")
        for name in ("occlusion_alpha", "face_margin", "exclude_margin", "feather"):
            if getattr(self, name) < 0:
                raise ValueError(f"ResampleConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.occlusion_beta <= 0:
            raise ValueError(f"ResampleConfig.occlusion_beta must be > 0, got {self.occlusion_beta}")
        if self.max_prefilter_radius < 0.5:
            raise ValueError(f"ResampleConfig.max_prefilter_radius must be >= 0.5, got {self.max_prefilter_radius}")
        if not 0 <= self.shutter <= 1:
            raise ValueError(f"ResampleConfig.shutter must be in [0, 1], got {self.shutter}")


ProgressFn = Callable[[int, int], None]


# ---------------------------------------------------------------------------------------------------------------
# Public API


def resample_frames(
    frames: Any,
    source_time: Any,
    face_regions: Any = None,
    *,
    config: ResampleConfig = ResampleConfig(),
    flow: FlowEstimator | None = None,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """Target frames [T, H, W, 3] float32 for the source-time map ``source_time`` [T].

    ``frames``: [N, H, W, 3] float in 0..1, numpy or torch, or any sequence of such frames that supports
    ``len`` and integer indexing (only the frames the map needs are read). ``face_regions``: None, or
    per source frame a box [N, 4] (x0, y0, x1, y1 in pixel-edge coordinates) or a soft mask [N, H, W]
    in 0..1; an empty box or an all-zero mask means "no face in this frame". ``flow``: a
    ``FlowEstimator``; default ``DISFlow(config.preset)``. ``progress(done, total)`` after every frame.
    """
    chunks = iter_resampled_frames(frames, source_time, face_regions, config=config, flow=flow, progress=progress)
    source = chunks.engine.source
    out = np.empty((len(chunks.source_time), source.h, source.w, 3), np.float32)
    done = 0
    for chunk in chunks:
        out[done : done + len(chunk)] = chunk
        done += len(chunk)
    return out


def iter_resampled_frames(
    frames: Any,
    source_time: Any,
    face_regions: Any = None,
    *,
    config: ResampleConfig = ResampleConfig(),
    flow: FlowEstimator | None = None,
    chunk_size: int = 16,
    progress: ProgressFn | None = None,
) -> Iterator[np.ndarray]:
    """Like ``resample_frames`` but yields the target frames in order, in chunks [k, H, W, 3] float32.

    Inputs are validated before this returns. Memory holds one chunk plus the source frames and flows
    of the current window (about the span of source frames one target frame covers).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if not isinstance(config, ResampleConfig):
        raise TypeError(f"config must be a ResampleConfig, got {type(config).__name__}")
    if flow is not None and not callable(flow):
        raise TypeError(f"flow must be a callable (img0, img1) -> flow [H, W, 2], got {type(flow).__name__}")
    source = _FrameSource(frames)
    times = validate_source_time(source_time, source.n)
    source.probe(int(times[0]) if len(times) else 0)  # the first frame the map needs fixes H and W
    faces = None if face_regions is None else _FaceRegions(face_regions, source.n, source.h, source.w, config.box_shape)
    engine = _Resampler(source, faces, config, flow or DISFlow(config.preset))
    return _Chunks(engine, times, plan_windows(times, source.n, config), chunk_size, progress)


def validate_source_time(source_time: Any, n_frames: int) -> np.ndarray:
    """The map as float64 [T], near-integers snapped (``TIME_TOLERANCE``), or a clear ValueError.

    Times must be finite, inside [0, n_frames - 1] and non-decreasing. Equal neighbours are allowed (a
    held frame: an insertion stretches a zero-length source span); decreasing time is an error because
    playing the source backwards is never what an edit means.
    """
    if hasattr(source_time, "detach"):
        source_time = source_time.detach().cpu().numpy()
    try:
        times = np.array(source_time, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"source_time must be a 1-D array of numbers, got {type(source_time).__name__}") from e
    if times.ndim != 1:
        raise ValueError(f"source_time must be 1-D [target frames], got shape {times.shape}")
    bad = np.flatnonzero(~np.isfinite(times))
    if bad.size:
        raise ValueError(f"source_time[{bad[0]}] is {times[bad[0]]}; every target frame needs a finite source time")
    bad = np.flatnonzero((times < -TIME_TOLERANCE) | (times > n_frames - 1 + TIME_TOLERANCE))
    if bad.size:
        k = bad[0]
        raise ValueError(
            f"source_time[{k}] = {float(times[k])!r} is outside the clip: frames has {n_frames} frames, so source "
            f"times must lie in [0, {n_frames - 1}] ({bad.size} target frame(s) outside)"
        )
    drops = np.flatnonzero(np.diff(times) < -TIME_TOLERANCE)
    if drops.size:
        k = drops[0] + 1
        raise ValueError(
            f"source_time must be non-decreasing: source_time[{k}] = {float(times[k])!r} comes after "
            f"source_time[{k - 1}] = {float(times[k - 1])!r}"
        )
    rounded = np.round(times)
    near = np.abs(times - rounded) <= TIME_TOLERANCE
    times[near] = rounded[near]
    return np.clip(times, 0, n_frames - 1)  # only float noise within TIME_TOLERANCE is clipped here


@dataclass(frozen=True)
class Windows:
    """Per target frame: whether it is a bit-exact copy, and the source interval [lo, hi] it averages."""

    exact: np.ndarray  # bool [T]
    lo: np.ndarray  # float64 [T]
    hi: np.ndarray  # float64 [T]


def plan_windows(times: np.ndarray, n_frames: int, config: ResampleConfig = ResampleConfig()) -> Windows:
    """How each target frame is made from the validated map ``times``.

    A target frame stands for the source interval between the midpoints to its neighbours. Where the
    map advances at most one source frame per target frame, the interval is a point (interpolation
    only). Where it advances more (compression, with ``config.prefilter``), the frame averages the
    interval, each half capped at ``max_prefilter_radius``. An integer time is a bit-exact copy unless
    both of its sides are compressed: the frames at the edge of a squeezed span are unedited frames and
    stay untouched.
    """
    t = len(times)
    if t == 0:
        empty = np.zeros(0)
        return Windows(np.zeros(0, bool), empty, empty)
    steps = np.diff(times)
    left = np.concatenate([[steps[0] if t > 1 else 1.0], steps])
    right = np.concatenate([steps, [steps[-1] if t > 1 else 1.0]])
    integer = times == np.round(times)
    compressed = np.maximum(left, right) > 1 + TIME_TOLERANCE
    if not config.prefilter:
        compressed[:] = False
    exact = integer & (~compressed | (np.minimum(left, right) <= 1 + TIME_TOLERANCE))
    r = config.max_prefilter_radius
    lo = np.maximum(np.where(compressed, times - np.minimum(left / 2, r), times), 0.0)
    hi = np.minimum(np.where(compressed, times + np.minimum(right / 2, r), times), n_frames - 1.0)
    return Windows(exact, lo, hi)


def interval_weights(s: float, lo: float, hi: float) -> dict[int, float]:
    """Weights of the source frames for a box over [lo, hi] of the linearly interpolated sequence.

    With lo == hi == s this is plain linear interpolation between the neighbours of s.
    """
    if hi - lo < 1e-9:
        i0 = math.floor(s)
        frac = s - i0
        weights = {i0: 1.0 - frac, i0 + 1: frac}
    else:
        weights = {}
        for j in range(math.floor(lo), math.ceil(hi) + 1):
            weights[j] = (_hat_integral(hi - j) - _hat_integral(lo - j)) / (hi - lo)
    return {j: w for j, w in weights.items() if w > 1e-9}


def _hat_integral(x: float) -> float:
    if x <= -1:
        return 0.0
    if x <= 0:
        return (x + 1) ** 2 / 2
    if x <= 1:
        return 1 - (1 - x) ** 2 / 2
    return 1.0


# ---------------------------------------------------------------------------------------------------------------
# Inputs


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        x = x.numpy()
    return np.asarray(x)


class _FrameSource:
    """Indexed access to the source frames with validation, loaded on demand and cached until released."""

    def __init__(self, frames: Any):
        try:
            self.n = len(frames)
        except TypeError as e:
            raise ValueError(f"frames must be an array [N, H, W, 3] or a sequence of frames, got {frames!r}") from e
        if self.n == 0:
            raise ValueError("frames is empty; resampling needs at least one source frame")
        self.frames = frames
        self.cache: dict[int, np.ndarray] = {}
        self.h = self.w = 0
        self.first = 0

    def probe(self, i: int) -> None:
        """Read frame i (the first one needed) to learn and check the frame size."""
        first = _to_numpy(self.frames[i])
        if first.ndim != 3 or first.shape[2] != 3:
            raise ValueError(
                f"frames must be [N, H, W, 3] (RGB, ComfyUI IMAGE layout); frame {i} has shape {first.shape}"
            )
        self.h, self.w, self.first = int(first.shape[0]), int(first.shape[1]), i
        if min(self.h, self.w) < MIN_FLOW_SIDE:
            raise ValueError(f"frames are {self.h}x{self.w}; optical flow needs at least {MIN_FLOW_SIDE} pixels a side")
        self.cache[i] = self._checked(i, first)

    def __getitem__(self, i: int) -> np.ndarray:
        frame = self.cache.get(i)
        if frame is None:
            frame = self.cache[i] = self._checked(i, _to_numpy(self.frames[i]))
        return frame

    def _checked(self, i: int, frame: np.ndarray) -> np.ndarray:
        if frame.shape != (self.h, self.w, 3):
            raise ValueError(
                f"frames[{i}] has shape {frame.shape}, expected {(self.h, self.w, 3)} like frames[{self.first}]"
            )
        if not np.issubdtype(frame.dtype, np.floating):
            raise ValueError(f"frames[{i}] has dtype {frame.dtype}; frames must be float in 0..1 (IMAGE layout)")
        frame = np.ascontiguousarray(frame, dtype=np.float32)
        if not np.isfinite(frame).all():
            raise ValueError(f"frames[{i}] contains NaN or infinite values")
        return frame

    def release_below(self, i: int) -> None:
        for j in [j for j in self.cache if j < i]:
            del self.cache[j]


class _FaceRegions:
    """Face region per source frame: boxes [N, 4] or soft masks [N, H, W], validated."""

    def __init__(self, regions: Any, n: int, h: int, w: int, box_shape: str = "ellipse"):
        self.h, self.w, self.box_shape = h, w, box_shape
        try:
            count = len(regions)
        except TypeError as e:
            raise ValueError(f"face_regions must be boxes [N, 4] or masks [N, H, W], got {regions!r}") from e
        if count != n:
            raise ValueError(f"face_regions has {count} entries but frames has {n}; give one region per source frame")
        self.regions = regions
        first = _to_numpy(regions[0])
        if first.shape == (4,):
            self.kind = "box"
            boxes = np.empty((n, 4), np.float64)
            for i in range(n):
                box = _to_numpy(regions[i])
                if box.shape != (4,) or not np.issubdtype(box.dtype, np.number):
                    raise ValueError(
                        f"face_regions[{i}] is {regions[i]!r}; boxes must be 4 numbers (x0, y0, x1, y1) "
                        "(an empty box such as (0, 0, 0, 0) means no face in that frame)"
                    )
                boxes[i] = box
            bad = np.flatnonzero(~np.isfinite(boxes).all(axis=1))
            if bad.size:
                raise ValueError(f"face_regions[{bad[0]}] = {boxes[bad[0]].tolist()} contains NaN or infinity")
            bad = np.flatnonzero((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))
            if bad.size:
                raise ValueError(
                    f"face_regions[{bad[0]}] = {boxes[bad[0]].tolist()} is not a box (x0, y0, x1, y1) with "
                    "x0 <= x1 and y0 <= y1"
                )
            self.boxes = boxes
        elif first.shape == (h, w):
            self.kind = "mask"
        else:
            raise ValueError(
                f"face_regions entries must be boxes (4,) or masks {(h, w)} matching the frames; "
                f"face_regions[0] has shape {first.shape}"
            )

    def mask(self, i: int, wh: int, ww: int) -> np.ndarray:
        """Soft face mask of source frame i at the working size [wh, ww], float32 0..1."""
        if self.kind == "box":
            x0, y0, x1, y1 = self.boxes[i] * np.array([ww / self.w, wh / self.h] * 2)
            if self.box_shape == "rect":
                cols = np.clip(np.minimum(np.arange(1, ww + 1), x1) - np.maximum(np.arange(ww), x0), 0, 1)
                rows = np.clip(np.minimum(np.arange(1, wh + 1), y1) - np.maximum(np.arange(wh), y0), 0, 1)
                return np.outer(rows, cols).astype(np.float32)
            if x1 - x0 <= 0 or y1 - y0 <= 0:
                return np.zeros((wh, ww), np.float32)
            rx, ry = (x1 - x0) / 2, (y1 - y0) / 2
            dx = (np.arange(ww) + 0.5 - (x0 + rx)) / rx
            dy = (np.arange(wh) + 0.5 - (y0 + ry)) / ry
            d = np.sqrt(dx[None, :] ** 2 + dy[:, None] ** 2)
            return np.clip(0.5 + (1 - d) * min(rx, ry), 0, 1).astype(np.float32)  # one-pixel antialiased edge
        m = _to_numpy(self.regions[i])
        if m.shape != (self.h, self.w):
            raise ValueError(f"face_regions[{i}] has shape {m.shape}, expected {(self.h, self.w)} like the frames")
        m = np.asarray(m, dtype=np.float32)
        if not np.isfinite(m).all():
            raise ValueError(f"face_regions[{i}] contains NaN or infinite values")
        if m.min() < 0 or m.max() > 1:
            raise ValueError(f"face_regions[{i}] has values in [{m.min()}, {m.max()}]; masks must be in 0..1")
        if (wh, ww) != m.shape:
            m = cv2.resize(m, (ww, wh), interpolation=cv2.INTER_AREA)
        return m


# ---------------------------------------------------------------------------------------------------------------
# Image helpers (working scale)


def _fill(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Values kept where weight is 1, smoothly extended from there where it is 0 (push-pull pyramid).

    Only a neighbourhood of the holes is processed: half the holes' size around them.
    """
    hole = _bbox(weight, 1 - 1e-6, below=True)
    if hole is None or weight.max() <= 1e-6:
        return values.copy()
    h, w = weight.shape
    x0, y0, x1, y1 = hole
    m = max((x1 - x0) // 2, (y1 - y0) // 2, 8)
    x0, y0, x1, y1 = max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m)
    if (x1 - x0) * (y1 - y0) < h * w / 2 and weight[y0:y1, x0:x1].max() > 1e-6:
        out = values.copy()
        out[y0:y1, x0:x1] = _push_pull(values[y0:y1, x0:x1], weight[y0:y1, x0:x1])
        return out
    return _push_pull(values, weight)


def _push_pull(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    expand = values.ndim == 2
    v = values[..., None] if expand else values
    levels = [(v * weight[..., None], weight)]
    while min(levels[-1][1].shape) > 2:
        vw, w = levels[-1]
        vw, w = cv2.pyrDown(vw), cv2.pyrDown(w)
        levels.append((vw.reshape(*w.shape, -1), w))
    vw, w = levels[-1]
    est = vw / np.maximum(w, 1e-6)[..., None]
    for vw, w in reversed(levels[1:-1]):
        up = cv2.pyrUp(est, dstsize=(w.shape[1], w.shape[0])).reshape(*w.shape, -1)
        a = np.clip(w, 0, 1)[..., None]
        est = a * (vw / np.maximum(w, 1e-6)[..., None]) + (1 - a) * up
    est = cv2.pyrUp(est, dstsize=(weight.shape[1], weight.shape[0])).reshape(v.shape)
    if np.all((weight == 0) | (weight == 1)):
        np.copyto(est, v, where=(weight == 1)[..., None])
    else:
        a = np.clip(weight, 0, 1)[..., None]
        est += a * (v - est)
    return est[..., 0] if expand else est


def _remap(
    field: np.ndarray, gx: np.ndarray, gy: np.ndarray, disp: np.ndarray, constant: bool = False, cubic: bool = False
) -> np.ndarray:
    border = cv2.BORDER_CONSTANT if constant else cv2.BORDER_REPLICATE
    mx, my = gx + disp[..., 0], gy + disp[..., 1]
    out = cv2.remap(field, mx, my, cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR, borderMode=border, borderValue=0)
    return out.reshape(*mx.shape, -1) if field.ndim == 3 and out.ndim == 2 else out


def _norm2(v: np.ndarray) -> np.ndarray:
    return v[..., 0] * v[..., 0] + v[..., 1] * v[..., 1]


def _inside(gx: np.ndarray, gy: np.ndarray, disp: np.ndarray) -> np.ndarray:
    h, w = gx.shape
    px, py = gx + disp[..., 0], gy + disp[..., 1]
    return ((px >= -0.5) & (px <= w - 0.5) & (py >= -0.5) & (py <= h - 0.5)).astype(np.float32)


def _face_size(mask: np.ndarray) -> float:
    return math.sqrt(float(mask.sum()))


def _bbox(mask: np.ndarray, thresh: float = 0.5, below: bool = False) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) around the pixels above thresh (below it with below=True); None if there are none."""
    sel = mask < thresh if below else mask > thresh
    rows, cols = np.flatnonzero(sel.any(axis=1)), np.flatnonzero(sel.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _dilate(mask: np.ndarray, radius: float) -> np.ndarray:
    r = int(math.ceil(radius))
    hard = (mask > 0.5).astype(np.uint8)
    if r <= 0:
        return hard.astype(np.float32)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(hard, kernel).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# The engine


@dataclass
class _Layer:
    fwd: np.ndarray  # [h, w, 2] flow a -> b on a's grid
    bwd: np.ndarray  # [h, w, 2] flow b -> a on b's grid
    vis_fwd: np.ndarray  # [h, w] pixel of a has a consistent counterpart inside b
    vis_bwd: np.ndarray  # [h, w] pixel of b has a consistent counterpart inside a


@dataclass
class _Work:
    rgb: np.ndarray  # [h, w, 3] working-scale frame
    mask: np.ndarray | None  # [h, w] soft face mask
    bbox: tuple[int, int, int, int] | None  # face box at working scale (mask > 0.5)
    size: float  # sqrt of the face area, working pixels
    keep: np.ndarray | None = None  # [h, w] 1 where the background flow is measured (face grown, excluded)
    filled: np.ndarray | None = None  # [h, w, 3] the frame with the excluded face region filled in


class _Resampler:
    def __init__(self, source: _FrameSource, faces: _FaceRegions | None, config: ResampleConfig, flow: Any):
        self.source, self.faces, self.cfg, self.flow = source, faces, config, flow
        h, w = source.h, source.w
        scale = config.flow_scale if config.flow_scale is not None else min(1.0, config.flow_max_side / max(h, w))
        self.wh, self.ww = max(MIN_FLOW_SIDE, round(h * scale)), max(MIN_FLOW_SIDE, round(w * scale))
        self.gx, self.gy = np.meshgrid(np.arange(self.ww, dtype=np.float32), np.arange(self.wh, dtype=np.float32))
        self.full_gx, self.full_gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        self.full_grid = np.dstack([self.full_gx, self.full_gy])
        self.work: dict[int, _Work] = {}
        self.pairs: dict[int, dict[str, _Layer]] = {}

    # -- caches

    def release_below(self, i: int) -> None:
        self.source.release_below(i)
        for cache in (self.work, self.pairs):
            for j in [j for j in cache if j < i]:
                del cache[j]

    def _work(self, i: int) -> _Work:
        item = self.work.get(i)
        if item is None:
            frame = self.source[i]
            rgb = frame
            if (self.wh, self.ww) != (self.source.h, self.source.w):
                rgb = cv2.resize(frame, (self.ww, self.wh), interpolation=cv2.INTER_AREA)
            mask = bbox = None
            size = 0.0
            if self.faces is not None:
                mask = self.faces.mask(i, self.wh, self.ww)
                bbox = _bbox(mask)
                size = _face_size(mask) if bbox is not None else 0.0
            item = self.work[i] = _Work(rgb, mask, bbox, size)
        return item

    def _estimate(self, img0: np.ndarray, img1: np.ndarray) -> np.ndarray:
        return check_flow(self.flow(img0, img1), img0.shape[:2], self.flow)

    def _layer(self, fwd: np.ndarray, bwd: np.ndarray) -> _Layer:
        return _Layer(fwd, bwd, self._visibility(fwd, bwd), self._visibility(bwd, fwd))

    def _visibility(self, f: np.ndarray, b: np.ndarray) -> np.ndarray:
        inside = _inside(self.gx, self.gy, f)
        if not self.cfg.occlusion:
            return np.ones_like(inside)
        back = _remap(b, self.gx, self.gy, f)
        err = _norm2(f + back)
        tol = self.cfg.occlusion_alpha * (_norm2(f) + _norm2(back)) + self.cfg.occlusion_beta
        return np.exp(-err / tol) * inside

    def _pair(self, a: int) -> dict[str, _Layer]:
        """Flows between source frames a and a + 1, per layer ('bg', and 'face' with face regions)."""
        pair = self.pairs.get(a)
        if pair is not None:
            return pair
        wa, wb = self._work(a), self._work(a + 1)
        if self.faces is None:
            pair = {"bg": self._layer(self._estimate(wa.rgb, wb.rgb), self._estimate(wb.rgb, wa.rgb))}
        else:
            self._background(wa), self._background(wb)
            fwd = _fill(self._estimate(wa.filled, wb.filled), wa.keep)
            bwd = _fill(self._estimate(wb.filled, wa.filled), wb.keep)
            pair = {"bg": self._layer(fwd, bwd)}
            pair["face"] = self._face_layer(wa, wb) if wa.bbox and wb.bbox else pair["bg"]
        self.pairs[a] = pair
        return pair

    def _background(self, work: _Work) -> None:
        if work.keep is not None:
            return
        if work.bbox is None:
            work.keep, work.filled = np.ones((self.wh, self.ww), np.float32), work.rgb
        else:
            work.keep = 1 - _dilate(work.mask, self.cfg.exclude_margin * work.size + 1)
            work.filled = _fill(work.rgb, work.keep)

    def _face_layer(self, wa: _Work, wb: _Work) -> _Layer:
        x0 = min(wa.bbox[0], wb.bbox[0])
        y0 = min(wa.bbox[1], wb.bbox[1])
        x1 = max(wa.bbox[2], wb.bbox[2])
        y1 = max(wa.bbox[3], wb.bbox[3])
        mx = max(self.cfg.face_margin * (x1 - x0), (MIN_FLOW_SIDE - (x1 - x0)) / 2, 0)
        my = max(self.cfg.face_margin * (y1 - y0), (MIN_FLOW_SIDE - (y1 - y0)) / 2, 0)
        x0, x1 = max(0, math.floor(x0 - mx)), min(self.ww, math.ceil(x1 + mx))
        y0, y1 = max(0, math.floor(y0 - my)), min(self.wh, math.ceil(y1 + my))
        if x1 - x0 < MIN_FLOW_SIDE:  # the frame's edge cut the margin on one side: take it from the other
            x0, x1 = (0, min(self.ww, MIN_FLOW_SIDE)) if x0 == 0 else (max(0, self.ww - MIN_FLOW_SIDE), self.ww)
        if y1 - y0 < MIN_FLOW_SIDE:
            y0, y1 = (0, min(self.wh, MIN_FLOW_SIDE)) if y0 == 0 else (max(0, self.wh - MIN_FLOW_SIDE), self.wh)

        def crop(work: _Work) -> tuple[np.ndarray, np.ndarray]:
            # The background is replaced by a flat tone that contrasts with the face, so that the coarse
            # levels of the flow follow the face's outline (not the background, not a repeating texture).
            m = work.mask[y0:y1, x0:x1, None]
            rgb = work.rgb[y0:y1, x0:x1]
            luma = float((rgb * m).sum((0, 1)) @ np.array([0.299, 0.587, 0.114]) / max(float(m.sum()), 1e-6))
            return rgb * m + (0.0 if luma > 0.5 else 1.0) * (1 - m), work.mask[y0:y1, x0:x1]

        img_a, ma = crop(wa)
        img_b, mb = crop(wb)
        flows = []
        for img0, img1, m in ((img_a, img_b, ma), (img_b, img_a, mb)):
            flow = self._estimate(np.ascontiguousarray(img0), np.ascontiguousarray(img1))
            flow = _fill(flow, (m > 0.5).astype(np.float32))  # the face's motion, continued past its edge
            pad = (y0, self.wh - y1, x0, self.ww - x1)
            flows.append(cv2.copyMakeBorder(flow, *pad, cv2.BORDER_REPLICATE))
        return self._layer(*flows)

    # -- synthesis

    def _trajectories(self, layer: str, s: float, j_lo: int, j_hi: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """For each source frame j in [j_lo, j_hi]: displacement [h, w, 2] from time s to frame j, and a
        confidence [h, w] that the content at time s is visible (and inside) in frame j."""
        gx, gy = self.gx, self.gy
        i0 = math.floor(s)
        t = s - i0
        out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if t == 0:
            out[i0] = (np.zeros((self.wh, self.ww, 2), np.float32), np.ones((self.wh, self.ww), np.float32))
        else:
            pair = self._pair(i0)[layer]
            u, v = pair.fwd, pair.bwd
            for _ in range(self.cfg.projection_iterations):
                u = _remap(pair.fwd, gx, gy, -t * u)
            for _ in range(self.cfg.projection_iterations):
                v = _remap(pair.bwd, gx, gy, -(1 - t) * v)
            g0, g1 = (-t * u).astype(np.float32), (-(1 - t) * v).astype(np.float32)
            in0, in1 = _inside(gx, gy, g0), _inside(gx, gy, g1)
            if not self.cfg.occlusion:
                in0, in1 = np.ones_like(in0), np.ones_like(in1)
            # A neighbour is trusted where the other neighbour's content has a counterpart in it.
            c0 = in0 * np.where(in1 > 0, _remap(pair.vis_bwd, gx, gy, g1, constant=True), 1)
            c1 = in1 * np.where(in0 > 0, _remap(pair.vis_fwd, gx, gy, g0, constant=True), 1)
            out[i0], out[i0 + 1] = (g0, c0), (g1, c1)
        j = max(out)
        while j < j_hi:
            g, c = out[j]
            pair = self._pair(j)[layer]
            out[j + 1] = (g + _remap(pair.fwd, gx, gy, g), c * _remap(pair.vis_fwd, gx, gy, g, constant=True))
            j += 1
        j = min(out)
        while j > j_lo:
            g, c = out[j]
            pair = self._pair(j - 1)[layer]
            out[j - 1] = (g + _remap(pair.bwd, gx, gy, g), c * _remap(pair.vis_bwd, gx, gy, g, constant=True))
            j -= 1
        return out

    def _blend_weights(
        self, weights: dict[int, float], traj: dict[int, tuple[np.ndarray, np.ndarray]], avoid_face: bool
    ) -> dict[int, np.ndarray]:
        raw = {}
        for j, w in weights.items():
            g, c = traj[j]
            if avoid_face and self._work(j).bbox is not None:
                c = c * (1 - _remap(self._work(j).mask, self.gx, self.gy, g, constant=True))
            raw[j] = w * (_MIN_WEIGHT + (1 - _MIN_WEIGHT) * c)
        total = sum(raw.values())
        return {j: r / total for j, r in raw.items()}

    def render(self, s: float, lo: float, hi: float) -> np.ndarray:
        weights = interval_weights(s, lo, hi)
        j_lo, j_hi = min(weights), max(weights)
        traj = self._trajectories("bg", s, j_lo, j_hi)
        with_face = self.faces is not None and any(self._work(j).bbox is not None for j in weights)
        blend = self._blend_weights(weights, traj, avoid_face=with_face)
        out = self._warp_sum(traj, blend, None)
        velocity = self._velocity(traj, s) if self.cfg.shutter > 0 and hi - lo > 1 else None
        if with_face:
            ftraj = self._trajectories("face", s, j_lo, j_hi)
            fblend = self._blend_weights(weights, ftraj, avoid_face=False)
            mask = np.zeros((self.wh, self.ww), np.float32)
            for j, a in fblend.items():
                if self._work(j).bbox is not None:
                    mask += a * _remap(self._work(j).mask, self.gx, self.gy, ftraj[j][0], constant=True)
            alpha = self._feather(mask)
            if alpha is not None:
                alpha_full = self._upsample(alpha)
                roi = _bbox(alpha_full, 1e-3)
                if roi is not None:
                    x0, y0, x1, y1 = roi
                    face = self._warp_sum(ftraj, fblend, roi)
                    a = alpha_full[y0:y1, x0:x1, None]
                    out[y0:y1, x0:x1] = a * face + (1 - a) * out[y0:y1, x0:x1]
                if velocity is not None:
                    velocity = velocity * (1 - alpha[..., None]) + self._velocity(ftraj, s) * alpha[..., None]
        if velocity is not None:
            out = self._motion_blur(out, velocity * (self.cfg.shutter * (hi - lo)))
        return np.clip(out, 0, 1, out=out)  # bicubic overshoot; IMAGE frames are 0..1

    def _feather(self, mask: np.ndarray) -> np.ndarray | None:
        size = _face_size(mask)
        if size < 1:
            return None
        sigma = self.cfg.feather * size
        if sigma < 0.3:
            return np.clip(mask, 0, 1)
        return np.clip(2 * cv2.GaussianBlur(mask, (0, 0), sigma), 0, 1)

    def _upsample(self, field: np.ndarray) -> np.ndarray:
        """A working-scale field at full resolution; displacements are rescaled to full-resolution pixels."""
        h, w = self.source.h, self.source.w
        if field.shape[:2] == (h, w):
            return field
        if field.ndim == 3 and field.shape[2] == 2:
            field = cv2.multiply(field, (w / self.ww, h / self.wh, 0, 0))  # before resizing: 4x fewer pixels
        return cv2.resize(field, (w, h), interpolation=cv2.INTER_LINEAR)

    def _warp_sum(
        self,
        traj: dict[int, tuple[np.ndarray, np.ndarray]],
        blend: dict[int, np.ndarray],
        roi: tuple[int, int, int, int] | None,
    ) -> np.ndarray:
        """Sum over samples j of blend[j] * (frame j warped along traj[j]), at full resolution in roi."""
        h, w = self.source.h, self.source.w
        x0, y0, x1, y1 = roi or (0, 0, w, h)
        acc = np.zeros((y1 - y0, x1 - x0, 3), np.float32)
        grid = self.full_grid[y0:y1, x0:x1]
        interp = cv2.INTER_CUBIC if self.cfg.cubic else cv2.INTER_LINEAR
        for j, a in blend.items():
            positions = cv2.add(self._upsample(traj[j][0])[y0:y1, x0:x1], grid)
            warped = cv2.remap(self.source[j], positions, None, interp, borderMode=cv2.BORDER_REPLICATE)
            acc += self._upsample(a)[y0:y1, x0:x1, None] * warped
        return acc

    def _velocity(self, traj: dict[int, tuple[np.ndarray, np.ndarray]], s: float) -> np.ndarray:
        """Motion at time s in working pixels per source frame, from the two nearest trajectories."""
        i0 = math.floor(s)
        if s - i0 == 0:
            lo, hi = (i0 - 1 if i0 - 1 in traj else i0), (i0 + 1 if i0 + 1 in traj else i0)
        else:
            lo, hi = i0, i0 + 1
        if hi == lo:
            return np.zeros((self.wh, self.ww, 2), np.float32)
        return (traj[hi][0] - traj[lo][0]) / (hi - lo)

    def _motion_blur(self, img: np.ndarray, path: np.ndarray) -> np.ndarray:
        """Average of img along the local motion path (working-scale displacement over the exposure)."""
        full = self._upsample(path)
        length = float(np.sqrt(_norm2(full)).max())
        steps = min(64, max(2, math.ceil(TAPS_PER_PIXEL * length)))
        acc = np.zeros_like(img)
        for k in range(steps):  # midpoints of equal parts of the path: a box filter along the motion
            acc += _remap(img, self.full_gx, self.full_gy, full * ((k + 0.5) / steps - 0.5), cubic=self.cfg.cubic)
        return acc / steps


class _Chunks:
    """Iterator over target-frame chunks; ``source_time`` is the validated map."""

    def __init__(self, engine: _Resampler, times: np.ndarray, windows: Windows, chunk_size: int, progress):
        self.engine, self.source_time, self.windows = engine, times, windows
        self.chunk_size, self.progress = chunk_size, progress
        lows = np.floor(windows.lo).astype(np.int64)
        self.keep_from = np.minimum.accumulate(lows[::-1])[::-1] if len(lows) else lows
        self.next = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        return self

    def __next__(self) -> np.ndarray:
        total = len(self.source_time)
        if self.next >= total:
            raise StopIteration
        stop = min(total, self.next + self.chunk_size)
        source, win = self.engine.source, self.windows
        chunk = np.empty((stop - self.next, source.h, source.w, 3), np.float32)
        for k in range(self.next, stop):
            s = float(self.source_time[k])
            if win.exact[k]:
                chunk[k - self.next] = source[int(s)]
            else:
                chunk[k - self.next] = self.engine.render(s, float(win.lo[k]), float(win.hi[k]))
            if k + 1 < total:
                self.engine.release_below(int(self.keep_from[k + 1]))
            if self.progress is not None:
                self.progress(k + 1, total)
        self.next = stop
        if stop == total:
            self.engine.release_below(source.n)
        return chunk

"""Face tracks and crops with LivePortrait's crop geometry.

LivePortrait (``src/utils/crop.py``) crops a square around the face: side = extent * scale (2.3), centre moved
along the face's up/down axis by vy_ratio * side (-0.125: the crop centre moves towards the forehead), optionally
rotated to cancel roll. We take the extent from a detector box (times the detector's ``box_scale``) and the roll
from 5-point landmarks when the detector gives them.

Coordinates: continuous pixel coordinates where pixel i spans [i, i + 1). The crop of side S maps the square of
``size`` frame pixels around ``center`` onto [0, S)^2, so crops of any resolution (256 for the networks, 512
for the rendered output) cover exactly the same region.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from .detect import FaceDetection, FaceDetector, default_detector
from .frames import as_numpy_frames, frame_reader, to_uint8

CROP_SCALE = 2.3
CROP_VX_RATIO = 0.0
CROP_VY_RATIO = -0.125


@dataclass
class CropTrack:
    """Per-frame crop squares of one face through a clip.

    frame_size (H, W); center (T, 2) x, y; size (T,) side in frame pixels; angle (T,) radians (the crop's x axis
    in the frame); face_box (T, 4) the detector's boxes x0, y0, x1, y1 (interpolated where not detected);
    detected (T,) True where the detector found the face in that frame (a frame not searched, see
    ``detect_every``: in the searched frames on both sides). Frames without one are never re-rendered.
    """

    frame_size: tuple[int, int]
    center: np.ndarray
    size: np.ndarray
    angle: np.ndarray
    face_box: np.ndarray
    detected: np.ndarray

    def __post_init__(self) -> None:
        t = len(self.size)
        self.center = np.asarray(self.center, dtype=np.float64).reshape(t, 2)
        self.size = np.asarray(self.size, dtype=np.float64).reshape(t)
        self.angle = np.asarray(self.angle, dtype=np.float64).reshape(t)
        self.face_box = np.asarray(self.face_box, dtype=np.float64).reshape(t, 4)
        self.detected = np.asarray(self.detected, dtype=bool).reshape(t)
        self.frame_size = (int(self.frame_size[0]), int(self.frame_size[1]))
        if t == 0:
            raise ValueError("a CropTrack needs at least one frame")
        if not np.all(self.size > 0):
            raise ValueError("crop sizes must be positive")

    def __len__(self) -> int:
        return len(self.size)

    @property
    def interpolated(self) -> np.ndarray:
        return ~self.detected

    def _check_index(self, i: int) -> int:
        if not -len(self) <= i < len(self):
            raise IndexError(f"frame index {i} out of range for a track of {len(self)} frames")
        return int(i) % len(self)

    def matrix(self, i: int, dsize: int) -> np.ndarray:
        """2x3 affine from frame pixels to crop pixels (OpenCV convention: pixel centres at integers)."""
        i = self._check_index(i)
        s = dsize / self.size[i]
        c, sn = math.cos(self.angle[i]), math.sin(self.angle[i])
        a = s * np.array([[c, sn], [-sn, c]])
        b = a @ (0.5 - self.center[i]) + (dsize / 2 - 0.5)
        return np.concatenate([a, b[:, None]], axis=1)

    def inverse_matrix(self, i: int, dsize: int) -> np.ndarray:
        """2x3 affine from crop pixels back to frame pixels."""
        return cv2.invertAffineTransform(self.matrix(i, dsize))

    def crop_corners(self, i: int) -> np.ndarray:
        """(4, 2) frame coordinates of the crop square's corners (top-left, top-right, bottom-right, bottom-left)."""
        i = self._check_index(i)
        half = self.size[i] / 2
        c, sn = math.cos(self.angle[i]), math.sin(self.angle[i])
        ux, uy = np.array([c, sn]), np.array([-sn, c])
        offsets = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
        return np.array([self.center[i] + half * (dx * ux + dy * uy) for dx, dy in offsets])

    def crop_box(self, i: int) -> tuple[float, float, float, float]:
        """Axis-aligned bounds (x0, y0, x1, y1) of the crop square in frame pixels (may exceed the frame)."""
        corners = self.crop_corners(i)
        return (*corners.min(axis=0).tolist(), *corners.max(axis=0).tolist())

    def select(self, index: Sequence[int]) -> CropTrack:
        idx = np.asarray(index, dtype=np.int64)
        return CropTrack(
            self.frame_size, self.center[idx], self.size[idx], self.angle[idx], self.face_box[idx], self.detected[idx]
        )

    def to_dict(self) -> dict:
        return {
            "frame_size": list(self.frame_size),
            "center": self.center.tolist(),
            "size": self.size.tolist(),
            "angle": self.angle.tolist(),
            "face_box": self.face_box.tolist(),
            "detected": self.detected.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> CropTrack:
        return cls(**{k: d[k] for k in ("frame_size", "center", "size", "angle", "face_box", "detected")})


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _order(dets: list[FaceDetection], face_order: str) -> list[FaceDetection]:
    if face_order == "largest":
        return sorted(dets, key=lambda d: -d.area)
    if face_order == "left_to_right":
        return sorted(dets, key=lambda d: d.box[0] + d.box[2])
    raise ValueError(f"face_order must be 'largest' or 'left_to_right', got {face_order!r}")


def _same_face(prev: np.ndarray, cand: np.ndarray, gap: int) -> float:
    """Matching score of a candidate box to the face last seen ``gap`` frames earlier (0 = not the same face)."""
    iou = _iou(prev, cand)
    size = max(prev[2] - prev[0], prev[3] - prev[1])
    dist = np.hypot(*((prev[:2] + prev[2:]) / 2 - (cand[:2] + cand[2:]) / 2))
    return max(iou, 1e-6) if (iou >= 0.2 or dist < 0.35 * size * gap) else 0.0


def select_track(
    detections: dict[int, list[FaceDetection]], face_index: int, face_order: str, name: str
) -> dict[int, FaceDetection]:
    """Pick the face to follow (``face_index`` in ``face_order`` on the first frame that has that many faces),
    then follow it forwards and backwards by box overlap. With never more than one face per frame, every
    detection is taken."""
    frames = sorted(detections)
    counts = [len(detections[f]) for f in frames]
    if not any(counts):
        raise ValueError(f"no face was detected in any frame of {name} ({len(frames)} frames searched)")
    if face_index < 0:
        raise ValueError(f"face_index must be >= 0, got {face_index}")
    if max(counts) == 1 and face_index == 0:
        return {f: detections[f][0] for f in frames if detections[f]}
    start = next((k for k, c in enumerate(counts) if c > face_index), None)
    if start is None:
        raise ValueError(
            f"face_index={face_index} asked for face {face_index + 1} but at most {max(counts)} face(s) were "
            f"detected per frame in {name}"
        )
    chosen = {frames[start]: _order(detections[frames[start]], face_order)[face_index]}
    for direction in (range(start + 1, len(frames)), range(start - 1, -1, -1)):
        prev, last = np.asarray(chosen[frames[start]].box), frames[start]
        for k in direction:
            cands = detections[frames[k]]
            scores = [_same_face(prev, np.asarray(d.box), abs(frames[k] - last)) for d in cands]
            if scores and max(scores) > 0:
                best = cands[int(np.argmax(scores))]
                chosen[frames[k]] = best
                prev, last = np.asarray(best.box), frames[k]
    return chosen


def _fill(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Linear interpolation over frames without a value; the nearest value beyond the ends."""
    t = np.arange(len(values))
    out = values.copy()
    for j in range(values.shape[1]):
        out[:, j] = np.interp(t, t[known], values[known, j])
    return out


def gaussian_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along axis 0 (sigma in frames), edges extended with the end values."""
    if sigma <= 0 or len(values) < 2:
        return values.copy()
    radius = int(math.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    padded = np.concatenate([np.repeat(values[:1], radius, 0), values, np.repeat(values[-1:], radius, 0)])
    return np.stack([np.convolve(padded[:, j], k, mode="valid") for j in range(values.shape[1])], axis=1)


def _roll_angle(landmarks: np.ndarray) -> float:
    """LivePortrait's crop angle from 5 landmarks: the x axis perpendicular to eye-centre -> mouth-centre."""
    eye = landmarks[:2].mean(axis=0)
    mouth = landmarks[3:5].mean(axis=0)
    uy = mouth - eye
    norm = np.linalg.norm(uy)
    if norm < 1e-3:
        return 0.0
    uy = uy / norm
    return math.atan2(-uy[0], uy[1])


def track_from_boxes(
    frame_size: tuple[int, int],
    boxes: np.ndarray,
    detected: np.ndarray,
    *,
    angles: np.ndarray | None = None,
    box_scale: float = 1.0,
    scale: float = CROP_SCALE,
    vx_ratio: float = CROP_VX_RATIO,
    vy_ratio: float = CROP_VY_RATIO,
    smoothing: float = 2.0,
    fixed: bool = False,
) -> CropTrack:
    """Crop squares from per-frame face boxes (T, 4); rows where ``detected`` is False are interpolated."""
    boxes = np.asarray(boxes, dtype=np.float64)
    detected = np.asarray(detected, dtype=bool)
    t = len(boxes)
    angles = np.zeros(t) if angles is None else np.unwrap(np.asarray(angles, dtype=np.float64))
    if scale <= 0 or box_scale <= 0:
        raise ValueError(f"scale and box_scale must be positive, got {scale}, {box_scale}")
    if not detected.any():
        raise ValueError("no frame has a face box")
    filled = _fill(boxes, detected)
    centre = (filled[:, :2] + filled[:, 2:]) / 2
    extent = np.maximum(filled[:, 2] - filled[:, 0], filled[:, 3] - filled[:, 1]) * box_scale
    params = np.column_stack([centre, extent, _fill(angles[:, None], detected)[:, 0]])
    params = np.repeat(np.median(params, axis=0, keepdims=True), t, 0) if fixed else gaussian_smooth(params, smoothing)
    size = params[:, 2] * scale
    angle = params[:, 3]
    ux = np.column_stack([np.cos(angle), np.sin(angle)])
    uy = np.column_stack([-np.sin(angle), np.cos(angle)])
    center = params[:, :2] + ux * (vx_ratio * size)[:, None] + uy * (vy_ratio * size)[:, None]
    return CropTrack(frame_size, center, size, angle, filled, detected)


def detect_face_track(
    frames,
    detector: FaceDetector | None = None,
    *,
    face_index: int = 0,
    face_order: str = "largest",
    box: Sequence[float] | np.ndarray | None = None,
    smoothing: float = 2.0,
    fixed: bool = False,
    rotate: bool = True,
    detect_every: int = 1,
    scale: float = CROP_SCALE,
    vx_ratio: float = CROP_VX_RATIO,
    vy_ratio: float = CROP_VY_RATIO,
    progress: Callable[[int, int], None] | None = None,
    name: str = "frames",
) -> CropTrack:
    """Detect and follow one face through frames (T, H, W, 3) float in [0, 1] and return its crop squares.

    ``frames`` may also be a lazy sequence of frames (a video reader): each searched frame is read when the
    detector needs it.

    detector: any :class:`FaceDetector` (default: dlib HOG). Several faces: ``face_order`` 'largest' or
    'left_to_right', and ``face_index`` into that order. box: a manual face box (x0, y0, x1, y1), or one per
    frame (T, 4), instead of detection. smoothing: Gaussian sigma in frames over centre, size and angle (0 = none);
    fixed: one crop for the whole clip (median). rotate: cancel roll when the detector gives landmarks.
    detect_every: run the detector on every n-th frame (and the last) and interpolate between.
    Frames without a detection are interpolated from their neighbours; no face in the whole clip is an error.
    """
    t, (h, w), frame = frame_reader(frames, name)
    if detect_every < 1:
        raise ValueError(f"detect_every must be >= 1, got {detect_every}")
    if box is not None:
        boxes = np.asarray(box, dtype=np.float64)
        if boxes.shape == (4,):
            boxes = np.repeat(boxes[None], t, 0)
        if boxes.shape != (t, 4):
            raise ValueError(f"box must be (x0, y0, x1, y1) or one per frame ({t}, 4), got shape {boxes.shape}")
        if not np.all((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])):
            raise ValueError("every box needs x1 > x0 and y1 > y0")
        return track_from_boxes(
            (h, w), boxes, np.ones(t, bool), scale=scale, vx_ratio=vx_ratio, vy_ratio=vy_ratio,
            smoothing=smoothing, fixed=fixed,
        )  # fmt: skip
    detector = detector or default_detector()
    wanted = sorted(set(range(0, t, detect_every)) | {t - 1})
    detections: dict[int, list[FaceDetection]] = {}
    for k, i in enumerate(wanted):
        detections[i] = list(detector(to_uint8(frame(i))))
        if progress is not None:
            progress(k + 1, len(wanted))
    chosen = select_track(detections, face_index, face_order, name)
    boxes = np.zeros((t, 4))
    angles = np.zeros(t)
    detected = np.zeros(t, bool)
    for i, det in chosen.items():
        boxes[i], detected[i] = det.box, True
        if rotate and det.landmarks is not None:
            angles[i] = _roll_angle(np.asarray(det.landmarks, dtype=np.float64))
    track = track_from_boxes(
        (h, w), boxes, detected, angles=angles, box_scale=float(getattr(detector, "box_scale", 1.0)),
        scale=scale, vx_ratio=vx_ratio, vy_ratio=vy_ratio, smoothing=smoothing, fixed=fixed,
    )  # fmt: skip
    # a frame skipped by detect_every counts as having the face when the searched frames on both sides have it
    searched, at = np.asarray(wanted), np.arange(t)
    found = detected[searched]
    before = found[np.searchsorted(searched, at, side="right") - 1]
    return replace(track, detected=before & found[np.searchsorted(searched, at)])


def crop_faces(
    frames,
    track: CropTrack,
    size: int = 256,
    *,
    indices: Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Square crops (N, size, size, 3) float32 of frames (N, H, W, 3); frame k uses track entry indices[k]
    (default: k). Outside the frame the crop is black, as in LivePortrait."""
    frames = as_numpy_frames(frames)
    n = frames.shape[0]
    idx = list(range(n)) if indices is None else [int(i) for i in indices]
    if len(idx) != n:
        raise ValueError(f"indices has {len(idx)} entries for {n} frames")
    if tuple(frames.shape[1:3]) != track.frame_size:
        raise ValueError(f"frames are {tuple(frames.shape[1:3])}, the track was made for {track.frame_size}")
    out = np.empty((n, size, size, 3), np.float32)
    for k in range(n):
        out[k] = cv2.warpAffine(
            frames[k], track.matrix(idx[k], size), (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0)
        )
        if progress is not None:
            progress(k + 1, n)
    return out

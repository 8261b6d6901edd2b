"""Face boxes and crops for the identity and lip-sync metrics.

Detectors are callables ``RGB uint8 [H, W, 3] -> Face | None`` (the largest face). Two are built in:

- :class:`YuNetDetector`: OpenCV's YuNet (``cv2.FaceDetectorYN``) from a user-supplied ONNX file
  (``face_detection_yunet_2023mar.onnx`` from the OpenCV model zoo); gives five landmarks, so ArcFace
  crops are aligned to the standard 112x112 template.
- :class:`CentreFace`: no detection; the centred square of the frame is taken as the face. Right for
  videos that are already face crops (HDTF-style, or LivePortrait crops), wrong otherwise.

Any other detector (e.g. the pack's LivePortrait cropper) can be passed as a callable.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Five-point template of ArcFace's 112x112 aligned crops (insightface): eyes, nose tip, mouth corners,
# image-left point of each pair first.
ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    np.float32,
)


@dataclass(frozen=True)
class Face:
    """A face box ``(x0, y0, x1, y1)`` in pixels, optional landmarks [5, 2] (eyes, nose, mouth corners)."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray | None = None
    score: float = 1.0


FaceDetector = Callable[[np.ndarray], "Face | None"]


class CentreFace:
    """Takes the centred square (``fraction`` of the shorter side) as the face: for pre-cropped face videos."""

    def __init__(self, fraction: float = 1.0):
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction: expected 0 < fraction <= 1, got {fraction}")
        self.fraction = fraction

    def __call__(self, rgb: np.ndarray) -> Face:
        h, w = rgb.shape[:2]
        side = min(h, w) * self.fraction
        cx, cy = w / 2, h / 2
        return Face((cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))


class YuNetDetector:
    """OpenCV YuNet face detector from a local ONNX model file; returns the largest face with landmarks."""

    def __init__(self, model_path: str, score_threshold: float = 0.6):
        import cv2

        if not os.path.isfile(model_path):
            raise FileNotFoundError(
                f"YuNet face detector model not found: {model_path} (get face_detection_yunet_2023mar.onnx from "
                "the OpenCV model zoo, or evaluate pre-cropped face videos with the centre-crop detector)"
            )
        self._detector = cv2.FaceDetectorYN.create(model_path, "", (320, 320), score_threshold)
        self._size: tuple[int, int] | None = None

    def __call__(self, rgb: np.ndarray) -> Face | None:
        import cv2

        h, w = rgb.shape[:2]
        if self._size != (w, h):
            self._detector.setInputSize((w, h))
            self._size = (w, h)
        _, faces = self._detector.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if faces is None or len(faces) == 0:
            return None
        best = max(faces, key=lambda f: f[2] * f[3])
        x, y, bw, bh = (float(v) for v in best[:4])
        marks = np.asarray(best[4:14], np.float32).reshape(5, 2)
        return Face((x, y, x + bw, y + bh), _order_landmarks(marks), float(best[14]))


def _order_landmarks(marks: np.ndarray) -> np.ndarray:
    """Eyes and mouth corners ordered image-left first, matching :data:`ARCFACE_TEMPLATE_112`."""
    out = marks.copy()
    for a, b in ((0, 1), (3, 4)):
        if out[a, 0] > out[b, 0]:
            out[[a, b]] = out[[b, a]]
    return out


def align_face(rgb: np.ndarray, face: Face, size: int = 112) -> np.ndarray:
    """A ``size`` x ``size`` RGB uint8 face crop: similarity-aligned to the ArcFace template when the face has
    landmarks, otherwise the box's square (enlarged to its longer side) resized."""
    import cv2

    if face.landmarks is not None:
        dst = ARCFACE_TEMPLATE_112 * (size / 112.0)
        matrix, _ = cv2.estimateAffinePartial2D(np.asarray(face.landmarks, np.float32), dst, method=cv2.LMEDS)
        if matrix is not None:
            return cv2.warpAffine(rgb, matrix, (size, size), borderMode=cv2.BORDER_REPLICATE)
    x0, y0, x1, y1 = face.box
    side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    scale = size / side
    matrix = np.float32([[scale, 0, size / 2 - scale * cx], [0, scale, size / 2 - scale * cy]])
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """RGB float 0..1 (or uint8) -> uint8."""
    frame = np.asarray(frame)
    if frame.dtype == np.uint8:
        return frame
    return np.clip(np.rint(frame.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)

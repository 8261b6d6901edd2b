"""Face detectors behind one small interface.

A detector is any callable ``detector(image) -> list[FaceDetection]`` taking one RGB uint8 image (H, W, 3).
The default, :class:`DlibFaceDetector`, uses dlib's HOG frontal face detector: it is built into the dlib binary
(no weight file, no download) and ``pip install dlib-bin`` installs prebuilt wheels (no compiler) for Linux,
Windows and macOS. It finds upright, roughly frontal faces; frames where it finds none are interpolated by the
crop tracker. Users with insightface (or anything else) wrap it in a few lines, see :class:`InsightFaceDetector`.

A detector may set ``box_scale``: how much to enlarge its boxes to approximate the extent of LivePortrait's
203 face landmarks (eyebrows to chin, cheek to cheek), which is what LivePortrait's crop scale 2.3 refers to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import cv2
import numpy as np


@dataclass(frozen=True)
class FaceDetection:
    """box: (x0, y0, x1, y1) in image pixels; landmarks: optional (5, 2) in image pixels, ordered eye, eye,
    nose, mouth corner, mouth corner (the two eyes first, the two mouth corners last, as insightface/MTCNN)."""

    box: tuple[float, float, float, float]
    score: float = 1.0
    landmarks: np.ndarray | None = None

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


@runtime_checkable
class FaceDetector(Protocol):
    def __call__(self, image: np.ndarray) -> list[FaceDetection]: ...


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        raise ValueError(f"detector input must be an RGB uint8 array (H, W, 3), got {type(image).__name__} {shape}")


class DlibFaceDetector:
    """dlib's HOG + linear SVM frontal face detector.

    max_side: images are downscaled so that their longer side is at most this before detection (speed);
    upsample: dlib's pyramid upsampling count (1 finds faces down to about 40 px at the detection scale);
    threshold: dlib's adjust_threshold (higher = fewer, surer detections).
    """

    # On dlib's frontal boxes (eyebrows to chin, cheek to cheek) the box is close to the landmark extent.
    box_scale = 1.0

    def __init__(self, max_side: int = 640, upsample: int = 1, threshold: float = 0.0):
        try:
            import dlib
        except ImportError as e:
            raise ImportError(
                "the default face detector needs dlib: `pip install dlib-bin` (prebuilt wheels, no compiler); "
                "or pass another detector, or a manual box"
            ) from e
        if max_side < 64:
            raise ValueError(f"max_side must be >= 64, got {max_side}")
        self._detector = dlib.get_frontal_face_detector()
        self.max_side, self.upsample, self.threshold = int(max_side), int(upsample), float(threshold)

    def __call__(self, image: np.ndarray) -> list[FaceDetection]:
        _check_image(image)
        h, w = image.shape[:2]
        factor = min(1.0, self.max_side / max(h, w))
        small = image if factor == 1.0 else cv2.resize(image, (round(w * factor), round(h * factor)), cv2.INTER_AREA)
        rects, scores, _ = self._detector.run(np.ascontiguousarray(small), self.upsample, self.threshold)
        out = []
        for r, s in zip(rects, scores, strict=True):
            box = (r.left() / factor, r.top() / factor, (r.right() + 1) / factor, (r.bottom() + 1) / factor)
            out.append(FaceDetection(box=box, score=float(s)))
        return out


class InsightFaceDetector:
    """Adapter for an insightface ``FaceAnalysis`` object (or anything whose ``get(bgr_image)`` returns faces
    with ``bbox`` (4,), ``kps`` (5, 2) and ``det_score``)."""

    box_scale = 1.0

    def __init__(self, app):
        if not hasattr(app, "get"):
            raise TypeError("InsightFaceDetector needs an object with a get(image_bgr) method, e.g. FaceAnalysis")
        self.app = app

    def __call__(self, image: np.ndarray) -> list[FaceDetection]:
        _check_image(image)
        faces = self.app.get(np.ascontiguousarray(image[:, :, ::-1]))
        out = []
        for f in faces:
            kps = getattr(f, "kps", None)
            out.append(
                FaceDetection(
                    box=tuple(float(v) for v in np.asarray(f.bbox)[:4]),
                    score=float(getattr(f, "det_score", 1.0)),
                    landmarks=None if kps is None else np.asarray(kps, dtype=np.float64).reshape(5, 2),
                )
            )
        return out


def default_detector() -> FaceDetector:
    return DlibFaceDetector()

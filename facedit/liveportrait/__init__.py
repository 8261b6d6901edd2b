"""Our implementation of the parts of LivePortrait that FacEDiT uses (human model).

Networks with configurable widths (official sizes by default; only those load the published files), strict
weight loading for the official ``.pth`` and the ``.safetensors`` layouts, keypoint maths, batched motion
extraction, chunked rendering, face detection / crop and feathered paste-back.
"""

from .config import LivePortraitConfig
from .crop import CropTrack, crop_faces, detect_face_track, track_from_boxes
from .detect import DlibFaceDetector, FaceDetection, FaceDetector, InsightFaceDetector
from .extract import MotionTrack, extract_motion
from .model import LivePortrait, load_liveportrait, resolve_dtype
from .paste import face_mask, frame_face_mask, paste_back, paste_back_batch
from .render import iter_render, render
from .weights import download_liveportrait, find_weight_files

__all__ = [
    "CropTrack",
    "DlibFaceDetector",
    "FaceDetection",
    "FaceDetector",
    "InsightFaceDetector",
    "crop_faces",
    "detect_face_track",
    "face_mask",
    "frame_face_mask",
    "paste_back",
    "paste_back_batch",
    "track_from_boxes",
    "LivePortrait",
    "LivePortraitConfig",
    "MotionTrack",
    "download_liveportrait",
    "extract_motion",
    "find_weight_files",
    "iter_render",
    "load_liveportrait",
    "render",
    "resolve_dtype",
]

"""Our implementation of the parts of LivePortrait that FacEDiT uses (human model).

Networks with configurable widths (official sizes by default; only those load the published files), strict
weight loading for the official ``.pth`` and the ``.safetensors`` layouts, keypoint maths, batched motion
extraction, chunked rendering, face detection / crop and feathered paste-back.

Typical use (frames: (T, H, W, 3) float in [0, 1]):

    lp = load_liveportrait("models/liveportrait", device="cpu", dtype="fp32")   # or "fast", see fast.py
    track = detect_face_track(frames)                      # one smoothed crop square per frame
    crops = crop_faces(frames, track, 256)                 # (T, 256, 256, 3)
    motion = extract_motion(lp, crops)                     # motion.motion: (T, 75)
    new = motion.motion.clone()                            # ... edited motion for some frames ...
    idx = [10, 11, 12]
    out = render(lp, crops[idx], motion.select(idx), new[idx])     # (3, 512, 512, 3)
    frames_out = paste_back_batch(frames[idx], out, track, indices=idx)
"""

from .config import LivePortraitConfig
from .crop import CropTrack, crop_faces, detect_face_track, track_from_boxes
from .detect import DlibFaceDetector, FaceDetection, FaceDetector, InsightFaceDetector
from .extract import MotionTrack, extract_motion
from .fast import PRECISIONS, resolve_precision
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
    "PRECISIONS",
    "download_liveportrait",
    "extract_motion",
    "find_weight_files",
    "iter_render",
    "load_liveportrait",
    "render",
    "resolve_dtype",
    "resolve_precision",
]

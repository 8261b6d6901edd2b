"""Face tracking node: one crop square per frame for the face being edited."""

from __future__ import annotations

import re

import numpy as np
import torch

from ..facedit.liveportrait import crop_faces, detect_face_track
from . import _comfy
from ._comfy import io
from .types import CATEGORY, CropType

PREVIEW_CHUNK = 32


def parse_box(text: str, name: str = "face_box") -> tuple[float, float, float, float] | None:
    """``"x0,y0,x1,y1"`` (commas and/or spaces) in frame pixels -> a box; an empty string -> None."""
    text = (text or "").strip()
    if not text:
        return None
    parts = [p for p in re.split(r"[,\s]+", text) if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(np.isfinite(values)):
        raise ValueError(f"{name}: expected four numbers 'x0,y0,x1,y1' in pixels, got {text!r}")
    x0, y0, x1, y1 = values
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"{name}: needs x1 > x0 and y1 > y0, got {text!r}")
    return x0, y0, x1, y1


def frames_array(images: torch.Tensor, name: str) -> np.ndarray:
    """An IMAGE batch [T, H, W, 3] as a float32 numpy array (no copy when it already is one on the CPU)."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[-1] != 3:
        shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
        raise ValueError(f"{name}: expected an IMAGE batch [frames, height, width, 3], got {shape}")
    if images.shape[0] == 0:
        raise ValueError(f"{name}: the batch holds no frames")
    return images.detach().to("cpu", torch.float32).numpy()


class FacEDiTFaceCrop(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FacEDiTFaceCrop",
            display_name="FacEDiT Face Crop",
            category=CATEGORY,
            description=(
                "Finds the face in every frame (dlib's face detector, or a box you give) and follows it through "
                "the clip with LivePortrait's crop geometry. Frames where no face is found get a crop interpolated "
                "from their neighbours, but FacEDiT Render leaves them as they are (and names them); only a clip "
                "without any face is an error. Also outputs the 256x256 "
                "crops so you can check the tracking."
            ),
            inputs=[
                io.Image.Input("images", tooltip="The frames (a video's frames, or one portrait)."),
                io.Int.Input(
                    "face_index",
                    default=0,
                    min=0,
                    max=63,
                    tooltip="Which face to follow when there are several: 0 is the first in face_order.",
                ),
                io.Combo.Input(
                    "face_order",
                    options=["largest", "left_to_right"],
                    default="largest",
                    tooltip="How faces are numbered for face_index: by size (largest first) or from left to right.",
                ),
                io.Float.Input(
                    "smoothing",
                    default=2.0,
                    min=0.0,
                    max=30.0,
                    step=0.1,
                    tooltip="Gaussian smoothing of the crop over time, in frames (sigma). 0 follows the detector "
                    "exactly; 2 removes jitter; larger values steady the crop further.",
                ),
                io.Int.Input(
                    "detect_every",
                    default=1,
                    min=1,
                    max=250,
                    tooltip="Run the detector on every n-th frame only (and the last) and interpolate in between: "
                    "faster on long, steady clips.",
                ),
                io.String.Input(
                    "face_box",
                    default="",
                    optional=True,
                    tooltip="Optional manual face box 'x0,y0,x1,y1' in frame pixels (eyebrows to chin, cheek to "
                    "cheek), used for every frame instead of detection. Leave empty to detect.",
                ),
            ],
            outputs=[
                CropType.Output(display_name="crop", tooltip="The crop square of every frame."),
                io.Image.Output(display_name="crops", tooltip="The 256x256 face crops, one per frame (a preview)."),
            ],
        )

    @classmethod
    def execute(
        cls, images: torch.Tensor, face_index: int, face_order: str, smoothing: float, detect_every: int,
        face_box: str = "",
    ) -> io.NodeOutput:  # fmt: skip
        frames = frames_array(images, "images")
        box = parse_box(face_box)
        t = frames.shape[0]
        steps = (1 if box is not None else len(set(range(0, t, detect_every)) | {t - 1})) + t
        update = _comfy.progress(steps)
        track = detect_face_track(
            frames, face_index=face_index, face_order=face_order, box=box, smoothing=smoothing,
            detect_every=detect_every, progress=lambda done, total: update(done, steps),
            name="the 'images' input of FacEDiT Face Crop",
        )  # fmt: skip
        base = steps - t
        crops = np.empty((t, 256, 256, 3), np.float32)
        for start in range(0, t, PREVIEW_CHUNK):
            stop = min(start + PREVIEW_CHUNK, t)
            crops[start:stop] = crop_faces(frames[start:stop], track, indices=range(start, stop))
            update(base + stop, steps)
        return io.NodeOutput(track, torch.from_numpy(crops))


NODES = [FacEDiTFaceCrop]

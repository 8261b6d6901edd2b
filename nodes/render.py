"""Render node: LivePortrait decoding of the frames with new motion, pasted back into the full frames."""

from __future__ import annotations

import numpy as np
import torch

from ..facedit.edits import EditPlan
from ..facedit.liveportrait import CropTrack, MotionTrack, crop_faces, iter_render, paste_back
from ..facedit.pipeline import EditOptions, render_frames, warn_faceless
from . import _comfy
from ._comfy import io
from .faces import frames_array
from .motion import check_track
from .types import CATEGORY, CropType, LivePortraitType, LoadedModel, MotionType, PlanType, check_inputs


def _check_rows(track: MotionTrack, rows: np.ndarray, name: str, hint: str) -> None:
    finite = torch.isfinite(track.motion).all(1).numpy()
    bad = rows[~finite[rows]]
    if len(bad):
        raise ValueError(f"{name} is empty for {len(bad)} frame(s) to render (first: {int(bad[0])}): {hint}")


class FacEDiTRender(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FacEDiTRender",
            display_name="FacEDiT Render",
            category=CATEGORY,
            description=(
                "Renders the frames with new motion through LivePortrait (warp + SPADE decoder, 512x512 face) "
                "and pastes them back with a feathered mask. Only the plan's masked frames are decoded; every "
                "other frame passes through bit for bit. For generation every frame is rendered from the "
                "portrait."
            ),
            inputs=[
                LivePortraitType.Input("liveportrait", tooltip="From FacEDiT LivePortrait Loader."),
                io.Image.Input(
                    "images",
                    tooltip="Frames of the new timeline (FacEDiT Resample Frames), or the portrait.",
                ),
                CropType.Input("crop", tooltip="The crop track of these frames."),
                MotionType.Input("source_motion", tooltip="FacEDiT Extract Motion of these frames (their appearance)."),
                MotionType.Input("driving_motion", tooltip="FacEDiT Infill's output (the new motion)."),
                PlanType.Input("plan", tooltip="The plan: its mask says which frames are rendered."),
                io.Boolean.Input(
                    "rerender_all",
                    default=False,
                    tooltip="Render every frame, not only the generated ones, for a uniform look (slow: seconds "
                    "per frame on a CPU). Needs motion extracted for every frame (Extract Motion without a plan).",
                ),
                io.Boolean.Input(
                    "stitching",
                    default=True,
                    tooltip="LivePortrait's stitching network keeps the shoulders and the crop's edge steady "
                    "(needs its weights; ignored when they were not loaded).",
                ),
                io.Int.Input(
                    "chunk_size",
                    default=4,
                    min=1,
                    max=64,
                    tooltip="Frames decoded at once on a GPU (larger is faster, uses more memory). On a CPU frames "
                    "are decoded one at a time whatever this says, so progress and Cancel act per frame.",
                ),
            ],
            outputs=[io.Image.Output(display_name="images", tooltip="The frames of the new video.")],
        )

    @classmethod
    def execute(
        cls, liveportrait: LoadedModel, images: torch.Tensor, crop: CropTrack, source_motion: MotionTrack,
        driving_motion: MotionTrack, plan: EditPlan, rerender_all: bool = False, stitching: bool = True,
        chunk_size: int = 4,
    ) -> io.NodeOutput:  # fmt: skip
        check_inputs("FacEDiT Render", liveportrait=(liveportrait, "FACEDIT_LIVEPORTRAIT"), crop=(crop, "FACEDIT_CROP"),
                     source_motion=(source_motion, "FACEDIT_MOTION"), driving_motion=(driving_motion, "FACEDIT_MOTION"),
                     plan=(plan, "FACEDIT_PLAN"))  # fmt: skip
        frames = frames_array(images, "images")
        check_track(crop, frames, "crop", "images")
        if len(source_motion) != frames.shape[0]:
            raise ValueError(f"source_motion has {len(source_motion)} frames but images has {frames.shape[0]}")
        if len(driving_motion) != plan.target_frames:
            raise ValueError(
                f"driving_motion has {len(driving_motion)} frames but the plan's new timeline has "
                f"{plan.target_frames}: connect FacEDiT Infill's output made with this plan"
            )
        rows = np.arange(plan.target_frames) if rerender_all else np.flatnonzero(plan.infill_mask)
        options = EditOptions(stitching=bool(stitching), render_chunk=int(chunk_size))
        lp = liveportrait.model
        if plan.mode == "generate" and frames.shape[0] == plan.source_frames:
            index = np.rint(plan.source_time).astype(np.int64)
            _check_rows(source_motion, np.unique(index[rows]), "source_motion", "extract the motion of the portrait")
            at_crop = index[rows]
        elif frames.shape[0] == plan.target_frames:
            hint = "extract motion for every frame to render (Extract Motion without a plan for rerender_all)"
            _check_rows(source_motion, rows, "source_motion", hint)
            at_crop = rows
        else:
            raise ValueError(
                f"images has {frames.shape[0]} frames but the plan's new timeline has {plan.target_frames}: "
                f"connect FacEDiT Resample Frames' images"
            )
        _check_rows(driving_motion, rows, "driving_motion", "connect FacEDiT Infill's output made with this plan")
        faceless = np.zeros(plan.target_frames, bool)
        faceless[rows[~crop.detected[at_crop]]] = True
        warn_faceless(faceless, "FacEDiT Render", "the crop track's frames without a detected face")
        rows = rows[~faceless[rows]]
        with _comfy.on_device(liveportrait.module(), liveportrait.device, liveportrait.offload):
            if frames.shape[0] != plan.target_frames:
                out = _render_from_prompt(lp, frames, crop, source_motion, driving_motion, plan, rows, options)
            else:
                out = render_frames(
                    lp, frames, crop, source_motion, driving_motion.motion.numpy(), rows, options=options,
                    progress=_comfy.stage_progress(len(rows)), cancel=_comfy.check_interrupted,
                )  # fmt: skip
        return io.NodeOutput(torch.from_numpy(out))


def _render_from_prompt(
    lp, frames: np.ndarray, crop: CropTrack, source: MotionTrack, driving: MotionTrack, plan: EditPlan,
    rows: np.ndarray, options: EditOptions,
) -> np.ndarray:  # fmt: skip
    """Generation: target frame k shows prompt frame source_time[k]; the rendered ones take its appearance."""
    index = np.rint(plan.source_time).astype(np.int64)
    out = frames[index].copy()
    if not len(rows):
        return out
    crops = crop_faces(frames, crop)
    update = _comfy.progress(len(rows))
    for start, rendered in iter_render(
        lp, crops, source, driving.motion[torch.from_numpy(rows)], source_index=index[rows],
        chunk_size=options.render_chunk, stitching=options.stitching and lp.stitching is not None,
    ):  # fmt: skip
        _comfy.check_interrupted()
        for k, image in enumerate(rendered.numpy()):
            i = int(rows[start + k])
            out[i] = paste_back(frames[index[i]], image, crop, int(index[i]))
        update(start + len(rendered), len(rows))
    return out


NODES = [FacEDiTRender]

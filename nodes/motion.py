"""Motion nodes: retime the frames to the plan, extract LivePortrait motion, infill new motion with FacEDiT."""

from __future__ import annotations

import numpy as np
import torch

from ..facedit.edits import EditPlan
from ..facedit.liveportrait import CropTrack, MotionTrack, crop_faces, extract_motion
from ..facedit.motion import MOTION_DIM
from ..facedit.pipeline import EditOptions, infill_timeline, retime_track
from ..facedit.priors import is_prior
from ..facedit.resample import ResampleConfig, resample_frames
from ..facedit.speech import SpeechFeatures
from ..facedit.timeline import work_windows
from . import _comfy
from ._comfy import io
from .faces import frames_array
from .types import (
    CATEGORY,
    CropType,
    LivePortraitType,
    LoadedModel,
    ModelType,
    MotionType,
    PlanType,
    SpeechType,
    check_inputs,
)

QUALITY = ["medium", "fast", "ultrafast"]


def check_track(crop: CropTrack, frames: np.ndarray, crop_name: str, frames_name: str) -> None:
    if len(crop) != frames.shape[0]:
        raise ValueError(
            f"{crop_name} has {len(crop)} frames but {frames_name} has {frames.shape[0]}: connect the crop made "
            f"from these frames"
        )
    if tuple(crop.frame_size) != tuple(frames.shape[1:3]):
        raise ValueError(
            f"{crop_name} was made for {crop.frame_size[1]}x{crop.frame_size[0]} frames, {frames_name} are "
            f"{frames.shape[2]}x{frames.shape[1]}"
        )


def check_plan_source(plan: EditPlan, frames: int, name: str) -> None:
    """A plan built for another clip is an error (its source frame count differs)."""
    try:
        plan.check_matches(frames, plan.fps)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from err


def empty_track(frames: int) -> MotionTrack:
    nan = float("nan")
    return MotionTrack(
        torch.full((frames, MOTION_DIM), nan), torch.full((frames, 21, 3), nan), torch.full((frames,), nan),
        torch.full((frames, 3), nan),
    )  # fmt: skip


def motion_rows_needed(plan: EditPlan, frames: int, motion_context_s: float) -> np.ndarray:
    """Target frames whose motion the infill and the render read: every frame within ``motion_context_s`` of
    a generated or retimed frame."""
    if plan.mode == "generate" and frames == plan.source_frames:
        return np.arange(frames)
    if frames != plan.target_frames:
        raise ValueError(
            f"images has {frames} frames but the plan's new timeline has {plan.target_frames}: extract motion from "
            f"the frames of FacEDiT Resample Frames"
        )
    context = int(round(motion_context_s * plan.fps))
    rows = [np.arange(w.start, w.end) for w in work_windows(plan.infill_mask | plan.retimed_mask, context)]
    return np.concatenate(rows) if rows else np.zeros(0, np.int64)


class FacEDiTResampleFrames(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FacEDiTResampleFrames",
            display_name="FacEDiT Resample Frames",
            category=CATEGORY,
            description=(
                "Puts the original frames on the new timeline of the plan: unedited frames are copied bit for "
                "bit, frames inside a retimed span are interpolated with optical flow (face and background "
                "separately). Also retimes the face crop track."
            ),
            inputs=[
                io.Image.Input("images", tooltip="The ORIGINAL video's frames (the ones the plan was made for)."),
                PlanType.Input("plan", tooltip="From a FacEDiT plan node."),
                CropType.Input("crop", tooltip="FacEDiT Face Crop of these original frames."),
                io.Combo.Input(
                    "quality",
                    options=QUALITY,
                    default="medium",
                    tooltip="Optical-flow quality (OpenCV DIS presets): medium is the best, ultrafast the "
                    "quickest. Only retimed frames use it.",
                ),
            ],
            outputs=[
                io.Image.Output(display_name="images", tooltip="The frames of the new timeline."),
                CropType.Output(display_name="crop", tooltip="The crop track on the new timeline."),
            ],
        )

    @classmethod
    def execute(cls, images: torch.Tensor, plan: EditPlan, crop: CropTrack, quality: str = "medium") -> io.NodeOutput:
        check_inputs("FacEDiT Resample Frames", plan=(plan, "FACEDIT_PLAN"), crop=(crop, "FACEDIT_CROP"))
        frames = frames_array(images, "images")
        check_plan_source(plan, frames.shape[0], "images")
        check_track(crop, frames, "crop", "images")
        update = _comfy.progress(plan.target_frames)
        out = resample_frames(
            frames, plan.source_time, crop.face_box, config=ResampleConfig(preset=quality), progress=update
        )
        return io.NodeOutput(torch.from_numpy(out), retime_track(crop, plan.source_time))


class FacEDiTExtractMotion(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FacEDiTExtractMotion",
            display_name="FacEDiT Extract Motion",
            category=CATEGORY,
            description=(
                "Runs LivePortrait's motion extractor on the face crops: per frame, the 75-number motion "
                "(expression, head rotation, translation) plus the keypoints rendering needs. With a plan, only "
                "the frames within motion_context_s of the edits are extracted (the rest are left empty), which "
                "is what the infill and the render read."
            ),
            inputs=[
                LivePortraitType.Input("liveportrait", tooltip="From FacEDiT LivePortrait Loader."),
                io.Image.Input("images", tooltip="The frames: FacEDiT Resample Frames' output, or the portrait."),
                CropType.Input("crop", tooltip="The crop track of these frames."),
                PlanType.Input(
                    "plan",
                    optional=True,
                    tooltip="Optional: extract only around the plan's edits (much faster on long clips). Leave "
                    "unconnected to extract every frame (needed for 'rerender_all').",
                ),
                io.Float.Input(
                    "motion_context_s",
                    default=1.0,
                    min=0.0,
                    max=30.0,
                    step=0.1,
                    tooltip="With a plan: seconds of motion extracted on each side of the edits. Must be at least "
                    "the Infill node's motion_context_s.",
                ),
                io.Int.Input(
                    "chunk_size",
                    default=16,
                    min=1,
                    max=256,
                    tooltip="Frames per batch through the extractor: larger is faster on a GPU, uses more memory.",
                ),
            ],
            outputs=[MotionType.Output(display_name="motion", tooltip="Per-frame motion (empty rows not extracted).")],
        )

    @classmethod
    def execute(
        cls, liveportrait: LoadedModel, images: torch.Tensor, crop: CropTrack, plan: EditPlan | None = None,
        motion_context_s: float = 1.0, chunk_size: int = 16,
    ) -> io.NodeOutput:  # fmt: skip
        check_inputs("FacEDiT Extract Motion", liveportrait=(liveportrait, "FACEDIT_LIVEPORTRAIT"),
                     crop=(crop, "FACEDIT_CROP"), plan=(plan, "FACEDIT_PLAN"))  # fmt: skip
        frames = frames_array(images, "images")
        check_track(crop, frames, "crop", "images")
        t = frames.shape[0]
        rows = np.arange(t) if plan is None else motion_rows_needed(plan, t, motion_context_s)
        track = empty_track(t)
        update = _comfy.progress(len(rows))
        with _comfy.on_device(liveportrait.module(), liveportrait.device, liveportrait.offload):
            for start in range(0, len(rows), chunk_size):
                idx = rows[start : start + chunk_size]
                crops = crop_faces(frames[idx], crop, indices=idx)
                part = extract_motion(liveportrait.model, crops, chunk_size=chunk_size)
                index = torch.from_numpy(idx)
                track.motion[index] = part.motion
                track.kp_canonical[index] = part.kp_canonical
                track.scale[index] = part.scale
                track.angles[index] = part.angles
                update(start + len(idx), len(rows))
        return io.NodeOutput(track)


def _expand_generation(track: MotionTrack, plan: EditPlan) -> MotionTrack:
    """A generation plan's prompt motion (source_frames rows) laid on the target timeline: prompt frames keep
    their motion, generated rows are NaN until infilled (canonical keypoints and scale are the prompt frame's)."""
    expanded = track.select(np.rint(plan.source_time).astype(np.int64))
    expanded.motion[torch.from_numpy(plan.infill_mask)] = float("nan")
    return expanded


class FacEDiTInfill(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FacEDiTInfill",
            display_name="FacEDiT Infill",
            category=CATEGORY,
            description=(
                "The sampler: generates new motion for the plan's masked frames from the speech, with the known "
                "motion around them as context (flow matching, Euler steps with a sway schedule). Unmasked "
                "frames keep their motion exactly. Works at the fps the model was trained at and converts to the "
                "video's fps and back."
            ),
            inputs=[
                ModelType.Input("model", tooltip="From FacEDiT Model Loader."),
                MotionType.Input("motion", tooltip="FacEDiT Extract Motion of the new timeline (or of the portrait)."),
                SpeechType.Input(
                    "speech",
                    optional=True,
                    tooltip="FacEDiT Speech Encode of the edited speech (for a FacEDiT model).",
                ),
                PlanType.Input("plan", tooltip="The plan the frames and the speech were prepared for."),
                io.Int.Input(
                    "steps",
                    default=32,
                    min=1,
                    max=1000,
                    tooltip="ODE steps of the sampler: 32 as in the paper; fewer are faster and coarser.",
                ),
                io.Float.Input(
                    "sway",
                    default=-1.0,
                    min=-1.0,
                    max=1.0,
                    step=0.05,
                    tooltip="Sway sampling coefficient: negative values spend more steps early (coarse structure). "
                    "-1 as in the paper; 0 = uniform steps.",
                ),
                io.Float.Input(
                    "guidance",
                    default=0.0,
                    min=0.0,
                    max=10.0,
                    step=0.1,
                    tooltip="Classifier-free guidance on the speech: 0 = off (the paper's setting); above 0 follows "
                    "the speech more strongly (needs a model trained with speech dropout) at twice the cost per step.",
                ),
                io.Int.Input(
                    "seed",
                    default=0,
                    min=0,
                    max=2**63 - 1,
                    control_after_generate=True,
                    tooltip="Seed of the starting noise: the same seed gives the same motion.",
                ),
                io.Float.Input(
                    "motion_context_s",
                    default=1.0,
                    min=0.0,
                    max=30.0,
                    step=0.1,
                    tooltip="Seconds of known motion the model sees on each side of the generated frames (at most "
                    "the Extract node's motion_context_s). Ignored for generation, which sees everything.",
                ),
                io.Boolean.Input(
                    "compile",
                    default=False,
                    optional=True,
                    tooltip="Run the FacEDiT network through torch.compile: a first-call compilation (tens of "
                    "seconds on a CPU) and one more for every new window length; needs a C++ compiler on a CPU (none "
                    "on a stock Windows install) or Triton on a GPU, else it runs as if off and logs why. Not faster "
                    "everywhere (on an AMX Xeon: eager's speed in fp32, slower in bf16). Same motion to float "
                    "rounding. JoyVASA ignores it.",
                ),
                io.Audio.Input(
                    "audio",
                    optional=True,
                    tooltip="For the JoyVASA prior: the edited speech itself (it encodes it with its own HuBERT); "
                    "FacEDiT models use 'speech' instead.",
                ),
            ],
            outputs=[MotionType.Output(display_name="driving", tooltip="Motion of every target frame, for rendering.")],
        )

    @classmethod
    def execute(
        cls, model: LoadedModel, motion: MotionTrack, speech: SpeechFeatures | None = None,
        plan: EditPlan | None = None, steps: int = 32, sway: float = -1.0, guidance: float = 0.0, seed: int = 0,
        motion_context_s: float = 1.0, audio: dict | None = None, compile: bool = False,
    ) -> io.NodeOutput:  # fmt: skip
        check_inputs("FacEDiT Infill", model=(model, "FACEDIT_MODEL"), motion=(motion, "FACEDIT_MOTION"),
                     speech=(speech, "FACEDIT_SPEECH"), plan=(plan, "FACEDIT_PLAN"))  # fmt: skip
        if plan is None:
            raise ValueError("plan: connect the plan the frames and the speech were prepared for")
        if is_prior(model.model):
            if audio is None:
                raise ValueError("audio: the JoyVASA prior encodes the speech itself: connect the edited AUDIO here")
            speech = model.model.speech_input(audio)
        elif speech is None:
            raise ValueError("speech: a FacEDiT model needs FacEDiT Speech Encode's features of the edited speech")
        slack = 1.0 / plan.fps + 1e-3
        if abs(speech.duration_s - plan.edited_duration_s) > slack:
            raise ValueError(
                f"speech: the features cover {speech.duration_s:.3f} s but the plan's speech lasts "
                f"{plan.edited_duration_s:.3f} s: encode the same audio the plan was made from"
            )
        if plan.mode == "generate" and len(motion) == plan.source_frames:
            source = _expand_generation(motion, plan)
            motion_context_s = plan.target_frames / plan.fps
        elif len(motion) == plan.target_frames:
            source = motion
        else:
            raise ValueError(
                f"motion has {len(motion)} frames but the plan's new timeline has {plan.target_frames}: extract the "
                f"motion from FacEDiT Resample Frames' images"
            )
        options = EditOptions(
            motion_context_s=float(motion_context_s), steps=int(steps), sway=float(sway), guidance=float(guidance),
            seed=int(seed), compile=bool(compile),
        )  # fmt: skip
        with _comfy.on_device(model.module(), model.device, model.offload):
            driving = infill_timeline(
                model.model, source.motion.numpy(), plan.infill_mask, plan.fps, speech, options,
                progress=_comfy.stage_progress(steps), cancel=_comfy.check_interrupted,
            )  # fmt: skip
        return io.NodeOutput(MotionTrack(torch.from_numpy(driving), source.kp_canonical, source.scale, source.angles))


NODES = [FacEDiTResampleFrames, FacEDiTExtractMotion, FacEDiTInfill]

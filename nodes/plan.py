"""Edit plan nodes: which target frames come from which original frames, and which get new motion.

Every plan node sends the plan to the frontend as ``ui["facedit_plan"] = [plan.to_dict()]`` (drawn on the node
by the pack's web extension), the one view of the plan on the node. The same picture at full size is the
``preview`` output, for a Preview Image or Save Image node where one is wanted.
"""

from __future__ import annotations

from typing import Any

import torch

from ..facedit.edits import FITS, EditPlan, SpanEdit, plan_generation
from ..facedit.pipeline import audio_duration, make_plan
from ..facedit.plan_preview import render_plan
from ..facedit.span_text import parse_spans as parse_span_text
from ..facedit.timestamps import TimestampError, parse_words
from . import _comfy
from ._comfy import io
from .faces import frames_array
from .types import CATEGORY, PlanType

MASK_SIZE = 64
PREVIEW_WIDTH = 1280


def _fps_input() -> Any:
    return io.Float.Input(
        "fps", default=25.0, min=1.0, max=240.0, step=0.01,
        tooltip="Frame rate of the video. Connect GetVideoComponents' fps output so it is exact (29.97 is "
        "30000/1001).",
    )  # fmt: skip


def _context_input() -> Any:
    return io.Int.Input(
        "context_frames", default=3, min=0, max=100,
        tooltip="Frames regenerated on each side of every edit so that the transition into and out of it is "
        "generated too. 3 (0.12 s at 25 fps) is a good start.",
    )  # fmt: skip


def _plan_outputs() -> list:
    return [
        PlanType.Output(display_name="plan", tooltip="The edit plan; every later FacEDiT node reads it."),
        io.Mask.Output(
            display_name="mask",
            tooltip=f"One {MASK_SIZE}x{MASK_SIZE} mask per TARGET frame: 1 where motion is generated.",
        ),
        io.Image.Output(display_name="preview", tooltip="The plan as a picture (words, edits, frames, time map)."),
        io.Int.Output(display_name="target_frames", tooltip="Frames of the new video."),
    ]


def plan_output(plan: EditPlan, node_cls: Any, original_audio: Any = None, edited_audio: Any = None) -> io.NodeOutput:
    preview = torch.from_numpy(
        render_plan(plan, original_audio=original_audio, edited_audio=edited_audio, width=PREVIEW_WIDTH)
    )[None]
    mask = torch.from_numpy(plan.infill_mask).float()[:, None, None].expand(-1, MASK_SIZE, MASK_SIZE).contiguous()
    for warning in plan.warnings:
        _comfy.log.warning("edit plan: %s", warning)
    ui = {"facedit_plan": [plan.to_dict()]}  # no preview image on the node too: the drawing is its one view
    return io.NodeOutput(plan, mask, preview, int(plan.target_frames), ui=ui)


def _duration(audio: Any, name: str) -> float:
    try:
        return audio_duration(audio)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from err


def _words(text: str, name: str, duration_s: float, audio_name: str) -> list:
    if not (text or "").strip():
        raise ValueError(f"{name}: give the word timestamps (WhisperX / whisper JSON, or 'start end word' lines)")
    try:
        return parse_words(text, duration_s=duration_s)
    except TimestampError as err:
        raise ValueError(f"{name} (checked against {audio_name}, {duration_s:.3f} s): {err}") from err


def _source(images: torch.Tensor, fps: float) -> tuple[int, float]:
    frames = frames_array(images, "images").shape[0]
    if not fps > 0:
        raise ValueError(f"fps: expected a positive frame rate, got {fps!r}")
    return frames, float(fps)


def parse_spans(text: str) -> list[SpanEdit]:
    """Lines ``start end new_duration`` (seconds of the ORIGINAL speech; spaces, tabs or commas; # comments)."""
    return parse_span_text(text, "spans")


_WORDS_SOURCE = (
    "The node does not listen to the speech: connect the words output of FacEDiT Transcribe (Whisper on this "
    "audio) or FacEDiT Align Transcript (a transcript you have, CTC-aligned) here, or paste them from a speech "
    "recognizer with word timestamps (WhisperX, openai-whisper with word_timestamps=True, stable-ts) or from the "
    "tool that made the edited speech: Whisper JSON, a JSON list of {word, start, end}, or lines 'start end "
    "word'. The help page says more."
)
_ORIGINAL_AUDIO_TOOLTIP = (
    "Optional: the original speech, for its exact duration (default: the video's frames / fps) and its waveform "
    "in the preview. Prefer the original speech file: a video's decoded AAC track is usually some 50 ms longer "
    "(encoder padding), which shifts the frames after the last edit."
)


class FacEDiTEditPlan(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FacEDiTEditPlan",
            display_name="FacEDiT Edit Plan",
            category=CATEGORY,
            description=(
                "Compares the words of the original and the edited speech and plans the edit: the new video's "
                "length (edited speech duration x fps), which original frame every new frame shows (unedited "
                "frames are copied, the edited span is retimed), and which frames get new motion (the edits "
                "plus context_frames on each side). Timestamps: WhisperX / openai-whisper / stable-ts / "
                "whisper-timestamped JSON, a JSON list of {word, start, end}, or lines 'start end word'."
            ),
            inputs=[
                io.String.Input(
                    "original_words",
                    multiline=True,
                    default="",
                    tooltip="Word timestamps of the ORIGINAL speech (the video's own), in seconds. " + _WORDS_SOURCE,
                ),
                io.String.Input(
                    "edited_words",
                    multiline=True,
                    default="",
                    tooltip="Word timestamps of the EDITED speech, in seconds. " + _WORDS_SOURCE,
                ),
                io.Audio.Input("edited_audio", tooltip="The edited speech; its duration sets the new video's length."),
                io.Image.Input("images", tooltip="The original video's frames (their count is what the plan is for)."),
                _fps_input(),
                _context_input(),
                io.Audio.Input("original_audio", optional=True, tooltip=_ORIGINAL_AUDIO_TOOLTIP),
            ],
            outputs=_plan_outputs(),
            is_output_node=True,
        )

    @classmethod
    def execute(
        cls, original_words: str, edited_words: str, edited_audio: dict, images: torch.Tensor, fps: float,
        context_frames: int, original_audio: dict | None = None,
    ) -> io.NodeOutput:  # fmt: skip
        frames, fps = _source(images, fps)
        edited_s = _duration(edited_audio, "edited_audio")
        original_s = frames / fps if original_audio is None else _duration(original_audio, "original_audio")
        original_name = "the video's duration" if original_audio is None else "original_audio"
        plan = make_plan(
            fps=fps, source_frames=frames, original_duration_s=original_s, edited_duration_s=edited_s,
            original_words=_words(original_words, "original_words", original_s, original_name),
            edited_words=_words(edited_words, "edited_words", edited_s, "edited_audio"),
            context_frames=int(context_frames),
        )  # fmt: skip
        return plan_output(plan, cls, original_audio, edited_audio)


class FacEDiTManualEditPlan(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FacEDiTManualEditPlan",
            display_name="FacEDiT Manual Edit Plan",
            category=CATEGORY,
            description=(
                "Plans an edit without word timestamps: each line 'start end new_duration' says that the span "
                "[start, end] of the ORIGINAL speech (seconds) was replaced by new_duration seconds of new speech "
                "(0 = deletion; start = end = insertion), as F5-TTS's speech editing takes it. Otherwise like "
                "FacEDiT Edit Plan."
            ),
            inputs=[
                io.String.Input(
                    "spans",
                    multiline=True,
                    default="",
                    tooltip="One edit per line: 'start end new_duration' in seconds of the original speech, in "
                    "time order, e.g. '2.19 2.87 1.1'. '#' starts a comment.",
                ),
                io.Audio.Input(
                    "edited_audio",
                    tooltip="The edited speech; its duration sets the new video's length. When it differs from "
                    "what the spans imply by more than half a frame, see 'fit'.",
                ),
                io.Image.Input("images", tooltip="The original video's frames (their count is what the plan is for)."),
                _fps_input(),
                _context_input(),
                io.Audio.Input("original_audio", optional=True, tooltip=_ORIGINAL_AUDIO_TOOLTIP),
                io.Combo.Input(
                    "fit",
                    options=list(FITS),
                    default="exact",
                    optional=True,
                    tooltip="When the edited speech is longer or shorter than the spans imply (by more than half a "
                    "frame): 'exact' stops with both durations, so that you can correct the spans; 'stretch_last' "
                    "gives the difference to the last span, with a warning.",
                ),  # fmt: skip
            ],
            outputs=_plan_outputs(),
            is_output_node=True,
        )

    @classmethod
    def execute(
        cls, spans: str, edited_audio: dict, images: torch.Tensor, fps: float, context_frames: int,
        original_audio: dict | None = None, fit: str = "exact",
    ) -> io.NodeOutput:  # fmt: skip
        frames, fps = _source(images, fps)
        edited_s = _duration(edited_audio, "edited_audio")
        original_s = frames / fps if original_audio is None else _duration(original_audio, "original_audio")
        plan = make_plan(
            fps=fps, source_frames=frames, original_duration_s=original_s, edited_duration_s=edited_s,
            spans=parse_spans(spans), context_frames=int(context_frames), fit=fit,
        )  # fmt: skip
        return plan_output(plan, cls, original_audio, edited_audio)


class FacEDiTGenerationPlan(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FacEDiTGenerationPlan",
            display_name="FacEDiT Generation Plan",
            category=CATEGORY,
            description=(
                "Plans a talking clip from a portrait: the new video lasts as long as the speech, the first "
                "prompt_frames keep the portrait's own motion and every later frame gets motion generated from "
                "the speech, rendered from the portrait's appearance."
            ),
            inputs=[
                io.Audio.Input("speech", tooltip="The speech the portrait should say (encode the same audio)."),
                io.Float.Input(
                    "fps",
                    default=25.0,
                    min=1.0,
                    max=240.0,
                    step=0.01,
                    tooltip="Frame rate of the new video (use the same value in CreateVideo).",
                ),
                io.Int.Input(
                    "prompt_frames",
                    default=1,
                    min=1,
                    max=10000,
                    tooltip="Frames given as the prompt: 1 for a portrait. For a short prompt clip, the speech "
                    "must start with the clip's own speech.",
                ),
            ],
            outputs=_plan_outputs(),
            is_output_node=True,
        )

    @classmethod
    def execute(cls, speech: dict, fps: float, prompt_frames: int = 1) -> io.NodeOutput:
        plan = plan_generation(_duration(speech, "speech"), fps=float(fps), prompt_frames=int(prompt_frames))
        return plan_output(plan, cls, None, speech)


NODES = [FacEDiTEditPlan, FacEDiTManualEditPlan, FacEDiTGenerationPlan]

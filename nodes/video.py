"""Save node: the edited clip written by smart render (untouched GOPs copied from the source file)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..facedit.edits import EditPlan
from ..facedit.video import OUTPUT_KINDS, OutputFormat, write_edited_video
from . import _comfy
from ._comfy import io
from .types import CATEGORY, PlanType, check_inputs

CONTAINERS = ("mp4", "mov", "mkv")
PIX_FMTS = ("auto", "yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p10le")


def source_path(video: Any) -> str:
    """The file behind a VIDEO input (Load Video gives one) or a path string."""
    if isinstance(video, (str, os.PathLike)):
        path = os.fspath(video)
    else:
        getter = getattr(video, "get_stream_source", None)
        path = getter() if getter is not None else None
        if not isinstance(path, (str, os.PathLike)):
            raise ValueError(
                "source_video: FacEDiT Save Edited Video copies packets from the source FILE; connect the Load "
                "Video node's output (a video held only in memory has no file to copy from)"
            )
        path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"source_video: the file {path} does not exist")
    return path


def next_free_path(folder: Path, prefix: str, ext: str) -> Path:
    base = folder / prefix
    base.parent.mkdir(parents=True, exist_ok=True)
    index = 1
    while True:
        path = base.parent / f"{base.name}_{index:05d}.{ext}"
        if not path.exists():
            return path
        index += 1


class FacEDiTSaveEditedVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FacEDiTSaveEditedVideo",
            display_name="FacEDiT Save Edited Video",
            category=CATEGORY,
            description=(
                "Writes the edited clip. By default every GOP of the source that the edit does not touch is "
                "copied packet for packet (bit-identical frames) and only the GOPs that meet an edit are "
                "re-encoded like the source. Other formats re-encode everything (lossless, ProRes, H.264/H.265)."
            ),
            inputs=[
                io.Video.Input("source_video", tooltip="The original video (Load Video): its packets are copied."),
                PlanType.Input("plan", tooltip="The edit plan these frames were made for."),
                io.Image.Input("images", tooltip="The rendered frames of the new timeline (FacEDiT Render)."),
                io.Audio.Input("audio", tooltip="The edited speech; cut or padded to the video's length."),
                io.String.Input("filename_prefix", default="facedit/edited", tooltip="Path under ComfyUI/output."),
                io.Combo.Input(
                    "format",
                    options=list(OUTPUT_KINDS),
                    default="same",
                    tooltip="same: copy untouched GOPs, re-encode the rest like the source. lossless: FFV1 in mkv "
                    "or x264 qp 0 yuv444p. prores_hq / prores_4444: mov for editors. h264 / h265: CRF below.",
                ),  # fmt: skip
                io.Combo.Input(
                    "container",
                    options=list(CONTAINERS),
                    default="mp4",
                    tooltip="mp4 carries AAC audio (resampled to an AAC rate); mov and mkv carry PCM at the "
                    "speech's own rate. ProRes needs mov.",
                ),  # fmt: skip
                io.Int.Input(
                    "crf",
                    default=18,
                    min=0,
                    max=51,
                    tooltip="Quality for format h264 / h265 (lower is better; 18 looks lossless).",
                ),  # fmt: skip
                io.Combo.Input(
                    "pix_fmt",
                    options=list(PIX_FMTS),
                    default="auto",
                    optional=True,
                    tooltip="Pixel format of a full re-encode (not for format same, which keeps the source's). "
                    "auto: the format's default: yuv420p for h264 / h265 (yuv444p for odd sizes), yuv444p for "
                    "lossless, yuv422p10le / yuv444p10le for ProRes HQ / 4444.",
                ),  # fmt: skip
            ],
            outputs=[
                io.String.Output(display_name="path", tooltip="The written file."),
                io.String.Output(
                    display_name="report",
                    tooltip="How it was written: which source GOPs were copied packet for packet (bit-identical "
                    "frames) and which target frames were re-encoded, and why a smart render fell back.",
                ),
            ],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, source_video, plan: EditPlan, images, audio, filename_prefix: str, format: str,
                container: str, crf: int, pix_fmt: str = "auto") -> io.NodeOutput:  # fmt: skip
        check_inputs("FacEDiT Save Edited Video", plan=(plan, "FACEDIT_PLAN"))
        if pix_fmt not in PIX_FMTS:
            raise ValueError(f"pix_fmt: expected one of {PIX_FMTS}, got {pix_fmt!r}")
        output = OutputFormat(kind=format, crf=crf, pix_fmt=None if pix_fmt == "auto" else pix_fmt)
        src = source_path(source_video)
        frames = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
        if frames.ndim != 4 or frames.shape[0] != plan.target_frames:
            raise ValueError(f"images: expected the plan's {plan.target_frames} frames [T, H, W, 3], got "
                             f"shape {tuple(frames.shape)}")  # fmt: skip
        if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
            raise ValueError("audio: expected an AUDIO dict with 'waveform' [B, C, S] and 'sample_rate'")
        wave = audio["waveform"][0].float().cpu().numpy()
        out = next_free_path(_comfy.output_directory(), filename_prefix, container)
        report = write_edited_video(out, src, plan, frames, audio=wave, sample_rate=int(audio["sample_rate"]),
                                    output=output, progress=_comfy.progress(len(frames)))  # fmt: skip
        text = "\n".join([report.summary(), *report.messages])
        return io.NodeOutput(str(report.path), text, ui=_comfy.saved_video_ui(Path(report.path), text))


NODES = [FacEDiTSaveEditedVideo]

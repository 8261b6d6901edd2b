"""The pack's custom socket types and the values that travel through them.

A link joins two sockets only when their type strings are equal, so each kind of value gets its own type:

- ``FACEDIT_LIVEPORTRAIT``, ``FACEDIT_WAVLM``, ``FACEDIT_MODEL``: a :class:`LoadedModel` (the model, the device it
  runs on, where it came from).
- ``FACEDIT_CROP``: a ``facedit.liveportrait.CropTrack`` (one crop square per frame).
- ``FACEDIT_MOTION``: a ``facedit.liveportrait.MotionTrack``; rows that were never extracted are NaN.
- ``FACEDIT_SPEECH``: ``facedit.speech.SpeechFeatures``.
- ``FACEDIT_PLAN``: ``facedit.edits.EditPlan``.
- ``FACEDIT_WHISPER``, ``FACEDIT_CTC``: a :class:`LoadedModel` of a ``facedit.speech.transcribe.Whisper`` / a
  ``facedit.speech.align.CTCAligner``.

Word timestamps travel as STRING (a JSON list of {word, start, end}), so that any node's words input accepts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ._comfy import io

LivePortraitType = io.Custom("FACEDIT_LIVEPORTRAIT")
WavLMType = io.Custom("FACEDIT_WAVLM")
ModelType = io.Custom("FACEDIT_MODEL")
CropType = io.Custom("FACEDIT_CROP")
MotionType = io.Custom("FACEDIT_MOTION")
SpeechType = io.Custom("FACEDIT_SPEECH")
PlanType = io.Custom("FACEDIT_PLAN")
WhisperType = io.Custom("FACEDIT_WHISPER")
CTCType = io.Custom("FACEDIT_CTC")

CATEGORY = "FacEDiT"
PRECISIONS = ["fp32", "fp16", "bf16"]
DEVICES = ["auto", "cpu", "cuda", "mps"]


@dataclass(eq=False)
class LoadedModel:
    """A model as a loader node hands it on: ``model`` rests on ``offload`` and runs on ``device``."""

    kind: str
    model: Any
    device: torch.device
    offload: torch.device
    dtype: torch.dtype
    source: str

    def module(self) -> torch.nn.Module:
        """The torch module to move between devices (WavLM wraps a transformers model)."""
        return self.model.model if self.kind in ("wavlm", "whisper", "ctc") else self.model

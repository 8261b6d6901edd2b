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
LIVEPORTRAIT_PRECISIONS = ["fp32", "fast", "fp16", "bf16"]
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
        """The torch module to move between devices (WavLM wraps a transformers model; F5-TTS comes with its
        vocoder as one bundle)."""
        if self.kind in ("wavlm", "whisper", "ctc"):
            return self.model.model
        if self.kind == "f5tts":
            return self.model.modules
        return self.model


def _is(class_name: str) -> Any:
    """By class name: the library may be imported twice (as the pack's ``facedit`` and as top-level ``facedit``
    in scripts and tests), and a value made by one copy is still the right kind for the other."""
    return lambda v: any(c.__name__ == class_name for c in type(v).__mro__)


def _expected() -> dict[str, tuple[str, Any]]:
    def model(*kinds: str) -> Any:
        return lambda v: _is("LoadedModel")(v) and v.kind in kinds

    return {
        "FACEDIT_LIVEPORTRAIT": ("a LivePortrait model (FacEDiT LivePortrait Loader)", model("liveportrait")),
        "FACEDIT_WAVLM": ("a WavLM model (FacEDiT WavLM Loader)", model("wavlm")),
        "FACEDIT_MODEL": ("a FacEDiT model or the JoyVASA prior (FacEDiT Model Loader)", model("facedit", "joyvasa")),
        "FACEDIT_CROP": ("a CROP track (FacEDiT Face Crop)", _is("CropTrack")),
        "FACEDIT_MOTION": ("a MOTION track (FacEDiT Extract Motion / Infill)", _is("MotionTrack")),
        "FACEDIT_SPEECH": ("SPEECH features (FacEDiT Speech Features)", _is("SpeechFeatures")),
        "FACEDIT_PLAN": ("an edit PLAN (FacEDiT Edit Plan)", _is("EditPlan")),
        "FACEDIT_WHISPER": ("a Whisper model (FacEDiT Whisper Loader)", model("whisper")),
        "FACEDIT_CTC": ("a CTC aligner (FacEDiT CTC Aligner Loader)", model("ctc")),
        "FACEDIT_F5TTS": ("F5-TTS and Vocos (FacEDiT F5-TTS Loader)", model("f5tts")),
    }


def _what(value: Any) -> str:
    if isinstance(value, LoadedModel):
        return f"a {value.kind} model"
    return f"a {type(value).__name__}"


def check_inputs(node: str, **inputs: tuple[Any, str]) -> None:
    """Refuse a value of another kind at the node boundary (a graph edited by hand, or an API prompt, can link any
    output anywhere): ``name=(value, "FACEDIT_...")``; None passes (optional inputs)."""
    expected = _expected()
    for name, (value, kind) in inputs.items():
        what, ok = expected[kind]
        if value is not None and not ok(value):
            raise TypeError(f"{node}: input '{name}' expects {what}, got {_what(value)}")

"""Speech encoding node: WavLM features of an AUDIO input, with their exact timing."""

from __future__ import annotations

from typing import Any

from ..facedit.pipeline import audio_duration
from . import _comfy
from ._comfy import io
from .types import CATEGORY, LoadedModel, SpeechType, WavLMType, check_inputs


class FacEDiTSpeechEncode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FacEDiTSpeechEncode",
            display_name="FacEDiT Speech Encode",
            category=CATEGORY,
            description=(
                "Encodes speech with WavLM (any sample rate or channel count; mixed to mono and resampled to "
                "16 kHz). Each feature frame carries its exact time, so motion and speech stay aligned at any "
                "video fps. Long audio is encoded in overlapping windows. Encode the EDITED speech (the one the "
                "new video will play)."
            ),
            inputs=[
                WavLMType.Input("wavlm", tooltip="From FacEDiT WavLM Loader."),
                io.Audio.Input("audio", tooltip="The speech to encode (for editing: the edited speech)."),
                io.Int.Input(
                    "layer",
                    default=-1,
                    min=-1,
                    max=48,
                    tooltip="Which WavLM layer's features to use: -1 = the model's output (what FacEDiT is "
                    "trained on unless its model card says otherwise), 0 = the transformer input, k = layer k.",
                ),
                io.Float.Input(
                    "chunk_s",
                    default=20.0,
                    min=6.0,
                    max=120.0,
                    step=1.0,
                    tooltip="Audio longer than this many seconds is encoded in overlapping windows (attention "
                    "cost grows with the square of the length). 20 s suits any GPU and CPU.",
                ),
            ],
            outputs=[SpeechType.Output(display_name="speech", tooltip="Speech features with their frame times.")],
        )

    @classmethod
    def execute(
        cls, wavlm: LoadedModel, audio: dict[str, Any], layer: int = -1, chunk_s: float = 20.0
    ) -> io.NodeOutput:
        check_inputs("FacEDiT Speech Encode", wavlm=(wavlm, "FACEDIT_WAVLM"))
        audio_duration(audio)  # a clear error for anything that is not a ComfyUI AUDIO dict
        with _comfy.on_device(wavlm.module(), wavlm.device, wavlm.offload):
            _comfy.check_interrupted()
            features = wavlm.model.encode(
                audio, layer="last" if layer == -1 else int(layer), chunk_s=float(chunk_s), progress=_comfy.progress(1)
            )
        return io.NodeOutput(features)


NODES = [FacEDiTSpeechEncode]

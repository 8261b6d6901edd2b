"""Speech editing nodes: the F5-TTS + Vocos loader and FacEDiT Speech Edit (re-speak the changed words)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..facedit.liveportrait import resolve_dtype
from ..facedit.pipeline import audio_duration
from ..facedit.timestamps import TimestampError, parse_words, words_to_list
from ..facedit.tts import F5TTS, Vocos, edit_speech, load_f5tts, load_vocos
from . import _comfy
from ._comfy import io
from .loaders import _cached, _resting_device, _signature, run_device
from .types import CATEGORY, DEVICES, PRECISIONS, LoadedModel, check_inputs

F5TTSType = io.Custom("FACEDIT_F5TTS")
F5_REPO, F5_FILE, F5_VOCAB = "SWivid/F5-TTS", "F5TTS_v1_Base/model_1250000.safetensors", "F5TTS_v1_Base/vocab.txt"
VOCOS_REPO, VOCOS_NAME = "charactr/vocos-mel-24khz", "vocos-mel-24khz"


@dataclass(eq=False)
class SpeechEditModels:
    f5: F5TTS
    vocoder: Vocos

    @property
    def modules(self) -> torch.nn.Module:
        return torch.nn.ModuleDict({"f5": self.f5.model, "vocoder": self.vocoder})


def _hub_file(repo: str, filename: str, folder: Path) -> Path:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as err:
        raise ImportError("downloading models needs huggingface_hub: pip install huggingface_hub") from err
    return Path(hf_hub_download(repo_id=repo, filename=filename, local_dir=str(folder)))


def f5_choices() -> list[str]:
    found = _comfy.list_model_files("f5tts", (".safetensors", ".pt"))
    return sorted({F5_FILE, *found})


def vocos_choices() -> list[str]:
    found = _comfy.list_model_folders("vocos", lambda p: (p / "config.yaml").is_file())
    return sorted({VOCOS_NAME, *found})


class FacEDiTF5TTSLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FacEDiTF5TTSLoader",
            display_name="FacEDiT F5-TTS Loader",
            category=f"{CATEGORY}/loaders",
            description=(
                "Loads F5-TTS (a checkpoint under ComfyUI/models/f5tts with its vocab.txt beside it) and the Vocos "
                "24 kHz mel vocoder (a folder under ComfyUI/models/vocos with config.yaml + pytorch_model.bin) "
                "for FacEDiT Speech Edit. The pack's own implementation: no f5-tts package, no torchaudio."
            ),
            inputs=[
                io.Combo.Input(
                    "checkpoint",
                    options=f5_choices(),
                    default=F5_FILE,
                    tooltip="F5-TTS checkpoint under models/f5tts; vocab.txt must lie in the same folder. "
                    f"'{F5_FILE}' is where the download goes.",
                ),
                io.Combo.Input(
                    "vocoder",
                    options=vocos_choices(),
                    default=VOCOS_NAME,
                    tooltip=f"Vocos folder under models/vocos (config.yaml + pytorch_model.bin); '{VOCOS_NAME}' "
                    "is where the download goes.",
                ),
                io.Combo.Input(
                    "precision",
                    options=PRECISIONS,
                    default="fp32",
                    tooltip="Weight precision of F5-TTS; fp16/bf16 save memory on a GPU. Vocos stays fp32.",
                ),
                io.Combo.Input("device", options=DEVICES, default="auto", tooltip="Where F5-TTS and Vocos run."),
                io.Boolean.Input(
                    "download",
                    default=False,
                    tooltip=f"If files are missing, download {F5_REPO} ({F5_FILE}, vocab.txt) and {VOCOS_REPO} "
                    "from Hugging Face into the model folders (needs internet). Off: never touches the network.",
                ),
            ],
            outputs=[F5TTSType.Output(display_name="f5tts", tooltip="F5-TTS with its vocoder.")],
        )

    @classmethod
    def execute(cls, checkpoint: str, vocoder: str, precision: str, device: str, download: bool = False):
        f5_root, vocos_root = _comfy.model_dirs("f5tts")[0], _comfy.model_dirs("vocos")[0]
        if download:
            if checkpoint == F5_FILE and not (f5_root / F5_FILE).is_file():
                _hub_file(F5_REPO, F5_FILE, f5_root)
            if checkpoint == F5_FILE and not (f5_root / F5_VOCAB).is_file():
                _hub_file(F5_REPO, F5_VOCAB, f5_root)
            if vocoder == VOCOS_NAME:
                for name in ("config.yaml", "pytorch_model.bin"):
                    if not (vocos_root / VOCOS_NAME / name).is_file():
                        _hub_file(VOCOS_REPO, name, vocos_root / VOCOS_NAME)
        expected = (
            "Expected an F5-TTS checkpoint (.safetensors or .pt, its vocab.txt beside it) under models/f5tts; switch "
            f"'download' on to fetch {F5_REPO}'s {F5_FILE} there (needs internet), or download it yourself."
        )
        ckpt = _comfy.resolve_model_path("f5tts", checkpoint, expected)
        vocab = ckpt.parent / "vocab.txt"
        if not vocab.is_file():
            how = "copy the vocab.txt the checkpoint was trained with there"
            if checkpoint == F5_FILE:
                how = f"switch 'download' on to fetch {F5_REPO}'s {F5_VOCAB} there (needs internet)"
            raise FileNotFoundError(f"checkpoint: {ckpt.name} needs its vocab.txt beside it ({vocab} is missing); "
                                    f"{how}")  # fmt: skip
        vocos_dir = _comfy.resolve_model_path("vocos", vocoder, "Expected a Vocos folder (config.yaml + "
                                              "pytorch_model.bin) under models/vocos; switch 'download' on to fetch "
                                              f"{VOCOS_REPO} into models/vocos/{VOCOS_NAME} (needs internet), or "
                                              "download it there yourself.")  # fmt: skip
        dtype = resolve_dtype(precision)
        run_on = run_device(device)
        files = [ckpt, vocab, vocos_dir / "config.yaml", vocos_dir / "pytorch_model.bin"]
        key = (str(ckpt), str(vocos_dir), _signature(files), dtype, str(run_on))

        def load() -> LoadedModel:
            rest = _resting_device(run_on)
            models = SpeechEditModels(
                load_f5tts(ckpt, vocab, device=rest, dtype=dtype), load_vocos(vocos_dir, device=rest)
            )
            return LoadedModel("f5tts", models, run_on, rest, dtype, str(ckpt))

        return io.NodeOutput(_cached("f5tts", key, load))


def parse_durations(text: str) -> list[float | None] | None:
    """'' -> automatic; '1.2, auto, 0.8' -> one length in seconds (or auto) per changed region."""
    text = (text or "").strip()
    if not text:
        return None
    out: list[float | None] = []
    for k, part in enumerate(p.strip() for p in text.replace(";", ",").split(",")):
        if part.lower() in ("", "auto"):
            out.append(None)
            continue
        try:
            out.append(float(part))
        except ValueError as err:
            raise ValueError(f"durations: item {k + 1} {part!r} is neither seconds nor 'auto'") from err
    return out


class FacEDiTSpeechEdit(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FacEDiTSpeechEdit",
            display_name="FacEDiT Speech Edit",
            category=CATEGORY,
            description=(
                "Re-speaks only the words that differ between the original transcript and the edited text, in "
                "the original voice (F5-TTS flow-matching infill of the mel, Vocos vocoder). Every sample outside "
                "the changed words is the original's (cross-faded over a few ms at the seams). Outputs the edited "
                "speech at the original sample rate and its words with times, ready for FacEDiT Edit Plan."
            ),
            inputs=[
                F5TTSType.Input("f5tts", tooltip="From FacEDiT F5-TTS Loader."),
                io.Audio.Input("audio", tooltip="The original speech (any sample rate or channel count)."),
                io.String.Input(
                    "words",
                    multiline=True,
                    default="",
                    tooltip="The original speech's words with times (from Transcribe, or WhisperX / whisper JSON, "
                    "or 'start end word' lines).",
                ),
                io.String.Input(
                    "edited_text",
                    multiline=True,
                    default="",
                    tooltip="The edited transcript. Words that match the original keep their audio; the others are "
                    "synthesised (a deletion is a cross-faded cut).",
                ),
                io.String.Input(
                    "durations",
                    default="",
                    tooltip="Optional seconds per changed region, in order, e.g. '1.2, auto'. Empty: F5-TTS's rule "
                    "(the original's speaking rate per character).",
                ),
                io.Float.Input(
                    "speed",
                    default=1.0,
                    min=0.3,
                    max=3.0,
                    step=0.05,
                    tooltip="Speaking rate of the automatic durations: 1.2 makes new words 20% shorter.",
                ),
                io.Int.Input("steps", default=32, min=1, max=128, tooltip="Flow-matching steps (F5-TTS uses 32)."),
                io.Float.Input(
                    "guidance",
                    default=2.0,
                    min=0.0,
                    max=10.0,
                    step=0.1,
                    tooltip="Classifier-free guidance strength (F5-TTS's cfg_strength, default 2).",
                ),
                io.Float.Input(
                    "sway",
                    default=-1.0,
                    min=-1.0,
                    max=1.0,
                    step=0.1,
                    tooltip="Sway sampling coefficient: -1 puts more steps early (F5-TTS's default).",
                ),
                io.Int.Input("seed", default=0, min=0, max=2**31 - 1, tooltip="Noise seed; the same seed repeats."),
                io.Float.Input(
                    "crossfade_ms",
                    default=5.0,
                    min=0.0,
                    max=50.0,
                    step=0.5,
                    tooltip="Cross-fade at each seam between original and synthesised audio.",
                ),
            ],
            outputs=[
                io.Audio.Output(display_name="audio", tooltip="The edited speech at the original sample rate."),
                io.String.Output(display_name="words", tooltip="The edited speech's words with times (JSON)."),
            ],
        )

    @classmethod
    def execute(
        cls,
        f5tts: LoadedModel,
        audio: dict[str, Any],
        words: str,
        edited_text: str,
        durations: str = "",
        speed: float = 1.0,
        steps: int = 32,
        guidance: float = 2.0,
        sway: float = -1.0,
        seed: int = 0,
        crossfade_ms: float = 5.0,
    ) -> io.NodeOutput:
        check_inputs("FacEDiT Speech Edit", f5tts=(f5tts, "FACEDIT_F5TTS"))
        try:
            seconds = audio_duration(audio)
        except ValueError as err:
            raise ValueError(f"audio: {err}") from err
        if not (words or "").strip():
            raise ValueError("words: give the original speech's word timestamps (connect FacEDiT Transcribe)")
        try:
            original = parse_words(words, duration_s=seconds)
        except TimestampError as err:
            raise ValueError(f"words (checked against audio, {seconds:.3f} s): {err}") from err
        models: SpeechEditModels = f5tts.model
        with _comfy.on_device(models.modules, f5tts.device, f5tts.offload):
            result = edit_speech(
                audio,
                original,
                edited_text,
                models.f5,
                models.vocoder,
                durations=parse_durations(durations),
                speed=speed,
                steps=int(steps),
                guidance=guidance,
                sway=sway,
                seed=int(seed),
                crossfade_ms=crossfade_ms,
                progress=_comfy.progress(int(steps)),
                cancel=_comfy.check_interrupted,
            )
        for e in result.edits:
            _comfy.log.info(
                "speech edit: %s %s -> %s at %.2f-%.2f s", e.type, e.original_words, e.edited_words, *e.edited
            )
        return io.NodeOutput(result.audio, json.dumps(words_to_list(result.words)))


NODES = [FacEDiTF5TTSLoader, FacEDiTSpeechEdit]

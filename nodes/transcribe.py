"""Transcription nodes: Whisper and CTC loaders, Transcribe (speech -> words with times) and Align (speech +
transcript -> words with times).

Words leave these nodes as STRING, a JSON list of {word, start, end, interpolated}, which every words input of
the pack reads. Transcribe also sends ``ui["facedit_transcript"] = [text]``, shown on the node by the web extension.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..facedit.liveportrait import resolve_dtype
from ..facedit.pipeline import audio_duration
from ..facedit.speech.align import DEFAULT_CTC_REPO, load_aligner
from ..facedit.speech.transcribe import DEFAULT_WHISPER_REPO, MAX_CHUNK_S, align_transcript, load_whisper
from ..facedit.timestamps import Word, words_to_list
from . import _comfy
from ._comfy import io
from .loaders import _cached, _resting_device, _signature, run_device
from .types import CATEGORY, DEVICES, PRECISIONS, CTCType, LoadedModel, WhisperType, check_inputs

WHISPER_DOWNLOAD_NAME = "whisper-small"
CTC_DOWNLOAD_NAME = "wav2vec2-base-960h"


def _folder_choices(kind: str, download_name: str) -> list[str]:
    found = [f for f in _comfy.list_model_folders(kind, lambda p: (p / "config.json").is_file()) if f != "."]
    return sorted(set(found + [download_name]))


_EXPECTED = {
    "whisper": ("a Hugging Face Whisper folder (config.json, generation_config.json, preprocessor_config.json, "
                "the tokenizer files, model.safetensors)", DEFAULT_WHISPER_REPO, WHISPER_DOWNLOAD_NAME),
    "ctc": ("a Hugging Face CTC folder (config.json, vocab.json, model.safetensors or pytorch_model.bin)",
            DEFAULT_CTC_REPO, CTC_DOWNLOAD_NAME),
}  # fmt: skip


def _folder_path(kind: str, name: str, download: bool) -> Path:
    if download:
        return _comfy.model_dirs(kind)[0] / name
    what, repo, default = _EXPECTED[kind]
    return _comfy.resolve_model_path(kind, name, f"Expected {what} under models/{kind}; switch 'download' on to "
                                     f"fetch {repo} into models/{kind}/{default} (needs internet), or download it "
                                     "there yourself.")  # fmt: skip


def _loader_inputs(kind: str, download_name: str, repo: str) -> list:
    return [
        io.Combo.Input(
            "model",
            options=_folder_choices(kind, download_name),
            default=download_name,
            tooltip=f"A Hugging Face folder under models/{kind}. '{download_name}' is where the download goes.",
        ),
        io.Combo.Input("precision", options=PRECISIONS, default="fp32", tooltip="Weight precision; fp32 is safe."),
        io.Combo.Input("device", options=DEVICES, default="auto", tooltip="Where it runs: auto follows ComfyUI."),
        io.Boolean.Input(
            "download",
            default=False,
            tooltip=f"If the chosen folder is missing, download {repo} from Hugging Face into it (needs internet). "
            "Off: never touches the network.",
        ),
    ]


def _load_folder(kind: str, model: str, precision: str, device: str, download: bool, loader: Any) -> LoadedModel:
    path = _folder_path(kind, model, download)
    dtype = resolve_dtype(precision)
    run_on = run_device(device)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else []
    key = (str(path), _signature(files), dtype, str(run_on))

    def load() -> LoadedModel:
        rest = _resting_device(run_on)
        return LoadedModel(
            kind, loader(path, device=rest, dtype=dtype, download=download), run_on, rest, dtype, str(path)
        )

    return _cached(kind, key, load)


class FacEDiTWhisperLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FacEDiTWhisperLoader",
            display_name="FacEDiT Whisper Loader",
            category=f"{CATEGORY}/loaders",
            description=(
                "Loads a Whisper speech recogniser (a Hugging Face folder such as openai/whisper-small) from "
                "ComfyUI/models/whisper, for FacEDiT Transcribe. Nothing is downloaded unless 'download' says so."
            ),
            inputs=_loader_inputs("whisper", WHISPER_DOWNLOAD_NAME, DEFAULT_WHISPER_REPO),
            outputs=[WhisperType.Output(display_name="whisper", tooltip="The Whisper recogniser.")],
        )

    @classmethod
    def execute(cls, model: str, precision: str, device: str, download: bool = False) -> io.NodeOutput:
        load = lambda path, **kw: load_whisper(path, repo_id=DEFAULT_WHISPER_REPO, **kw)  # noqa: E731
        return io.NodeOutput(_load_folder("whisper", model, precision, device, download, load))


class FacEDiTCTCLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FacEDiTCTCLoader",
            display_name="FacEDiT CTC Aligner Loader",
            category=f"{CATEGORY}/loaders",
            description=(
                "Loads a CTC speech model (a Hugging Face folder such as facebook/wav2vec2-base-960h) from "
                "ComfyUI/models/ctc for forced alignment: sharper word boundaries than Whisper's."
            ),
            inputs=_loader_inputs("ctc", CTC_DOWNLOAD_NAME, DEFAULT_CTC_REPO),
            outputs=[CTCType.Output(display_name="aligner", tooltip="The CTC aligner.")],
        )

    @classmethod
    def execute(cls, model: str, precision: str, device: str, download: bool = False) -> io.NodeOutput:
        load = lambda path, **kw: load_aligner(path, repo_id=DEFAULT_CTC_REPO, **kw)  # noqa: E731
        return io.NodeOutput(_load_folder("ctc", model, precision, device, download, load))


def _words_output(words: list[Word]) -> tuple[str, str]:
    return json.dumps(words_to_list(words), indent=1), " ".join(w.text for w in words)


def _audio(audio: Any) -> None:
    try:
        audio_duration(audio)
    except ValueError as err:
        raise ValueError(f"audio: {err}") from err


class FacEDiTTranscribe(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FacEDiTTranscribe",
            display_name="FacEDiT Transcribe",
            category=CATEGORY,
            description=(
                "Word timestamps of speech with Whisper (any sample rate or channel count; long audio in windows), "
                "refined by a CTC forced alignment when an aligner is connected. The transcript is shown on the "
                "node after a run, with a button that copies it into a FacEDiT Speech Edit node's text."
            ),
            inputs=[
                WhisperType.Input("whisper", tooltip="From FacEDiT Whisper Loader."),
                io.Audio.Input("audio", tooltip="The speech to transcribe (for editing: the video's own speech)."),
                io.String.Input(
                    "language",
                    default="",
                    tooltip="Whisper language name or code (e.g. 'english', 'en'); empty lets Whisper detect it.",
                ),
                io.Float.Input(
                    "chunk_s",
                    default=MAX_CHUNK_S,
                    min=1.0,
                    max=MAX_CHUNK_S,
                    step=1.0,
                    tooltip="Longest window Whisper is given (it sees 30 s at once); cuts go at quiet moments.",
                ),
                CTCType.Input(
                    "aligner",
                    optional=True,
                    tooltip="Optional, from FacEDiT CTC Aligner Loader: replaces Whisper's word times with a forced "
                    "alignment (sharper boundaries). The model must know the language's letters.",
                ),
            ],
            outputs=[
                io.String.Output(
                    display_name="words",
                    tooltip="Word timestamps (JSON list of word, start, end): connect to Edit Plan or Speech Edit.",
                ),
                io.String.Output(display_name="text", tooltip="The transcript as plain text."),
            ],
            is_output_node=True,
        )

    @classmethod
    def execute(
        cls, whisper: LoadedModel, audio: dict, language: str = "", chunk_s: float = MAX_CHUNK_S,
        aligner: LoadedModel | None = None,
    ) -> io.NodeOutput:  # fmt: skip
        check_inputs("FacEDiT Transcribe", whisper=(whisper, "FACEDIT_WHISPER"), aligner=(aligner, "FACEDIT_CTC"))
        _audio(audio)
        with _comfy.on_device(whisper.module(), whisper.device, whisper.offload):
            words = whisper.model.transcribe(
                audio, language=language.strip() or None, chunk_s=float(chunk_s), progress=_comfy.progress(1)
            )
        if aligner is not None:
            with _comfy.on_device(aligner.module(), aligner.device, aligner.offload):
                words = aligner.model.align(audio, " ".join(w.text for w in words))
        words_json, text = _words_output(words)
        return io.NodeOutput(words_json, text, ui={"facedit_transcript": [text]})


class FacEDiTAlign(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FacEDiTAlign",
            display_name="FacEDiT Align Transcript",
            category=CATEGORY,
            description=(
                "Word timestamps for a transcript you already have: CTC forced alignment of its words to the "
                "speech. Characters the model does not know (digits, punctuation) are skipped; a word with none it "
                "knows gets the gap between its neighbours."
            ),
            inputs=[
                CTCType.Input("aligner", tooltip="From FacEDiT CTC Aligner Loader."),
                io.Audio.Input("audio", tooltip="The speech the transcript is of."),
                io.String.Input(
                    "transcript", multiline=True, default="", tooltip="The spoken words, separated by spaces."
                ),
            ],
            outputs=[
                io.String.Output(display_name="words", tooltip="Word timestamps (JSON list of word, start, end)."),
                io.String.Output(display_name="text", tooltip="The aligned transcript as plain text."),
            ],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, aligner: LoadedModel, audio: dict, transcript: str) -> io.NodeOutput:
        check_inputs("FacEDiT Align Transcript", aligner=(aligner, "FACEDIT_CTC"))
        _audio(audio)
        with _comfy.on_device(aligner.module(), aligner.device, aligner.offload):
            words = align_transcript(aligner.model, audio, transcript)
        words_json, text = _words_output(words)
        return io.NodeOutput(words_json, text, ui={"facedit_transcript": [text]})


NODES = [FacEDiTWhisperLoader, FacEDiTCTCLoader, FacEDiTTranscribe, FacEDiTAlign]

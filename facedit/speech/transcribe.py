"""Word timestamps from speech: Whisper (transformers' ASR pipeline, ``return_timestamps="word"``), optionally
refined by the pack's CTC forced aligner, whose boundaries are sharper than Whisper's cross-attention times.

The Whisper model is a local Hugging Face folder (``config.json``, ``generation_config.json`` with
``alignment_heads``, weights, tokenizer and ``preprocessor_config.json``; e.g. openai/whisper-small, downloaded only
when asked). Audio at any rate and channel count is mixed to mono at 16 kHz and cut into windows of at most
``chunk_s`` seconds (Whisper sees 30 s at a time), each cut placed at the quietest 20 ms inside the last
``CUT_SEARCH_S`` seconds of its window so that words are not split. A word whose Whisper time falls outside its
window (Whisper pads every window to 30 s and can point into the padding) keeps its place in the text, gets the
gap between its neighbours and ``interpolated=True``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio import SPEECH_SAMPLE_RATE, to_mono
from ..timestamps import Word, place_untimed
from ..weight_files import named_load_errors
from .align import CTCAligner
from .wavlm import hub_download

DEFAULT_WHISPER_REPO = "openai/whisper-small"
WHISPER_FILES = [
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "normalizer.json",
    "added_tokens.json",
    "special_tokens_map.json",
]
MAX_CHUNK_S = 30.0
CUT_SEARCH_S = 3.0
_CUT_FRAME = 320  # 20 ms at 16 kHz

Progress = Callable[[int, int], None]


def chunk_bounds(samples: np.ndarray, chunk_s: float, rate: int = SPEECH_SAMPLE_RATE) -> list[tuple[int, int]]:
    """[(start, end)) sample ranges covering ``samples`` without gaps, each at most ``chunk_s`` long, cut at the
    quietest 20 ms inside the last ``CUT_SEARCH_S`` s of a full window."""
    if not (np.isfinite(chunk_s) and 1.0 <= chunk_s <= MAX_CHUNK_S):
        raise ValueError(f"chunk_s: expected seconds in 1..{MAX_CHUNK_S:g} (Whisper sees 30 s at once), got {chunk_s}")
    total, width = samples.shape[0], int(round(chunk_s * rate))
    search = min(int(CUT_SEARCH_S * rate), width // 2)
    bounds, start = [], 0
    while total - start > width:
        lo, hi = start + width - search, start + width
        frames = (hi - lo) // _CUT_FRAME
        energy = (samples[lo : lo + frames * _CUT_FRAME].astype(np.float64) ** 2).reshape(frames, _CUT_FRAME).sum(1)
        cut = lo + int(np.argmin(energy)) * _CUT_FRAME + _CUT_FRAME // 2
        bounds.append((start, cut))
        start = cut
    bounds.append((start, total))
    return bounds


@dataclass
class Whisper:
    """A Whisper ASR pipeline and where it came from."""

    pipeline: Any
    source: str

    @property
    def model(self) -> torch.nn.Module:
        return self.pipeline.model

    @torch.no_grad()
    def transcribe(
        self,
        audio: Any,
        sample_rate: int | None = None,
        *,
        language: str | None = None,
        chunk_s: float = MAX_CHUNK_S,
        max_new_tokens: int = 200,
        aligner: CTCAligner | None = None,
        progress: Progress | None = None,
    ) -> list[Word]:
        """Words with times of ``audio`` (ComfyUI AUDIO dict or array + sample_rate), in seconds of the input.

        language: a Whisper language name or code (None lets a multilingual model detect it). aligner: a CTC
        model whose forced alignment of Whisper's words replaces Whisper's times. max_new_tokens: per window,
        at most what the decoder holds.
        """
        mono = to_mono(audio, sample_rate, SPEECH_SAMPLE_RATE)
        bounds = chunk_bounds(mono.samples, chunk_s)
        steps = len(bounds) + (aligner is not None)
        spans: list[tuple[str, float | None, float | None]] = []
        room = int(self.model.config.max_target_positions) - 4  # start, language, task and end tokens
        kwargs: dict[str, Any] = {"max_new_tokens": min(int(max_new_tokens), room), "task": "transcribe"}
        if language:
            kwargs["language"] = language
        for k, (a, b) in enumerate(bounds):
            if progress is not None:
                progress(k, steps)
            out = self.pipeline(
                {"raw": mono.samples[a:b], "sampling_rate": SPEECH_SAMPLE_RATE},
                return_timestamps="word",
                generate_kwargs=kwargs,
            )
            offset, length = a / SPEECH_SAMPLE_RATE, (b - a) / SPEECH_SAMPLE_RATE
            for chunk in out.get("chunks") or []:
                start, end = chunk.get("timestamp") or (None, None)
                inside = start is not None and end is not None and 0 <= start <= end <= length
                for text in str(chunk.get("text", "")).split():
                    spans.append((text, offset + start, offset + end) if inside else (text, None, None))
        if not spans:
            raise ValueError("audio: Whisper heard no words in it")
        words = place_untimed(spans, mono.duration_s)
        if aligner is not None:
            if progress is not None:
                progress(len(bounds), steps)
            words = refine_words(aligner, mono.samples, words, SPEECH_SAMPLE_RATE)
        if progress is not None:
            progress(steps, steps)
        return words


def refine_words(aligner: CTCAligner, audio: Any, words: list[Word], sample_rate: int | None = None) -> list[Word]:
    """The same words with the times of a CTC forced alignment of their text to ``audio``."""
    aligned = aligner.align(audio, " ".join(w.text for w in words), sample_rate)
    if [w.text for w in aligned] != [w.text for w in words]:
        raise ValueError("words: the CTC alignment split the words differently; give words without inner spaces")
    return aligned


def align_transcript(aligner: CTCAligner, audio: Any, transcript: str, sample_rate: int | None = None) -> list[Word]:
    """Word times of a transcript the user already has (words separated by whitespace)."""
    if not isinstance(transcript, str) or not transcript.split():
        raise ValueError("transcript: expected the words that are spoken, separated by spaces; got nothing")
    return aligner.align(audio, transcript, sample_rate)


def _check_whisper_folder(folder: Path, repo_id: str) -> None:
    needed = ["config.json", "generation_config.json", "preprocessor_config.json", "tokenizer_config.json"]
    missing = [n for n in needed if not (folder / n).is_file()]
    weights = [p for p in ("model.safetensors", "pytorch_model.bin") if (folder / p).is_file()]
    weights += [p.name for p in folder.glob("model-*.safetensors")] if folder.is_dir() else []
    if missing or not weights:
        lacks = ", ".join(missing + ([] if weights else ["model.safetensors"]))
        raise FileNotFoundError(
            f"Whisper model folder {folder} lacks {lacks}: give a Hugging Face Whisper folder (e.g. {repo_id}) "
            "or allow its download"
        )


def load_whisper(
    path: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    download: bool = False,
    repo_id: str = DEFAULT_WHISPER_REPO,
) -> Whisper:
    """Whisper from a local Hugging Face folder; ``download=True`` fills a missing folder from ``repo_id``."""
    folder = Path(path).expanduser()
    if download and not (folder / "config.json").is_file():
        hub_download(folder, repo_id, WHISPER_FILES)
    _check_whisper_folder(folder, repo_id)
    import json

    expected = (f"a Hugging Face Whisper folder (config.json, generation_config.json, preprocessor_config.json, "
                f"the tokenizer files, model.safetensors; e.g. {repo_id})")  # fmt: skip
    with named_load_errors(folder / "generation_config.json", expected):
        generation = json.loads((folder / "generation_config.json").read_text(encoding="utf-8"))
    if not generation.get("alignment_heads"):
        raise ValueError(
            f"{folder / 'generation_config.json'}: no alignment_heads, so Whisper cannot give word timestamps; "
            "use the generation_config.json of the published checkpoint"
        )
    from transformers import pipeline

    with named_load_errors(folder, expected):
        asr = pipeline("automatic-speech-recognition", model=str(folder), device=torch.device(device), dtype=dtype)
    asr.model.eval()
    return Whisper(asr, str(folder))

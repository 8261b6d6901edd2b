"""Word timestamps from audio + transcript: CTC forced alignment (Viterbi over the blank-interleaved labels).

The model is any ``transformers`` CTC checkpoint in a local Hugging Face folder (``config.json``,
``vocab.json``, weights; e.g. facebook/wav2vec2-base-960h, downloaded only when asked). Its frame j covers
samples [j H, j H + R) of the 16 kHz input (R, H from the conv stack, 400 and 320 for wav2vec2 / WavLM) and
stands at ``offset_s + j / frame_rate``; a run of frames j0..j1 spans the time
[offset_s + (j0 - 0.5) / frame_rate, offset_s + (j1 + 0.5) / frame_rate], clamped to the audio.

Characters the vocabulary lacks (digits, most punctuation) are left out of the alignment; a word with no
alignable character gets the gap between its neighbours and ``interpolated=True``.
Memory: the Viterbi back-pointers take frames x (2 * characters + 1) bytes (10 min of speech: about 0.5 GB).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio import SPEECH_SAMPLE_RATE, normalize_wave, to_mono
from ..timestamps import Word, place_untimed
from ..weight_files import named_load_errors
from .wavlm import find_folder_weights, frame_count, hub_download, read_weights, receptive_field

DEFAULT_CTC_REPO = "facebook/wav2vec2-base-960h"


class AlignmentError(ValueError):
    """The transcript cannot be aligned to the audio (too short, nothing alignable...)."""


def ctc_viterbi(log_probs: np.ndarray, tokens: Sequence[int], blank: int) -> tuple[np.ndarray, float]:
    """Best CTC path of ``tokens`` through ``log_probs`` [T, V] -> (token index per frame, -1 for blank; score).

    Labels are interleaved with blanks (blank, t1, blank, t2, ..., blank); a frame stays on its label, moves
    to the next one, or skips a blank between two different tokens.
    """
    log_probs = np.asarray(log_probs, dtype=np.float64)
    if log_probs.ndim != 2:
        raise ValueError(f"log_probs: expected [frames, vocabulary], got shape {log_probs.shape}")
    n_frames, vocab = log_probs.shape
    tokens = np.asarray(tokens, dtype=np.int64)
    if tokens.size == 0:
        raise AlignmentError("nothing to align: the transcript has no token the model knows")
    if tokens.min() < 0 or tokens.max() >= vocab or (tokens == blank).any():
        raise ValueError(f"tokens must be ids in 0..{vocab - 1} other than the blank ({blank})")
    repeats = int(np.count_nonzero(tokens[1:] == tokens[:-1]))
    if n_frames < tokens.size + repeats:
        raise AlignmentError(
            f"{n_frames} frames cannot hold {tokens.size} tokens ({repeats} repeated, each needing a blank between): "
            f"the audio is too short for the transcript"
        )
    labels = np.full(2 * tokens.size + 1, blank, dtype=np.int64)
    labels[1::2] = tokens
    n_states = labels.size
    can_skip = np.zeros(n_states, dtype=bool)
    can_skip[3::2] = tokens[1:] != tokens[:-1]
    score = np.full(n_states, -np.inf)
    score[:2] = log_probs[0, labels[:2]]
    back = np.zeros((n_frames, n_states), dtype=np.int8)  # 0 stay, 1 from previous label, 2 skip a blank
    for t in range(1, n_frames):
        stay = score
        step = np.concatenate([[-np.inf], score[:-1]])
        skip = np.where(can_skip, np.concatenate([[-np.inf, -np.inf], score[:-2]]), -np.inf)
        choice = np.argmax(np.stack([stay, step, skip]), axis=0)
        best = np.choose(choice, [stay, step, skip])
        back[t] = choice
        score = best + log_probs[t, labels]
    end = n_states - 1 if score[-1] >= score[-2] else n_states - 2
    total = float(score[end])
    if not np.isfinite(total):
        raise AlignmentError("no CTC path fits (every path has zero probability)")
    path = np.empty(n_frames, dtype=np.int64)
    state = end
    for t in range(n_frames - 1, -1, -1):
        path[t] = state
        state -= int(back[t, state])
    token_of_frame = np.where(path % 2 == 1, path // 2, -1)
    return token_of_frame, total


def words_from_path(
    token_of_frame: np.ndarray,
    word_of_token: Sequence[int],
    words: Sequence[str],
    *,
    frame_rate: float,
    offset_s: float,
    duration_s: float,
) -> list[Word]:
    """Word times from a frame path; words owning no token are placed between their neighbours (flagged)."""
    word_of_token = np.asarray(word_of_token, dtype=np.int64)
    spans: list[tuple[str, float | None, float | None]] = []
    for w, text in enumerate(words):
        frames = np.flatnonzero(np.isin(token_of_frame, np.flatnonzero(word_of_token == w)))
        if frames.size == 0:
            spans.append((text, None, None))
            continue
        start = max(0.0, offset_s + (frames[0] - 0.5) / frame_rate)
        end = min(duration_s, offset_s + (frames[-1] + 0.5) / frame_rate)
        spans.append((text, float(start), float(end)))
    return place_untimed(spans, duration_s)


@dataclass
class CTCAligner:
    """A CTC model and what alignment needs to know about it."""

    model: Any
    vocab: dict[str, int]
    blank: int
    delimiter: int | None
    normalize: bool
    case: str  # "upper", "lower" or "mixed": how transcript letters are matched to the vocabulary

    @property
    def timing(self) -> tuple[int, int]:
        cfg = self.model.config
        return receptive_field(cfg.conv_kernel, cfg.conv_stride)

    def tokenize(self, transcript: str) -> tuple[list[str], list[int], list[int]]:
        """(words, token ids, word index of every token); the word delimiter sits between words."""
        words = transcript.split()
        if not words:
            raise AlignmentError("the transcript is empty")
        ids, owner = [], []
        for w, word in enumerate(words):
            text = word.upper() if self.case == "upper" else word.lower() if self.case == "lower" else word
            chars = [
                self.vocab[c] for c in text if c in self.vocab and self.vocab[c] not in (self.blank, self.delimiter)
            ]
            if chars and ids and self.delimiter is not None:
                ids.append(self.delimiter)
                owner.append(-1)
            ids += chars
            owner += [w] * len(chars)
        return words, ids, owner

    @torch.no_grad()
    def emissions(self, audio: Any, sample_rate: int | None = None) -> tuple[np.ndarray, float, float, float]:
        """(log-probabilities [frames, vocabulary], frame_rate, offset_s, duration_s) of one clip."""
        mono = to_mono(audio, sample_rate, SPEECH_SAMPLE_RATE)
        samples = normalize_wave(mono.samples) if self.normalize else mono.samples
        field, hop = self.timing
        if frame_count(samples.shape[0], field, hop) == 0:
            raise AlignmentError(f"audio: {mono.duration_s:.3f} s is too short for one frame")
        param = next(self.model.parameters())
        logits = self.model(torch.from_numpy(samples).to(param.device, param.dtype)[None]).logits[0]
        log_probs = torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
        return log_probs, SPEECH_SAMPLE_RATE / hop, field / 2 / SPEECH_SAMPLE_RATE, mono.duration_s

    def align(self, audio: Any, transcript: str, sample_rate: int | None = None) -> list[Word]:
        """Word timestamps of ``transcript`` in ``audio`` (ComfyUI AUDIO dict or array + sample_rate)."""
        words, ids, owner = self.tokenize(transcript)
        log_probs, rate, offset, duration = self.emissions(audio, sample_rate)
        path, _ = ctc_viterbi(log_probs, ids, self.blank)
        return words_from_path(path, owner, words, frame_rate=rate, offset_s=offset, duration_s=duration)


def load_aligner(
    path: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    download: bool = False,
    repo_id: str = DEFAULT_CTC_REPO,
) -> CTCAligner:
    """Load a CTC model from a Hugging Face folder (config.json, vocab.json, weights, optional
    preprocessor_config.json / tokenizer_config.json); ``download=True`` fills a missing folder from ``repo_id``."""
    from transformers import AutoConfig, AutoModelForCTC

    folder = Path(path).expanduser()
    if download and not (folder / "config.json").is_file():
        hub_download(
            folder, repo_id, ["config.json", "vocab.json", "preprocessor_config.json", "tokenizer_config.json"]
        )
    for name in ("config.json", "vocab.json"):
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"CTC model folder {folder} lacks {name}: give a Hugging Face CTC checkpoint folder "
                f"(e.g. {repo_id}) or allow its download"
            )
    expected = f"a Hugging Face CTC model folder (config.json, vocab.json, model.safetensors; e.g. {repo_id})"
    with named_load_errors(folder, expected):
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        tokenizer = folder / "tokenizer_config.json"
        tok = json.loads(tokenizer.read_text(encoding="utf-8")) if tokenizer.is_file() else {}
        preprocessor = folder / "preprocessor_config.json"
        normalize = (
            bool(json.loads(preprocessor.read_text()).get("do_normalize", True)) if preprocessor.is_file() else True
        )
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
        raise ValueError(f"{folder / 'vocab.json'}: expected a character -> id mapping")
    blank = config.pad_token_id if config.pad_token_id is not None else vocab.get(tok.get("pad_token", "<pad>"))
    if blank is None:
        raise ValueError(f"{folder}: cannot tell the CTC blank (no pad_token_id in config.json, no <pad> in vocab)")
    delimiter = vocab.get(tok.get("word_delimiter_token", "|"))
    letters = [k for k in vocab if len(k) == 1 and k.isalpha()]
    case = (
        "upper"
        if letters and all(c.isupper() for c in letters)
        else "lower"
        if letters and all(c.islower() for c in letters)
        else "mixed"
    )

    with torch.device("meta"):
        model = AutoModelForCTC.from_config(config)
    state: dict[str, torch.Tensor] = {}
    for weights in find_folder_weights(folder):
        state.update(read_weights(weights, f"the weights of {expected}")[0])
    expected = model.state_dict()
    renamed = {}
    for key, value in state.items():
        for old, new in (
            (".weight_g", ".parametrizations.weight.original0"),
            (".weight_v", ".parametrizations.weight.original1"),
        ):
            if key.endswith(old) and key not in expected and key[: -len(old)] + new in expected:
                key = key[: -len(old)] + new
        renamed[key] = value
    for key in expected:
        if key.endswith("masked_spec_embed") and key not in renamed:
            renamed[key] = torch.zeros(expected[key].shape)  # training-time masking only
    missing, unexpected = sorted(set(expected) - set(renamed)), sorted(set(renamed) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{folder}: weights do not fit {type(model).__name__}; missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    for key, value in renamed.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ValueError(
                f"{folder}: tensor {key} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)}"
            )
    model.load_state_dict({k: v.float() for k, v in renamed.items()}, strict=True, assign=True)
    model = model.to(device=device, dtype=dtype).eval()
    if int(model.config.vocab_size) != max(vocab.values()) + 1:
        raise ValueError(f"{folder}: vocab.json has {max(vocab.values()) + 1} ids, the model {model.config.vocab_size}")
    return CTCAligner(model, vocab, int(blank), delimiter, normalize, case)

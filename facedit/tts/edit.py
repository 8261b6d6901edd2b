"""Speech editing: re-speak only the changed words of a recording with F5-TTS, keep every other sample.

The original words (with times) and the edited transcript are aligned word by word (``facedit.edits.align_words``).
Each changed region becomes a span of mel frames that F5-TTS infills, conditioned on the rest of the
recording's mel and on the whole edited transcript; Vocos turns the mel back into sound. The returned audio is
the ORIGINAL samples everywhere except inside each changed span and ``crossfade_ms`` either side of it, where
the synthesised sound is cross-faded in and out. A deletion synthesises nothing: the two sides are cross-faded.

Duration of a new span: F5-TTS's rule, the reference's seconds per UTF-8 byte of its transcript (the whole
original recording and its words) times the bytes of the new words, divided by ``speed``; or given per edit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..audio import resample, to_mono, unpack_audio
from ..edits import align_words
from ..timestamps import Word
from .mel import LogMel
from .sampler import infill_mel
from .vocos import Vocos
from .weights import F5TTS

TARGET_RMS = 0.1
"""F5-TTS raises quiet references to this RMS before the mel and lowers the result again."""


@dataclass(frozen=True)
class SpeechEditSpan:
    """One changed region: its words, and where it is in the original and in the edited speech (seconds)."""

    type: str
    original_words: tuple[str, ...]
    edited_words: tuple[str, ...]
    original: tuple[float, float]
    edited: tuple[float, float]


@dataclass(frozen=True)
class EditedSpeech:
    audio: dict[str, Any]  # ComfyUI AUDIO at the original sample rate and channel count
    words: list[Word]
    edits: list[SpeechEditSpan]


@dataclass(frozen=True)
class _Region:
    kind: str
    words: tuple[int, int]
    new_words: tuple[int, int]
    start_frame: int
    end_frame: int
    new_frames: int
    gap_s: float


def _check_words(words: Sequence[Word]) -> list[Word]:
    words = list(words)
    if not words:
        raise ValueError("words: the original speech needs its words with times; got none")
    for i, w in enumerate(words):
        if not isinstance(w, Word):
            raise TypeError(f"words[{i}]: expected a facedit.timestamps.Word, got {type(w).__name__}")
        if not (np.isfinite(w.start) and np.isfinite(w.end)) or w.end < w.start:
            raise ValueError(f"words[{i}] {w.text!r}: needs finite times with start <= end, got {w.start}..{w.end}")
        if i and w.start < words[i - 1].start:
            raise ValueError(f"words[{i}] {w.text!r}: starts at {w.start}s, before the word before it")
    return words


def _duration_override(durations: Sequence[float | None] | None, count: int) -> list[float | None]:
    if durations is None:
        return [None] * count
    durations = list(durations)
    if len(durations) != count:
        raise ValueError(
            f"durations: {len(durations)} given for {count} changed regions; give one per edit (None = auto)"
        )
    for k, d in enumerate(durations):
        if d is not None and not (np.isfinite(d) and d >= 0):
            raise ValueError(f"durations[{k}]: expected seconds >= 0 or None, got {d!r}")
    return durations


def _ramp(n: int) -> np.ndarray:
    """Raised-cosine fade-in weights over n samples, strictly between 0 and 1."""
    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)


def edit_speech(
    audio: Any,
    words: Sequence[Word],
    edited_text: str,
    f5: F5TTS | None,
    vocoder: Vocos | None,
    *,
    sample_rate: int | None = None,
    durations: Sequence[float | None] | None = None,
    speed: float = 1.0,
    steps: int = 32,
    guidance: float = 2.0,
    sway: float = -1.0,
    seed: int = 0,
    crossfade_ms: float = 5.0,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], None] | None = None,
) -> EditedSpeech:
    """The speech with ``words`` re-spoken as ``edited_text``; see the module docstring for the contract.

    audio: a ComfyUI AUDIO dict or an array with ``sample_rate``. durations: seconds per changed region in
    order (None keeps the automatic length). f5 / vocoder may be None when every edit is a deletion.
    """
    if not isinstance(edited_text, str) or not edited_text.split():
        raise ValueError("edited_text: expected the edited transcript (words separated by spaces), got nothing")
    if not (np.isfinite(speed) and speed > 0):
        raise ValueError(f"speed: expected a positive number, got {speed!r}")
    if not (np.isfinite(crossfade_ms) and crossfade_ms >= 0):
        raise ValueError(f"crossfade_ms: expected milliseconds >= 0, got {crossfade_ms!r}")
    wave, sr = unpack_audio(audio, sample_rate)
    original = np.ascontiguousarray(wave, dtype=np.float32)  # (C, T)
    total = original.shape[-1]
    words = _check_words(words)
    new_tokens = edited_text.split()
    pairs, word_edits = align_words(words, new_tokens)
    overrides = _duration_override(durations, len(word_edits))

    mel_cfg = f5.mel if f5 is not None else None
    frame_rate = mel_cfg.frame_rate if mel_cfg is not None else 24000 / 256
    ref_text = " ".join(w.text for w in words)
    seconds_per_byte = total / sr / max(len(ref_text.encode("utf-8")), 1) / speed

    regions = []
    for k, e in enumerate(word_edits):
        (i0, i1), (j0, j1) = e.original, e.edited
        if i1 > i0:
            a, b = words[i0].start, words[i1 - 1].end
            gap = 0.0
        else:
            a = words[i0 - 1].end if i0 > 0 else words[0].start
            b = words[i0].start if i0 < len(words) else words[-1].end
            gap = b - a
        new_text = " ".join(new_tokens[j0:j1])
        if overrides[k] is not None:
            seconds = float(overrides[k])
        elif j1 == j0:
            seconds = 0.0
        else:
            extra = 1 if e.type == "insertion" else 0
            seconds = seconds_per_byte * (len(new_text.encode("utf-8")) + extra) + gap
        start_f, end_f = round(a * frame_rate), round(b * frame_rate)
        if regions and start_f < regions[-1].end_frame:
            start_f = regions[-1].end_frame
        end_f = max(end_f, start_f)
        regions.append(_Region(e.type, (i0, i1), (j0, j1), start_f, end_f, round(seconds * frame_rate), gap))

    if not regions:
        return EditedSpeech({"waveform": torch.from_numpy(original.copy())[None], "sample_rate": sr}, words, [])

    generated = None
    if any(r.new_frames > 0 for r in regions):
        if f5 is None or vocoder is None:
            raise ValueError("edit_speech: the edit synthesises new words, so it needs the F5-TTS model and Vocos")
        generated = _synthesise(
            original, sr, regions, " ".join(new_tokens), f5, vocoder, steps, guidance, sway, seed, progress, cancel
        )

    fade = round(crossfade_ms / 1000 * sr)
    pieces: list[np.ndarray] = []
    length = 0
    cursor = 0
    shift_frames = 0
    spans: list[tuple[int, int, _Region]] = []  # output sample range of every region
    for r in regions:
        a = min(round(r.start_frame / frame_rate * sr), total)
        b = min(max(round(r.end_frame / frame_rate * sr), a), total)
        a = max(a, cursor)
        keep = original[:, cursor:a]
        if r.new_frames > 0:
            g0 = round((r.start_frame + shift_frames) / frame_rate * sr)
            g1 = round((r.start_frame + shift_frames + r.new_frames) / frame_rate * sr)
            g0, g1 = min(g0, generated.shape[-1]), min(g1, generated.shape[-1])
            f_in = min(fade, keep.shape[-1], g0)
            keep = keep.copy()
            if f_in:
                w = _ramp(f_in)
                keep[:, -f_in:] = keep[:, -f_in:] * (1 - w) + generated[None, g0 - f_in : g0] * w
            pieces.append(keep)
            start = length + keep.shape[-1]
            body = np.broadcast_to(generated[None, g0:g1], (original.shape[0], g1 - g0))
            pieces.append(np.ascontiguousarray(body))
            length = start + body.shape[-1]
            f_out = min(fade, total - b, generated.shape[-1] - g1)
            if f_out:
                w = _ramp(f_out)[::-1]
                tail = original[:, b : b + f_out] * (1 - w) + generated[None, g1 : g1 + f_out] * w
                pieces.append(tail.astype(np.float32))
                length += f_out
            cursor = b + f_out
            spans.append((start, start + body.shape[-1], r))
        else:
            f = min(fade, keep.shape[-1])
            keep = keep.copy()
            if f:
                w = _ramp(f)
                keep[:, -f:] = keep[:, -f:] * (1 - w) + original[:, b - f : b] * w
            pieces.append(keep)
            length += keep.shape[-1]
            cursor = b
            spans.append((length, length, r))
        shift_frames += r.new_frames - (r.end_frame - r.start_frame)
    pieces.append(original[:, cursor:])
    out = np.concatenate(pieces, axis=-1)
    new_words, edits = _edited_words(words, new_tokens, pairs, spans, regions, total, out.shape[-1], sr, frame_rate)
    return EditedSpeech({"waveform": torch.from_numpy(out)[None], "sample_rate": sr}, new_words, edits)


def _synthesise(
    original: np.ndarray,
    sr: int,
    regions: list[_Region],
    text: str,
    f5: F5TTS,
    vocoder: Vocos,
    steps: int,
    guidance: float,
    sway: float,
    seed: int,
    progress: Callable[[int, int], None] | None,
    cancel: Callable[[], None] | None,
) -> np.ndarray:
    """The whole edited speech as F5-TTS + Vocos make it, mono at ``sr`` (only the edited spans are used)."""
    cfg = f5.mel
    if vocoder.config.mel != cfg:
        raise ValueError(f"vocoder: its mel front end {vocoder.config.mel} differs from F5-TTS's {cfg}")
    mono = to_mono(original, sr, target_rate=cfg.sample_rate).samples
    rms = float(np.sqrt(np.mean(np.square(mono, dtype=np.float64))))
    gain = TARGET_RMS / rms if 0 < rms < TARGET_RMS else 1.0
    param = next(f5.model.parameters())
    wave = torch.from_numpy(mono * np.float32(gain))[None]
    mel = LogMel(cfg)(wave)[0].T  # (N, mels)
    parts, known, offset = [], [], 0
    for r in regions:
        parts += [mel[offset : r.start_frame], torch.zeros(r.new_frames, cfg.n_mels)]
        known += [torch.ones(r.start_frame - offset, dtype=torch.bool), torch.zeros(r.new_frames, dtype=torch.bool)]
        offset = r.end_frame
    parts.append(mel[offset:])
    known.append(torch.ones(mel.shape[0] - offset, dtype=torch.bool))
    cond, mask = torch.cat(parts)[None], torch.cat(known)[None]
    ids = f5.vocab.encode(text)
    out = infill_mel(
        f5.model,
        cond.to(param.device),
        mask,
        ids,
        steps=steps,
        guidance=guidance,
        sway=sway,
        seed=seed,
        progress=progress,
        cancel=cancel,
    )
    vparam = next(vocoder.parameters())
    with torch.no_grad():
        sound = vocoder(out.transpose(1, 2).to(vparam.device, vparam.dtype))[0].float().cpu().numpy()
    return resample(sound / np.float32(gain), cfg.sample_rate, sr)


def _edited_words(
    words: list[Word],
    tokens: list[str],
    pairs: list[tuple[int, int]],
    spans: list[tuple[int, int, _Region]],
    regions: list[_Region],
    total: int,
    out_total: int,
    sr: int,
    frame_rate: float,
) -> tuple[list[Word], list[SpeechEditSpan]]:
    """Unchanged words move with the samples around them; new words share their span by characters."""
    bounds = []  # (first original word after a region, original sample where it ends, output sample there)
    edits = []
    timed: dict[int, Word] = {}
    for o0, o1, r in spans:
        end_orig = min(round(r.end_frame / frame_rate * sr), total)
        bounds.append((r.words[1], end_orig, o1))
        j0, j1 = r.new_words
        lo, hi = o0 / sr, o1 / sr
        if r.kind == "insertion" and hi - lo > r.gap_s:
            lo, hi = lo + r.gap_s / 2, hi - r.gap_s / 2
        sizes = np.array([len(tokens[j]) for j in range(j0, j1)], dtype=np.float64)
        if len(sizes):
            edges = lo + (hi - lo) * np.concatenate(([0.0], np.cumsum(sizes) / sizes.sum()))
            for n, j in enumerate(range(j0, j1)):
                # The span's outer edges are exact (where the synthesis starts and ends), so its first and
                # last words keep them unflagged; only a word with both edges shared out by characters is
                # interpolated. An edit plan takes its boundaries from those outer edges.
                inner = 0 < n < len(sizes) - 1
                timed[j] = Word(tokens[j], float(edges[n]), float(edges[n + 1]), interpolated=inner)
        i0, i1 = r.words
        edits.append(
            SpeechEditSpan(
                r.kind,
                tuple(w.text for w in words[i0:i1]),
                tuple(tokens[j0:j1]),
                (r.start_frame / frame_rate, r.end_frame / frame_rate),
                (o0 / sr, o1 / sr),
            )
        )
    for i, j in pairs:
        w = words[i]
        shift = 0
        for after, end_orig, end_out in bounds:
            if i >= after:
                shift = end_out - end_orig
        timed[j] = Word(tokens[j], w.start + shift / sr, w.end + shift / sr, w.interpolated)
    missing = [j for j in range(len(tokens)) if j not in timed]
    if missing:
        # Punctuation-only tokens that took no part in the alignment: place them at the end of the word before.
        for j in missing:
            t = timed[j - 1].end if j > 0 and (j - 1) in timed else 0.0
            timed[j] = Word(tokens[j], t, t, interpolated=True)
    return [timed[j] for j in range(len(tokens))], edits

"""Word timestamps from the tools people use, as one list of ``Word``.

Formats read by ``parse_words`` (the format is recognised from the data):

- WhisperX JSON: ``{"segments": [{"start", "end", "text", "words": [{"word", "start", "end", "score"}]}]}``.
  WhisperX leaves ``start`` / ``end`` out for words it cannot align (numbers, symbols).
- openai-whisper (``word_timestamps=True``) and stable-ts JSON: the same layout with ``word`` and ``probability``.
- whisper-timestamped JSON: the same layout with ``text`` instead of ``word`` and ``confidence``.
- A plain JSON list ``[{"word" or "text", "start", "end"}, ...]`` or ``{"words": [...]}`` /
  ``{"word_segments": [...]}``.
- Text lines ``start end word`` (spaces or tabs, as Audacity labels); blank lines and ``#`` comments skipped.

Words without times (the keys left out or null) are never dropped: a run of them gets the gap between its timed
neighbours (inside its segment when the segment's times are known), shared in proportion to the words' lengths,
and is flagged ``interpolated=True``; edit plans warn where such a word sets an edit boundary and refuse a side
with no timed word at all. A NaN time is an error naming the word and its index, never "untimed".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Word:
    """One spoken word and its time span in seconds; ``interpolated`` marks times estimated from neighbours."""

    text: str
    start: float
    end: float
    interpolated: bool = False


class TimestampError(ValueError):
    """Word timestamps that cannot be used; the message names the word, its index and the problem."""


def _describe(i: int, text: str, start: float | None, end: float | None) -> str:
    fmt = lambda t: "?" if t is None else f"{t:.3f} s"  # noqa: E731
    return f"word {i} {text!r} (start {fmt(start)}, end {fmt(end)})"


def _time(value: Any, what: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TimestampError(f"{where}: {what} must be a number of seconds, got {value!r}")
    try:
        t = float(value)
    except ValueError as err:
        raise TimestampError(f"{where}: {what} must be a number of seconds, got {value!r}") from err
    if math.isnan(t):
        raise TimestampError(f"{where}: {what} is NaN; leave the time out (or null) for a word without one")
    return t


@dataclass
class _Raw:
    text: str
    start: float | None
    end: float | None
    seg_start: float | None = None
    seg_end: float | None = None
    segment: int = 0
    interpolated: bool = False


def _raw_word(entry: Any, i: int, segment: int = 0, seg: dict | None = None) -> _Raw:
    where = f"word {i}"
    if not isinstance(entry, dict):
        raise TimestampError(f"{where}: expected an object with 'word' (or 'text'), 'start', 'end'; got {entry!r}")
    text = entry.get("word", entry.get("text"))
    if not isinstance(text, str):
        raise TimestampError(f"{where}: no 'word' or 'text' string in {entry!r}")
    if not text.strip():
        raise TimestampError(f"{where}: the word's text is empty ({entry!r})")
    text = text.strip()
    where = f"word {i} {text!r}"
    seg = seg or {}
    return _Raw(
        text,
        _time(entry.get("start"), "start", where),
        _time(entry.get("end"), "end", where),
        _time(seg.get("start"), "segment start", f"segment {segment}"),
        _time(seg.get("end"), "segment end", f"segment {segment}"),
        segment,
        entry.get("interpolated") is True,
    )


def _from_segments(segments: Any) -> list[_Raw]:
    if not isinstance(segments, list):
        raise TimestampError(f"'segments' must be a list, got {type(segments).__name__}")
    raws: list[_Raw] = []
    for s, seg in enumerate(segments):
        if not isinstance(seg, dict):
            raise TimestampError(f"segment {s}: expected an object, got {seg!r}")
        if "words" not in seg:
            raise TimestampError(
                f"segment {s} ({str(seg.get('text', '')).strip()[:40]!r}) has no 'words': run the transcriber with "
                f"word timestamps (whisper word_timestamps=True, whisperx alignment, stable-ts)"
            )
        if not isinstance(seg["words"], list):
            raise TimestampError(f"segment {s}: 'words' must be a list")
        for entry in seg["words"]:
            raws.append(_raw_word(entry, len(raws), s, seg))
    return raws


def _from_lines(text: str) -> list[_Raw]:
    raws = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        shown = line if len(line) <= 80 else line[:80] + "..."
        if len(parts) < 3:
            raise TimestampError(f"line {n} {shown!r}: expected 'start end word'")
        try:
            start, end = float(parts[0]), float(parts[1])
        except ValueError as err:
            raise TimestampError(f"line {n} {shown!r}: expected 'start end word' with times in seconds") from err
        raws.append(_Raw(parts[2].strip(), start, end))
    if not raws:
        raise TimestampError("no words found (expected JSON or lines 'start end word')")
    return raws


def _collect(data: Any) -> list[_Raw]:
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as err:
            if data.lstrip()[:1] in ("{", "["):
                near = err.doc[max(0, err.pos - 30) : err.pos + 30].replace("\n", " ")
                raise TimestampError(
                    f"invalid JSON at line {err.lineno} column {err.colno} ({err.msg}) near {near!r}; "
                    "expected WhisperX/whisper word JSON or lines 'start end word'"
                ) from None
            return _from_lines(data)
    if isinstance(data, dict):
        if "segments" in data:
            return _from_segments(data["segments"])
        for key in ("words", "word_segments"):
            if key in data:
                data = data[key]
                break
        else:
            raise TimestampError(
                f"unknown timestamp JSON: expected 'segments', 'words' or 'word_segments', got keys {sorted(data)}"
            )
    if isinstance(data, list):
        if data and all(isinstance(d, dict) and "words" in d for d in data):
            return _from_segments(data)
        return [_raw_word(entry, i) for i, entry in enumerate(data)]
    raise TimestampError(f"unknown timestamp data of type {type(data).__name__}")


def _fill_missing(raws: list[_Raw], duration_s: float | None) -> list[Word]:
    """Give untimed words the gap between their timed neighbours, shared by word length."""
    words: list[Word | None] = [None] * len(raws)
    i = 0
    while i < len(raws):
        r = raws[i]
        if r.start is not None and r.end is not None:
            words[i] = Word(r.text, r.start, r.end, r.interpolated)
            i += 1
            continue
        j = i
        while j < len(raws) and (raws[j].start is None or raws[j].end is None):
            j += 1
        run = raws[i:j]
        prev = raws[i - 1] if i > 0 else None
        nxt = raws[j] if j < len(raws) else None
        left_options = [r.start for r in run[:1] if r.start is not None]
        if prev is not None:
            left_options.append(prev.end)
        if run[0].seg_start is not None and (prev is None or prev.segment != run[0].segment):
            left_options.append(run[0].seg_start)
        right_options = [r.end for r in run[-1:] if r.end is not None]
        if nxt is not None:
            right_options.append(nxt.start)
        if run[-1].seg_end is not None and (nxt is None or nxt.segment != run[-1].segment):
            right_options.append(run[-1].seg_end)
        if nxt is None and duration_s is not None:
            right_options.append(duration_s)
        left = max(left_options) if left_options else 0.0
        if not right_options:
            bad = raws[j - 1]
            raise TimestampError(
                f"{_describe(j - 1, bad.text, bad.start, bad.end)}: has no time and no timed word, segment end or "
                f"audio duration after it to place it by"
            )
        right = min(right_options)
        if right < left:
            raise TimestampError(
                f"{_describe(i, run[0].text, run[0].start, run[0].end)}: has no time and its neighbours leave no gap "
                f"for it ({left:.3f} s to {right:.3f} s)"
            )
        weights = [max(1, len(r.text)) for r in run]
        total, acc = sum(weights), 0
        for k, (r, w) in enumerate(zip(run, weights, strict=True)):
            a = left + (right - left) * acc / total
            acc += w
            b = left + (right - left) * acc / total
            words[i + k] = Word(r.text, a, b, interpolated=True)
        i = j
    return [w for w in words if w is not None]


def place_untimed(words: list[tuple[str, float | None, float | None]], duration_s: float | None = None) -> list[Word]:
    """Words as (text, start or None, end or None) -> ``Word`` list; untimed ones get the gap between their
    neighbours, shared by length, and ``interpolated=True``."""
    return _fill_missing([_Raw(text, start, end) for text, start, end in words], duration_s)


def validate_words(
    words: list[Word],
    duration_s: float | None = None,
    *,
    tolerance_s: float = 0.05,
    overlap_s: float = 0.02,
) -> None:
    """Raise ``TimestampError`` unless every word has 0 <= start <= end <= duration (+ tolerance) and each word
    starts no earlier than the previous one ends (minus ``overlap_s``, for transcribers' 20 ms rounding)."""
    prev: Word | None = None
    for i, w in enumerate(words):
        where = _describe(i, w.text, w.start, w.end)
        if not (math.isfinite(w.start) and math.isfinite(w.end)):
            raise TimestampError(f"{where}: times must be finite")
        if w.start < 0:
            raise TimestampError(f"{where}: starts before 0 s")
        if w.start > w.end:
            raise TimestampError(f"{where}: starts after it ends")
        if duration_s is not None and w.end > duration_s + tolerance_s:
            raise TimestampError(f"{where}: ends after the audio ({duration_s:.3f} s long)")
        if prev is not None and w.start < prev.end - overlap_s:
            raise TimestampError(
                f"{where}: starts before word {i - 1} {prev.text!r} ends ({prev.end:.3f} s); "
                f"word times must not go backwards"
            )
        prev = w


def parse_words(
    data: Any,
    *,
    duration_s: float | None = None,
    tolerance_s: float = 0.05,
) -> list[Word]:
    """Words with times from any supported format (JSON text, parsed JSON, or text lines), validated.

    ``duration_s`` (the audio's length) is checked against and used to place untimed words at the very end.
    """
    words = _fill_missing(_collect(data), duration_s)
    if not words:
        raise TimestampError("no words found in the timestamp data")
    validate_words(words, duration_s, tolerance_s=tolerance_s)
    return words


def load_words(path: str | Path, *, duration_s: float | None = None, tolerance_s: float = 0.05) -> list[Word]:
    """``parse_words`` on a file (.json or text lines)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"word timestamp file not found: {path}")
    try:
        return parse_words(path.read_text(encoding="utf-8"), duration_s=duration_s, tolerance_s=tolerance_s)
    except TimestampError as err:
        raise TimestampError(f"{path}: {err}") from err


def words_to_list(words: list[Word]) -> list[dict[str, Any]]:
    """Words as a plain JSON list (readable again by ``parse_words``; the interpolated flag is kept)."""
    return [{"word": w.text, "start": w.start, "end": w.end, "interpolated": w.interpolated} for w in words]


def words_from_list(items: list[dict[str, Any]]) -> list[Word]:
    """Inverse of ``words_to_list`` (no validation: for data this package wrote)."""
    return [Word(str(d["word"]), float(d["start"]), float(d["end"]), bool(d.get("interpolated", False))) for d in items]

"""Edit plans: which target frames come from which source frames, and which get new motion.

Conventions (all frame arithmetic of the package lives here):

- Video frame i stands at time i / fps and covers [i / fps, (i + 1) / fps).
- The target timeline has ``target_frame_count(edited speech duration, fps)`` frames: the duration times fps,
  rounded half up (a 1e-9 frame guard absorbs float noise such as 1.2 * 25 = 30.000000000000004).
- A speech span [a0, a1] seconds touches the frames floor(a0 fps) .. ceil(a1 fps) - 1 (a 1e-6 frame guard):
  every frame that shows any of it belongs to the edit, so edit spans are half-open frame ranges [A0, A1).
- Between edits the two speeches are the same audio shifted by a constant time (the accumulated duration
  change). Each such stretch gets ONE integer frame shift s = round(shift_s * fps) (half up), and its target
  frame k shows source frame k - s exactly: at most half a frame from the true source time, never
  fractional. The stretch before the first edit has shift 0, the one after the last edit has shift
  (edited duration - original duration); shifts between edits come from the median time difference of the
  unchanged words there (word mode) or exactly from the spans (manual mode).
- An edit maps its source frames [A0, A1) linearly onto its target frames [B0, B1) = [A0 + s_before,
  A1 + s_after), frame centres to frame centres: source_time = A0 - 0.5 + (k + 0.5 - B0) * (A1 - A0) / (B1 - B0).
  An insertion at a point (A0 == A1) gives A0 - 0.5: the instant between two source frames.
- An edit's span boundaries sit where the unchanged words around it end and start (the pauses next to the
  changed words belong to the edit). The infill mask is every edit's target span widened by
  ``context_frames`` on each side; a cut (an edit left with no target frames) masks at least one frame on
  each side. Widening stops at the clip ends; the frames it could not add are recorded in the edit.
- ``source_time`` is clamped to [0, source_frames - 1]; clamped unedited frames are reported in ``warnings``.
"""

from __future__ import annotations

import json
import math
import statistics
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .timestamps import Word, validate_words, words_from_list, words_to_list

FORMAT_VERSION = 1
EDIT_TYPES = ("substitution", "insertion", "deletion", "generation")
MODES = ("edit", "generate")
_FRAME_GUARD = 1e-6
_MISFIT_S = 0.25  # seconds an unchanged word may sit off its stretch's shift before a warning (ASR jitter)


def _check_fps(fps: float) -> float:
    if isinstance(fps, bool) or not isinstance(fps, int | float | np.floating | np.integer):
        raise ValueError(f"fps: expected a positive number, got {fps!r}")
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps: expected a positive number, got {fps!r}")
    return float(fps)


def _check_duration(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ValueError(f"{name}: expected a duration in seconds, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a duration in seconds >= 0, got {value!r}")
    return float(value)


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5 + 1e-9))


def target_frame_count(duration_s: float, fps: float) -> int:
    """Frames of a timeline ``duration_s`` long at ``fps``: round(duration * fps), halves rounded up."""
    return _round_half_up(_check_duration(duration_s, "duration_s") * _check_fps(fps))


def _floor_frame(t: float, fps: float) -> int:
    return math.floor(t * fps + _FRAME_GUARD)


def _ceil_frame(t: float, fps: float) -> int:
    return math.ceil(t * fps - _FRAME_GUARD)


def normalize_token(text: str) -> str:
    """Token for comparing words: NFKC, case-folded, punctuation and symbols removed ("Don't," -> "dont")."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(c for c in text if not unicodedata.category(c).startswith(("P", "S", "Z", "C")))


@dataclass(frozen=True)
class WordEdit:
    """One changed region between two unchanged words: word index ranges [start, end) in both sequences."""

    type: str
    original: tuple[int, int]
    edited: tuple[int, int]


def _lcs_pairs(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """Index pairs of a longest common subsequence; common prefix and suffix are matched first."""
    lo = 0
    while lo < len(a) and lo < len(b) and a[lo] == b[lo]:
        lo += 1
    hi_a, hi_b = len(a), len(b)
    while hi_a > lo and hi_b > lo and a[hi_a - 1] == b[hi_b - 1]:
        hi_a, hi_b = hi_a - 1, hi_b - 1
    mid_a, mid_b = a[lo:hi_a], b[lo:hi_b]
    n, m = len(mid_a), len(mid_b)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, below = table[i], table[i + 1]
        for j in range(m - 1, -1, -1):
            row[j] = below[j + 1] + 1 if mid_a[i] == mid_b[j] else max(below[j], row[j + 1])
    middle, i, j = [], 0, 0
    while i < n and j < m:
        if mid_a[i] == mid_b[j]:
            middle.append((lo + i, lo + j))
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    head = [(k, k) for k in range(lo)]
    tail = [(hi_a + k, hi_b + k) for k in range(len(a) - hi_a)]
    return head + middle + tail


def align_words(
    original: Sequence[str | Word], edited: Sequence[str | Word]
) -> tuple[list[tuple[int, int]], list[WordEdit]]:
    """Align two word sequences on normalised tokens -> (matched index pairs, edits between them).

    Tokens that normalise to nothing (punctuation only) take no part in matching; a region that differs only
    in such tokens is not an edit.
    """
    texts_a = [w.text if isinstance(w, Word) else str(w) for w in original]
    texts_b = [w.text if isinstance(w, Word) else str(w) for w in edited]
    tok_a = [normalize_token(t) for t in texts_a]
    tok_b = [normalize_token(t) for t in texts_b]
    idx_a = [i for i, t in enumerate(tok_a) if t]
    idx_b = [j for j, t in enumerate(tok_b) if t]
    pairs = [(idx_a[i], idx_b[j]) for i, j in _lcs_pairs([tok_a[i] for i in idx_a], [tok_b[j] for j in idx_b])]
    edits = []
    bounds = [(-1, -1), *pairs, (len(texts_a), len(texts_b))]
    for (pa, pb), (na, nb) in zip(bounds, bounds[1:], strict=False):
        removed = any(tok_a[i] for i in range(pa + 1, na))
        added = any(tok_b[j] for j in range(pb + 1, nb))
        if removed or added:
            kind = "substitution" if removed and added else "deletion" if removed else "insertion"
            edits.append(WordEdit(kind, (pa + 1, na), (pb + 1, nb)))
    return pairs, edits


@dataclass(frozen=True)
class Edit:
    """One edit of a plan. Spans in seconds are closed [start, end]; frame spans are half-open [start, end)."""

    type: str
    original_span_s: tuple[float, float]
    edited_span_s: tuple[float, float]
    source_span: tuple[int, int]
    target_span: tuple[int, int]
    mask_span: tuple[int, int]
    original_words: tuple[str, ...] = ()
    edited_words: tuple[str, ...] = ()
    margin_clamped: tuple[int, int] = (0, 0)  # context frames that the clip start / end cut off

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "original_span_s": list(self.original_span_s),
            "edited_span_s": list(self.edited_span_s),
            "source_span": list(self.source_span),
            "target_span": list(self.target_span),
            "mask_span": list(self.mask_span),
            "original_words": list(self.original_words),
            "edited_words": list(self.edited_words),
            "margin_clamped": list(self.margin_clamped),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Edit:
        _no_unknown_keys(data, cls.__dataclass_fields__, "edit")
        if data.get("type") not in EDIT_TYPES:
            raise ValueError(f"edit type must be one of {EDIT_TYPES}, got {data.get('type')!r}")
        pair = lambda k, f: tuple(f(v) for v in data[k])  # noqa: E731
        return cls(
            data["type"],
            pair("original_span_s", float),
            pair("edited_span_s", float),
            pair("source_span", int),
            pair("target_span", int),
            pair("mask_span", int),
            tuple(data.get("original_words", ())),
            tuple(data.get("edited_words", ())),
            pair("margin_clamped", int) if "margin_clamped" in data else (0, 0),
        )


def _no_unknown_keys(data: dict[str, Any], known: Any, what: str) -> None:
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{what}: unknown keys {unknown}")


def _runs(mask: np.ndarray) -> list[list[int]]:
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    changes = np.flatnonzero(padded[1:] != padded[:-1])
    return [[int(a), int(b)] for a, b in zip(changes[::2], changes[1::2], strict=True)]


@dataclass(frozen=True, eq=False)
class EditPlan:
    """What every stage reads: target length, per-target-frame source time, infill mask, edits.

    ``source_time[k]`` is the (fractional inside retimed spans) source frame that target frame k is taken
    from; ``infill_mask[k]`` is True where motion is generated. Unmasked frames are copied unchanged.
    """

    mode: str
    fps: float
    source_frames: int
    target_frames: int
    source_time: np.ndarray  # float64 [target_frames]
    infill_mask: np.ndarray  # bool [target_frames]
    edits: tuple[Edit, ...]
    context_frames: int
    original_duration_s: float
    edited_duration_s: float
    original_words: tuple[Word, ...] = ()
    edited_words: tuple[Word, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        _check_fps(self.fps)
        if self.source_frames < 1 or self.target_frames < 1:
            raise ValueError(f"a plan needs frames: source {self.source_frames}, target {self.target_frames}")
        st = np.asarray(self.source_time, dtype=np.float64)
        mask = np.asarray(self.infill_mask, dtype=bool)
        if st.shape != (self.target_frames,) or mask.shape != (self.target_frames,):
            raise ValueError(
                f"source_time {st.shape} and infill_mask {mask.shape} must both have target_frames "
                f"({self.target_frames}) entries"
            )
        if not np.isfinite(st).all() or st.min() < 0 or st.max() > self.source_frames - 1:
            raise ValueError(f"source_time must lie in [0, {self.source_frames - 1}]")
        object.__setattr__(self, "source_time", st)
        object.__setattr__(self, "infill_mask", mask)

    @property
    def retimed_mask(self) -> np.ndarray:
        """Target frames inside the edits' target spans (before the context margin): the retimed frames."""
        out = np.zeros(self.target_frames, dtype=bool)
        for e in self.edits:
            out[e.target_span[0] : e.target_span[1]] = True
        return out

    def mask_spans(self) -> list[tuple[int, int]]:
        """The infill mask as half-open runs [start, end) of target frames."""
        return [tuple(r) for r in _runs(self.infill_mask)]

    def check_matches(self, source_frames: int, fps: float) -> None:
        """Raise unless this plan was built for a video of ``source_frames`` frames at ``fps``."""
        if int(source_frames) != self.source_frames or abs(float(fps) - self.fps) > 1e-3:
            raise ValueError(
                f"plan built for another clip: it expects {self.source_frames} frames at {self.fps:g} fps, "
                f"the video has {int(source_frames)} frames at {float(fps):g} fps"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "facedit.edit_plan",
            "version": FORMAT_VERSION,
            "mode": self.mode,
            "fps": self.fps,
            "source_frames": self.source_frames,
            "target_frames": self.target_frames,
            "source_time": [float(x) for x in self.source_time],
            "infill_runs": _runs(self.infill_mask),
            "edits": [e.to_dict() for e in self.edits],
            "context_frames": self.context_frames,
            "original_duration_s": self.original_duration_s,
            "edited_duration_s": self.edited_duration_s,
            "original_words": words_to_list(list(self.original_words)),
            "edited_words": words_to_list(list(self.edited_words)),
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EditPlan:
        if not isinstance(data, dict) or data.get("format") != "facedit.edit_plan":
            raise ValueError("not a FacEDiT edit plan (expected 'format': 'facedit.edit_plan')")
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"edit plan version {data.get('version')!r} is not supported (expected {FORMAT_VERSION})")
        known = set(cls.__dataclass_fields__) - {"infill_mask"} | {"format", "version", "infill_runs"}
        _no_unknown_keys(data, known, "edit plan")
        target = int(data["target_frames"])
        mask = np.zeros(target, dtype=bool)
        for start, end in data["infill_runs"]:
            if not 0 <= start < end <= target:
                raise ValueError(f"edit plan: infill run [{start}, {end}) is outside 0..{target}")
            mask[start:end] = True
        return cls(
            mode=data["mode"],
            fps=float(data["fps"]),
            source_frames=int(data["source_frames"]),
            target_frames=target,
            source_time=np.asarray(data["source_time"], dtype=np.float64),
            infill_mask=mask,
            edits=tuple(Edit.from_dict(e) for e in data["edits"]),
            context_frames=int(data["context_frames"]),
            original_duration_s=float(data["original_duration_s"]),
            edited_duration_s=float(data["edited_duration_s"]),
            original_words=tuple(words_from_list(data.get("original_words", []))),
            edited_words=tuple(words_from_list(data.get("edited_words", []))),
            warnings=tuple(data.get("warnings", ())),
        )

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> EditPlan:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"edit plan: not valid JSON ({err})") from err
        return cls.from_dict(data)


# ---------------------------------------------------------------------------------------------- building


@dataclass
class _Span:
    """An edit while the plan is built: seconds as given, frames as derived, word index ranges if any."""

    type: str
    a0: float
    a1: float
    b0: float
    b1: float
    words_a: tuple[int, int] = (0, 0)  # [start, end) indices into the original words
    words_b: tuple[int, int] = (0, 0)  # [start, end) indices into the edited words
    at_start: bool = False
    at_end: bool = False
    A0: int = 0  # noqa: N815 - frame spans read best as A (source) and B (target)
    A1: int = 0  # noqa: N815
    B0: int = 0  # noqa: N815
    B1: int = 0  # noqa: N815


def _merge(a: _Span, b: _Span) -> _Span:
    removed = a.type in ("substitution", "deletion") or b.type in ("substitution", "deletion")
    added = a.type in ("substitution", "insertion") or b.type in ("substitution", "insertion")
    kind = "substitution" if removed and added else "deletion" if removed else "insertion"
    return _Span(
        kind,
        a.a0,
        b.a1,
        a.b0,
        b.b1,
        (a.words_a[0], b.words_a[1]),
        (a.words_b[0], b.words_b[1]),
        a.at_start,
        b.at_end,
        a.A0,
        b.A1,
    )


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def _check_video(original_duration_s: float, fps: float, source_frames: int, max_overhang_frames: float) -> None:
    _check_int(source_frames, "source_frames (the video's frame count)", 1)
    speech_frames = original_duration_s * fps
    if speech_frames > source_frames + max_overhang_frames:
        raise ValueError(
            f"the original speech ({original_duration_s:.3f} s = {speech_frames:.1f} frames at {fps:g} fps) is longer "
            f"than the video ({source_frames} frames = {source_frames / fps:.3f} s) by more than "
            f"{max_overhang_frames:g} frame(s): are this speech and this video from the same clip?"
        )


def _settle_frames(spans: list[_Span], shifts: list[int], target: int, source_end: int) -> None:
    """Give every span target frames [B0, B1) and fix what frame rounding broke, in place.

    A stretch of unchanged frames squeezed below zero length joins its two edits; an edit left with negative
    length grows into the unchanged frames after it (before it, at the clip end); a tail stretch that would
    run past the target's end joins the last edit.
    """
    for _ in range(100 * (len(spans) + 1)):
        for k, span in enumerate(spans):
            span.B0 = 0 if span.at_start else span.A0 + shifts[k]
            span.B1 = target if span.at_end else span.A1 + shifts[k + 1]
        joined = next(
            (
                k
                for k in range(len(spans) - 1)
                if spans[k + 1].A0 < spans[k].A1 or spans[k].at_end or spans[k + 1].at_start
            ),
            None,
        )
        if joined is not None:
            spans[joined : joined + 2] = [_merge(spans[joined], spans[joined + 1])]
            del shifts[joined + 1]
            continue
        short = next((span for span in spans if span.B1 < span.B0), None)
        if short is not None:
            grow = short.B0 - short.B1
            if short.at_end:
                short.A0 = max(short.A0 - grow, 0)
                short.at_start = short.A0 == 0
            else:
                short.A1 += grow
                if short.A1 >= source_end:
                    short.A1, short.at_end = source_end, True
            continue
        if spans and not spans[-1].at_end and spans[-1].A1 + shifts[-1] > target:
            spans[-1].at_end = True
            continue
        return
    raise RuntimeError("edit plan: frame spans did not settle")  # pragma: no cover - the loop always shrinks


def _build_plan(
    spans: list[_Span],
    shifts_s: list[float],
    *,
    original_duration_s: float,
    edited_duration_s: float,
    fps: float,
    source_frames: int,
    context_frames: int,
    original_words: tuple[Word, ...] = (),
    edited_words: tuple[Word, ...] = (),
    warnings: list[str] | None = None,
) -> EditPlan:
    """Frames from seconds. ``shifts_s[k]`` is the time shift of the stretch of unchanged speech before span k;
    the first is 0 (both speeches start together), the last is the one after the last span."""
    warnings = list(warnings or [])
    context_frames = _check_int(context_frames, "context_frames", 0)
    if len(shifts_s) != len(spans) + 1:
        raise ValueError("internal: one shift per stretch between edits")  # pragma: no cover
    target = target_frame_count(edited_duration_s, fps)
    if target < 1:
        raise ValueError(f"the edited speech ({edited_duration_s:.3f} s) is shorter than one frame at {fps:g} fps")
    source_end = min(_ceil_frame(original_duration_s, fps), source_frames)
    shifts = [0] + [_round_half_up(x * fps) for x in shifts_s[1:]]
    spans = [_Span(**vars(s)) for s in spans]
    for span in spans:
        span.A0 = 0 if span.at_start else min(max(_floor_frame(span.a0, fps), 0), source_end)
        span.A1 = source_end if span.at_end else min(max(_ceil_frame(span.a1, fps), span.A0), source_end)
    _settle_frames(spans, shifts, target, source_end)

    source_time = np.empty(target, dtype=np.float64)
    mask = np.zeros(target, dtype=bool)
    bounds = [0, *[x for span in spans for x in (span.B0, span.B1)], target]
    clamped = 0
    for k in range(len(spans) + 1):
        frames = np.arange(bounds[2 * k], bounds[2 * k + 1], dtype=np.float64) - shifts[k]
        clamped += int(np.count_nonzero((frames < 0) | (frames > source_frames - 1)))
        source_time[bounds[2 * k] : bounds[2 * k + 1]] = frames
    edits = []
    for span in spans:
        na, nb = span.A1 - span.A0, span.B1 - span.B0
        if nb > 0:
            k = np.arange(span.B0, span.B1, dtype=np.float64)
            source_time[span.B0 : span.B1] = span.A0 - 0.5 + (k + 0.5 - span.B0) * na / nb
        lo, hi = (span.B0, span.B1) if nb > 0 else (span.B0 - 1, span.B0 + 1)
        want_lo, want_hi = lo - context_frames, hi + context_frames
        m0, m1 = max(want_lo, 0), min(want_hi, target)
        mask[m0:m1] = True
        edits.append(
            Edit(
                span.type,
                (span.a0, span.a1),
                (span.b0, span.b1),
                (span.A0, span.A1),
                (span.B0, span.B1),
                (m0, m1),
                tuple(w.text for w in original_words[span.words_a[0] : span.words_a[1]]),
                tuple(w.text for w in edited_words[span.words_b[0] : span.words_b[1]]),
                (m0 - want_lo, want_hi - m1),
            )
        )
    if clamped:
        warnings.append(
            f"{clamped} unedited target frame(s) fall outside the video's {source_frames} frames and repeat its "
            f"first / last frame"
        )
    np.clip(source_time, 0, source_frames - 1, out=source_time)
    return EditPlan(
        mode="edit",
        fps=fps,
        source_frames=int(source_frames),
        target_frames=target,
        source_time=source_time,
        infill_mask=mask,
        edits=tuple(edits),
        context_frames=context_frames,
        original_duration_s=original_duration_s,
        edited_duration_s=edited_duration_s,
        original_words=original_words,
        edited_words=edited_words,
        warnings=tuple(warnings),
    )


def _time_differences(pairs: list[tuple[int, int]], original: Sequence[Word], edited: Sequence[Word]) -> list[float]:
    timed = [(i, j) for i, j in pairs if not (original[i].interpolated or edited[j].interpolated)] or pairs
    return [d for i, j in timed for d in (edited[j].start - original[i].start, edited[j].end - original[i].end)]


def plan_edit(
    original_words: Sequence[Word],
    edited_words: Sequence[Word],
    *,
    original_duration_s: float,
    edited_duration_s: float,
    fps: float,
    source_frames: int,
    context_frames: int = 3,
    max_overhang_frames: float = 1.0,
) -> EditPlan:
    """Edit plan from the words (with times) of the original and the edited speech.

    The word sequences are aligned on normalised tokens; every changed region becomes one edit (substitution,
    insertion or deletion). ``source_frames`` is the original video's frame count: the original speech may
    not be longer than the video by more than ``max_overhang_frames``.
    """
    fps = _check_fps(fps)
    original_duration_s = _check_duration(original_duration_s, "original_duration_s")
    edited_duration_s = _check_duration(edited_duration_s, "edited_duration_s")
    _check_video(original_duration_s, fps, source_frames, max_overhang_frames)
    original_words, edited_words = list(original_words), list(edited_words)
    for name, words, duration in (
        ("original", original_words, original_duration_s),
        ("edited", edited_words, edited_duration_s),
    ):
        try:
            validate_words(words, duration)
        except ValueError as err:
            raise type(err)(f"{name} words: {err}") from err
    pairs, word_edits = align_words(original_words, edited_words)
    change = edited_duration_s - original_duration_s
    if not word_edits and _round_half_up(abs(change) * fps) != 0:
        raise ValueError(
            f"the two transcripts have the same words but the edited speech is {change:+.3f} s longer; there is "
            f"no changed word to give that time to: give the changed span in seconds instead (manual mode)"
        )
    warnings: list[str] = []
    spans: list[_Span] = []
    for e in word_edits:
        (i0, i1), (j0, j1) = e.original, e.edited
        at_start, at_end = i0 == 0 and j0 == 0, i1 == len(original_words) and j1 == len(edited_words)
        a0 = 0.0 if at_start else original_words[i0 - 1].end
        a1 = original_duration_s if at_end else original_words[i1].start
        b0 = 0.0 if at_start else edited_words[j0 - 1].end
        b1 = edited_duration_s if at_end else edited_words[j1].start
        anchors = [original_words[i] for i in (i0 - 1, i1) if 0 <= i < len(original_words)]
        anchors += [edited_words[j] for j in (j0 - 1, j1) if 0 <= j < len(edited_words)]
        if any(w.interpolated for w in anchors):
            warnings.append(
                f"the {e.type} {[w.text for w in original_words[i0:i1]]} -> {[w.text for w in edited_words[j0:j1]]} "
                f"borders a word whose time was interpolated; check its span"
            )
        a0, a1, b0, b1 = float(a0), float(max(a1, a0)), float(b0), float(max(b1, b0))
        spans.append(_Span(e.type, a0, a1, b0, b1, (i0, i1), (j0, j1), at_start, at_end))
    # Time shift of each stretch of unchanged words: 0 before the first edit, the duration change after the
    # last, the median time difference of its words in between.
    groups: list[list[tuple[int, int]]] = [[] for _ in range(len(word_edits) + 1)]
    for i, j in pairs:
        groups[sum(1 for e in word_edits if e.original[0] <= i)].append((i, j))
    shifts = [0.0]
    shifts += [statistics.median(_time_differences(g, original_words, edited_words)) for g in groups[1:-1]]
    if word_edits:
        shifts.append(change)
    for group, shift in zip(groups, shifts, strict=True):
        worst = max((abs(d - shift) for d in _time_differences(group, original_words, edited_words)), default=0.0)
        if worst > _MISFIT_S:
            warnings.append(
                f"unchanged words from {original_words[group[0][0]].text!r} on are up to {worst:.3f} s off the "
                f"time shift of their stretch ({shift:+.3f} s): is the edited speech a splice of the original? "
                f"Unedited frames follow one shift per stretch"
            )
    return _build_plan(
        spans,
        shifts,
        original_duration_s=original_duration_s,
        edited_duration_s=edited_duration_s,
        fps=fps,
        source_frames=source_frames,
        context_frames=context_frames,
        original_words=tuple(original_words),
        edited_words=tuple(edited_words),
        warnings=warnings,
    )


@dataclass(frozen=True)
class SpanEdit:
    """A manual edit in seconds of the ORIGINAL speech, as F5-TTS's speech editing takes it: the span
    [start, end] is replaced by ``new_duration`` seconds of new speech (0: deletion; start == end: insertion)."""

    start: float
    end: float
    new_duration: float


def plan_from_spans(
    spans: Sequence[SpanEdit | tuple[float, float, float]],
    *,
    original_duration_s: float,
    fps: float,
    source_frames: int,
    edited_duration_s: float | None = None,
    context_frames: int = 3,
    max_overhang_frames: float = 1.0,
) -> EditPlan:
    """Edit plan without timestamps, from edit spans of the original speech and their new durations.

    The edited duration follows from the spans; when the real edited speech's duration is given and differs,
    the last span absorbs the difference (reported in ``warnings`` when it exceeds a frame).
    """
    fps = _check_fps(fps)
    original_duration_s = _check_duration(original_duration_s, "original_duration_s")
    _check_video(original_duration_s, fps, source_frames, max_overhang_frames)
    items = [s if isinstance(s, SpanEdit) else SpanEdit(*s) for s in spans]
    if not items:
        raise ValueError("spans: give at least one (start, end, new_duration) edit")
    built: list[_Span] = []
    shifts = [0.0]
    total = 0.0
    prev_end = 0.0
    for n, s in enumerate(items):
        where = f"span {n} ({s.start:g}, {s.end:g}, {s.new_duration:g})"
        for v in (s.start, s.end, s.new_duration):
            if isinstance(v, bool) or not isinstance(v, int | float | np.floating | np.integer) or not math.isfinite(v):
                raise ValueError(f"{where}: start, end and new_duration must be numbers of seconds")
        if s.start < 0 or s.end < s.start or s.new_duration < 0:
            raise ValueError(f"{where}: expected 0 <= start <= end and new_duration >= 0")
        if s.end > original_duration_s + 1e-6:
            raise ValueError(f"{where}: ends after the original speech ({original_duration_s:.3f} s)")
        if s.start < prev_end - 1e-9:
            raise ValueError(f"{where}: overlaps or precedes the span before it; give spans in time order")
        if s.end == s.start and s.new_duration == 0:
            raise ValueError(f"{where}: replaces nothing with nothing")
        kind = "deletion" if s.new_duration == 0 else "insertion" if s.end == s.start else "substitution"
        b0 = s.start + total
        total += s.new_duration - (s.end - s.start)
        built.append(
            _Span(
                kind,
                float(s.start),
                float(s.end),
                round(b0, 9),
                round(b0 + s.new_duration, 9),
                at_start=s.start == 0,
                at_end=s.end >= original_duration_s - 1e-6,
            )
        )
        shifts.append(total)
        prev_end = s.end
    implied = original_duration_s + total
    warnings = []
    if edited_duration_s is None:
        edited_duration_s = implied
    else:
        edited_duration_s = _check_duration(edited_duration_s, "edited_duration_s")
        if abs(edited_duration_s - implied) * fps > 1:
            warnings.append(
                f"the edited speech is {edited_duration_s:.3f} s but the spans make {implied:.3f} s; "
                f"the last span absorbs the {edited_duration_s - implied:+.3f} s"
            )
        shifts[-1] = edited_duration_s - original_duration_s
    return _build_plan(
        built,
        shifts,
        original_duration_s=original_duration_s,
        edited_duration_s=edited_duration_s,
        fps=fps,
        source_frames=source_frames,
        context_frames=context_frames,
        warnings=warnings,
    )


def plan_generation(
    speech_duration_s: float,
    *,
    fps: float,
    prompt_frames: int = 1,
    source_frames: int | None = None,
    appearance_frame: int | None = None,
    context_frames: int = 0,
) -> EditPlan:
    """Plan for generation from scratch: ``prompt_frames`` source frames, then motion infilled to the end.

    ``speech_duration_s`` is the whole conditioning speech, starting at target frame 0: for a prompt clip the
    caller joins the clip's own speech and the new speech; for a single portrait (``prompt_frames=1``) it is
    the new speech, and frame 0 keeps the portrait's own motion. Generated frames have ``source_time`` =
    ``appearance_frame`` (default: the last prompt frame): the frame whose appearance they are rendered from.
    ``context_frames`` > 0 also regenerates that many of the last prompt frames.
    """
    fps = _check_fps(fps)
    speech_duration_s = _check_duration(speech_duration_s, "speech_duration_s")
    prompt_frames = _check_int(prompt_frames, "prompt_frames (a portrait is one frame)", 1)
    source_frames = _check_int(
        prompt_frames if source_frames is None else source_frames, "source_frames", prompt_frames
    )
    context_frames = _check_int(context_frames, "context_frames", 0)
    appearance = prompt_frames - 1 if appearance_frame is None else appearance_frame
    if not 0 <= appearance < source_frames:
        raise ValueError(f"appearance_frame {appearance} is outside the source's {source_frames} frames")
    target = target_frame_count(speech_duration_s, fps)
    if target <= prompt_frames:
        raise ValueError(
            f"the speech ({speech_duration_s:.3f} s = {target} frames at {fps:g} fps) must be longer than the "
            f"{prompt_frames} prompt frame(s)"
        )
    source_time = np.full(target, float(appearance))
    source_time[:prompt_frames] = np.arange(prompt_frames)
    m0 = max(prompt_frames - context_frames, 0)
    mask = np.zeros(target, dtype=bool)
    mask[m0:] = True
    start_s = prompt_frames / fps
    edit = Edit(
        "generation",
        (start_s, start_s),
        (start_s, speech_duration_s),
        (prompt_frames, prompt_frames),
        (prompt_frames, target),
        (m0, target),
        margin_clamped=(max(0, context_frames - prompt_frames), 0),
    )
    return EditPlan(
        mode="generate",
        fps=fps,
        source_frames=int(source_frames),
        target_frames=target,
        source_time=source_time,
        infill_mask=mask,
        edits=(edit,),
        context_frames=int(context_frames),
        original_duration_s=prompt_frames / fps,
        edited_duration_s=speech_duration_s,
    )

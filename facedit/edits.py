"""Edit plans: which target frames come from which source frames, and which get new motion.

Conventions (all frame arithmetic of the package lives here; seconds and fps are exact fractions, so every
frame rate, 24, 25, 30000/1001, 30, 50, 60 or any rational, gives the same plan in seconds with no drift):

- Video frame j stands at time j / fps and covers [j / fps, (j + 1) / fps).
- The target timeline has ``target_frame_count(edited speech duration, fps)`` frames: the duration times fps,
  rounded half up. The clip ends when the edited speech ends.
- An edit whose edited-side span is [t0, t1] seconds has the target frames [floor(t0 fps), ceil(t1 fps)): every
  frame whose interval meets the span. Between unchanged words a span runs from the end of the word before to
  the start of the word after (the pauses next to the changed words belong to the edit). Silence is not an
  edit: an edit of the first (last) words starts at the first changed word's start (stops at each side's last
  changed word's end), so lead and tail silence stay original frames.
- Unchanged frames follow the words: before the first edit target frame j shows source frame j; after edit k it
  shows j - shift_k with shift_k = round_half_up((t1_k - s1_k) fps), where the word right after the edit
  starts at t1_k in the edited speech and s1_k in the original (after an edit at the end: where each side's
  last changed word ends). Never the difference of the two audio lengths. At the tail, target frames past the
  video's last frame repeat it and video frames past the target's end are dropped, both with a warning.
- An edit maps source frames [A0, A1) = [B0 - shift before, B1 - shift after) linearly onto its target frames
  [B0, B1), frame centres to frame centres: source_time = A0 - 0.5 + (k + 0.5 - B0) * (A1 - A0) / (B1 - B0),
  continuous with the unchanged frames on both sides. An insertion at a point gives A0 - 0.5.
- The infill mask is every edit's target span widened by ``context_frames`` on each side; a cut (a deletion
  with no target frames) masks the seam frame on each side. Widening stops at the clip ends; the frames it
  could not add are recorded in the edit.
- ``source_time`` is clamped to [0, source_frames - 1]; clamped unedited frames are reported in ``warnings``.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from .timestamps import Word, validate_words, words_from_list, words_to_list

FORMAT_VERSION = 1
EDIT_TYPES = ("substitution", "insertion", "deletion", "generation")
MODES = ("edit", "generate")
_MAX_DENOMINATOR = 1_000_000  # a float fps is read as the nearest fraction with a denominator up to this
_MISFIT_S = 0.25  # seconds an unchanged word may sit off its stretch's shift before a warning (ASR jitter)


def _check_fps(fps: float | Fraction) -> float:
    if isinstance(fps, bool) or not isinstance(fps, int | float | Fraction | np.floating | np.integer):
        raise ValueError(f"fps: expected a positive number, got {fps!r}")
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps: expected a positive number, got {fps!r}")
    return float(fps)


def _rate(fps: float | Fraction) -> Fraction:
    """The frame rate as an exact fraction: 29.97 -> 2997/100, float(30000/1001) -> 30000/1001."""
    _check_fps(fps)
    return fps if isinstance(fps, Fraction) else Fraction(float(fps)).limit_denominator(_MAX_DENOMINATOR)


def _q(t: float) -> Fraction:
    """Seconds as an exact fraction, snapped to the nanosecond (so that 1.2 * 25 is 30, not 30.000000000000004)."""
    return Fraction(round(float(t) * 10**9), 10**9)


def _check_duration(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ValueError(f"{name}: expected a duration in seconds, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a duration in seconds >= 0, got {value!r}")
    return float(value)


def _round_half_up(x: Fraction) -> int:
    return math.floor(x + Fraction(1, 2))


def target_frame_count(duration_s: float, fps: float | Fraction) -> int:
    """Frames of a timeline ``duration_s`` long at ``fps``: round(duration * fps), halves rounded up, exactly."""
    return _round_half_up(_q(_check_duration(duration_s, "duration_s")) * _rate(fps))


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
        # "video": the fingerprint of the video a plan file was kept beside (facedit.video.plan_file checks it)
        known = set(cls.__dataclass_fields__) - {"infill_mask"} | {"format", "version", "infill_runs", "video"}
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
    """An edit while the plan is built: exact seconds on both sides, frames as derived, word ranges if any.

    ``shift_s`` is the time shift of the unchanged stretch after the edit (edited minus original time of the
    word right after it, or of the edit's end at the tail)."""

    type: str
    a0: Fraction
    a1: Fraction
    b0: Fraction
    b1: Fraction
    shift_s: Fraction
    words_a: tuple[int, int] = (0, 0)  # [start, end) indices into the original words
    words_b: tuple[int, int] = (0, 0)  # [start, end) indices into the edited words
    B0: int = 0  # noqa: N815 - target frames [B0, B1)
    B1: int = 0  # noqa: N815


def _merge(a: _Span, b: _Span) -> _Span:
    removed = a.type in ("substitution", "deletion") or b.type in ("substitution", "deletion")
    added = a.type in ("substitution", "insertion") or b.type in ("substitution", "insertion")
    kind = "substitution" if removed and added else "deletion" if removed else "insertion"
    return _Span(kind, a.a0, b.a1, a.b0, b.b1, b.shift_s, (a.words_a[0], b.words_a[1]), (a.words_b[0], b.words_b[1]))


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


def _place_spans(spans: list[_Span], rate: Fraction, target: int) -> list[_Span]:
    """Target frames [floor(b0 fps), ceil(b1 fps)) of every span; spans whose frames overlap are joined."""
    spans = list(spans)
    while True:
        for s in spans:
            s.B0 = min(max(math.floor(s.b0 * rate), 0), target)
            s.B1 = min(max(math.ceil(s.b1 * rate), s.B0), target)
        k = next((k for k in range(len(spans) - 1) if spans[k + 1].B0 < spans[k].B1), None)
        if k is None:
            return spans
        spans[k : k + 2] = [_merge(spans[k], spans[k + 1])]


def _build_plan(
    spans: list[_Span],
    *,
    original_duration_s: float,
    edited_duration_s: float,
    fps: float,
    rate: Fraction,
    source_frames: int,
    context_frames: int,
    original_words: tuple[Word, ...] = (),
    edited_words: tuple[Word, ...] = (),
    warnings: list[str] | None = None,
) -> EditPlan:
    """Frames from exact seconds.

    Unchanged stretches: the one before the first edit has shift 0, the one after edit k shifts by
    round_half_up(spans[k].shift_s * fps) frames. An edit maps source frames [A0, A1) = [B0 - shift before,
    B1 - shift after) linearly onto its target frames [B0, B1), so the time map is continuous at its ends."""
    warnings = list(warnings or [])
    context_frames = _check_int(context_frames, "context_frames", 0)
    target = _round_half_up(_q(edited_duration_s) * rate)
    if target < 1:
        raise ValueError(f"the edited speech ({edited_duration_s:.3f} s) is shorter than one frame at {fps:g} fps")
    spans = _place_spans(spans, rate, target)
    shifts = [0] + [_round_half_up(s.shift_s * rate) for s in spans]
    source_time = np.empty(target, dtype=np.float64)
    mask = np.zeros(target, dtype=bool)
    bounds = [0, *[x for s in spans for x in (s.B0, s.B1)], target]
    outside = 0
    for k in range(len(spans) + 1):
        lo, hi = bounds[2 * k], bounds[2 * k + 1]
        frames = np.arange(lo, hi, dtype=np.float64) - shifts[k]
        if k < len(spans):
            outside += int(np.count_nonzero((frames < 0) | (frames > source_frames - 1)))
        source_time[lo:hi] = frames
    edits = []
    for k, s in enumerate(spans):
        a0 = min(max(s.B0 - shifts[k], 0), source_frames)
        a1 = min(max(s.B1 - shifts[k + 1], a0), source_frames)
        nb = s.B1 - s.B0
        if nb > 0:
            j = np.arange(s.B0, s.B1, dtype=np.float64)
            source_time[s.B0 : s.B1] = a0 - 0.5 + (j + 0.5 - s.B0) * (a1 - a0) / nb
        lo, hi = (s.B0, s.B1) if nb > 0 else (s.B0 - 1, s.B0 + 1)
        want_lo, want_hi = lo - context_frames, hi + context_frames
        m0, m1 = max(want_lo, 0), min(want_hi, target)
        mask[m0:m1] = True
        edits.append(
            Edit(
                s.type,
                (float(s.a0), float(s.a1)),
                (float(s.b0), float(s.b1)),
                (a0, a1),
                (s.B0, s.B1),
                (m0, m1),
                tuple(w.text for w in original_words[s.words_a[0] : s.words_a[1]]),
                tuple(w.text for w in edited_words[s.words_b[0] : s.words_b[1]]),
                (m0 - want_lo, want_hi - m1),
            )
        )
    warnings += _tail_warnings(spans, shifts[-1], target, source_frames, rate, edited_duration_s)
    if outside:
        warnings.append(
            f"{outside} unedited target frame(s) before the last edit fall outside the video's {source_frames} "
            f"frames and repeat its first / last frame: do the word times fit this video?"
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


def _tail_warnings(
    spans: list[_Span], shift: int, target: int, source_frames: int, rate: Fraction, edited_duration_s: float
) -> list[str]:
    """The clip ends when the edited speech ends: say how many original frames the tail drops or repeats."""
    start = spans[-1].B1 if spans else 0
    last_shown = target - 1 - shift if target > start else None
    if last_shown is None:  # the last edit runs to the end: its source span ends the shown frames
        last_shown = min(max(spans[-1].B1 - shift, 0), source_frames) - 1
    anchor = (
        f"after the last edit (edited {float(spans[-1].b1):.3f} s, original {float(spans[-1].a1):.3f} s)"
        if spans
        else "with no edit"
    )
    edited_tail = edited_duration_s - (float(spans[-1].b1) if spans else 0.0)
    video_tail = float(source_frames / rate) - (float(spans[-1].a1) if spans else 0.0)
    why = f"{anchor} the edited speech goes on {edited_tail:.3f} s and the video {video_tail:.3f} s"
    if last_shown > source_frames - 1:
        n = last_shown - (source_frames - 1)
        return [f"{why}: the last original frame is repeated in the last {n} target frame(s)"]
    if last_shown < source_frames - 1:
        n = source_frames - 1 - max(last_shown, -1)
        return [f"{why}: the video's last {n} frame(s) are dropped"]
    return []


def _timed(w: Word) -> bool:
    return not w.interpolated


def _span_of(
    e: WordEdit, original: Sequence[Word], edited: Sequence[Word]
) -> tuple[Fraction, Fraction, Fraction, Fraction, list[Word]]:
    """(s0, s1, t0, t1) of a word edit and the words that set them.

    Between unchanged words the edit runs from the end of the one before to the start of the one after (the
    pauses next to the changed words belong to the edit). Silence is not an edit: at the clip start it begins at
    the first changed word (on whichever side speaks first, as both timelines start at 0), at the clip end it
    stops at the end of each side's last changed word (the tail then follows from there)."""
    (i0, i1), (j0, j1) = e.original, e.edited
    changed = [*original[i0:i1], *edited[j0:j1]]
    used: list[Word] = []
    if i1 < len(original):  # an unchanged word after (align_words pairs it with edited[j1])
        s1, t1 = _q(original[i1].start), _q(edited[j1].start)
        used += [original[i1], edited[j1]]
    else:
        last_a = original[i1 - 1] if i1 > i0 else original[i0 - 1] if i0 > 0 else None
        last_b = edited[j1 - 1] if j1 > j0 else edited[j0 - 1] if j0 > 0 else None
        s1 = _q(last_a.end) if last_a else Fraction(0)
        t1 = _q(last_b.end) if last_b else Fraction(0)
        used += [w for w in (last_a, last_b) if w]
    if i0 > 0:
        s0, t0 = _q(original[i0 - 1].end), _q(edited[j0 - 1].end)
        used += [original[i0 - 1], edited[j0 - 1]]
    else:
        first = min(changed, key=lambda w: w.start)
        e0 = _q(first.start)
        s0, t0 = min(e0, s1), min(e0, t1)
        used.append(first)
    return s0, max(s1, s0), t0, max(t1, t0), used


def plan_edit(
    original_words: Sequence[Word],
    edited_words: Sequence[Word],
    *,
    original_duration_s: float,
    edited_duration_s: float,
    fps: float | Fraction,
    source_frames: int,
    context_frames: int = 3,
    max_overhang_frames: float = 1.0,
) -> EditPlan:
    """Edit plan from the words (with times) of the original and the edited speech.

    The word sequences are aligned on normalised tokens; every changed region becomes one edit (substitution,
    insertion or deletion). After edit k, unedited target frame j shows source frame j - shift_k with
    shift_k = round_half_up((t1 - s1) * fps), where the word right after the edit starts at t1 in the edited
    speech and s1 in the original: the words, not the audio lengths, set the time. The clip ends when the edited
    speech ends; original frames missing at the tail repeat the last one, extra ones are dropped (both warned).
    ``source_frames`` is the original video's frame count: the original speech may not be longer than the video
    by more than ``max_overhang_frames``. Words with interpolated times (``Word.interpolated``) are used where
    they sit, with a warning wherever one sets an edit boundary; a side with no timed word is an error.
    """
    rate = _rate(fps)
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
        if words and not any(_timed(w) for w in words):
            raise ValueError(
                f"{name} words: none of the {len(words)} words has a time (every time would be interpolated): an "
                f"edit plan needs word timestamps (whisper word_timestamps=True, whisperx alignment), or use "
                f"manual spans"
            )
    pairs, word_edits = align_words(original_words, edited_words)
    warnings: list[str] = []
    spans: list[_Span] = []
    groups: list[list[tuple[int, int]]] = [[] for _ in range(len(word_edits) + 1)]
    for i, j in pairs:
        groups[sum(1 for e in word_edits if e.original[0] <= i)].append((i, j))
    for k, e in enumerate(word_edits):
        s0, s1, t0, t1, used = _span_of(e, original_words, edited_words)
        shift = t1 - s1
        what = f"the {e.type} {[w.text for w in original_words[slice(*e.original)]]} -> "
        what += f"{[w.text for w in edited_words[slice(*e.edited)]]}"
        if not all(_timed(w) for w in used):
            warnings.append(f"{what} has a boundary at a word whose time was interpolated; check its span")
        after = groups[k + 1]
        if after and not (_timed(original_words[after[0][0]]) and _timed(edited_words[after[0][1]])):
            timed = next((p for p in after if _timed(original_words[p[0]]) and _timed(edited_words[p[1]])), None)
            if timed is not None:
                shift = _q(edited_words[timed[1]].start) - _q(original_words[timed[0]].start)
                warnings.append(
                    f"{what}: the word after it has an interpolated time, so the frames after it follow "
                    f"{original_words[timed[0]].text!r}, the first timed unchanged word"
                )
        spans.append(_Span(e.type, s0, s1, t0, t1, shift, e.original, e.edited))
    for group, shift in zip(groups, [Fraction(0)] + [s.shift_s for s in spans], strict=True):
        diffs = [
            d
            for i, j in group
            if _timed(original_words[i]) and _timed(edited_words[j])
            for d in (edited_words[j].start - original_words[i].start, edited_words[j].end - original_words[i].end)
        ]
        worst = max((abs(d - float(shift)) for d in diffs), default=0.0)
        if worst > _MISFIT_S:
            warnings.append(
                f"unchanged words from {original_words[group[0][0]].text!r} on are up to {worst:.3f} s off the "
                f"time shift of their stretch ({float(shift):+.3f} s): is the edited speech a splice of the "
                f"original? Unedited frames follow one shift per stretch"
            )
    return _build_plan(
        spans,
        original_duration_s=original_duration_s,
        edited_duration_s=edited_duration_s,
        fps=fps,
        rate=rate,
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


FITS = ("exact", "stretch_last")


def plan_from_spans(
    spans: Sequence[SpanEdit | tuple[float, float, float]],
    *,
    original_duration_s: float,
    fps: float | Fraction,
    source_frames: int,
    edited_duration_s: float | None = None,
    context_frames: int = 3,
    max_overhang_frames: float = 1.0,
    fit: str = "exact",
) -> EditPlan:
    """Edit plan without timestamps, from edit spans of the original speech and their new durations.

    The edited duration follows from the spans. When the real edited speech's duration is given and differs
    from it by more than half a frame, ``fit="exact"`` refuses the plan with both numbers and
    ``fit="stretch_last"`` gives the difference to the last span (with a warning).
    """
    if fit not in FITS:
        raise ValueError(f"fit: expected one of {FITS}, got {fit!r}")
    rate = _rate(fps)
    fps = _check_fps(fps)
    original_duration_s = _check_duration(original_duration_s, "original_duration_s")
    _check_video(original_duration_s, fps, source_frames, max_overhang_frames)
    items = [s if isinstance(s, SpanEdit) else SpanEdit(*s) for s in spans]
    if not items:
        raise ValueError("spans: give at least one (start, end, new_duration) edit")
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
        prev_end = s.end
    starts, ends = [_q(s.start) for s in items], [_q(s.end) for s in items]
    news = [_q(s.new_duration) for s in items]
    implied = _q(original_duration_s) + sum(n - (b - a) for a, b, n in zip(starts, ends, news, strict=True))
    warnings = []
    if edited_duration_s is None:
        edited_duration_s = float(implied)
    else:
        edited_duration_s = _check_duration(edited_duration_s, "edited_duration_s")
        gap = _q(edited_duration_s) - implied
        if abs(gap) * rate > Fraction(1, 2):
            said = (
                f"the edited speech is {edited_duration_s:.3f} s but the spans make {float(implied):.3f} s "
                f"({float(gap):+.3f} s, more than half a frame at {fps:g} fps)"
            )
            if fit == "exact":
                raise ValueError(f"{said}: correct the spans' new durations, or choose fit 'stretch_last'")
            if news[-1] + gap < 0:
                raise ValueError(f"{said}: the last span's new duration cannot absorb it")
            warnings.append(f"{said}: the last span absorbs the {float(gap):+.3f} s (fit 'stretch_last')")
            news[-1] += gap
    built: list[_Span] = []
    total = Fraction(0)
    for a, b, n in zip(starts, ends, news, strict=True):
        kind = "deletion" if n == 0 else "insertion" if a == b else "substitution"
        b0 = a + total
        total += n - (b - a)
        built.append(_Span(kind, a, b, b0, b0 + n, total))
    return _build_plan(
        built,
        original_duration_s=original_duration_s,
        edited_duration_s=edited_duration_s,
        fps=fps,
        rate=rate,
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

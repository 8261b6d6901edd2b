"""Edit plans: word alignment, frame arithmetic at common frame rates, manual spans, generation, serialisation."""

import json
import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from facedit.edits import (
    Edit,
    EditPlan,
    SpanEdit,
    align_words,
    normalize_token,
    plan_edit,
    plan_from_spans,
    plan_generation,
    target_frame_count,
)
from facedit.timestamps import Word, parse_words

FIXTURES = Path(__file__).parent / "fixtures" / "edits"
CASES = sorted(p.stem for p in FIXTURES.glob("*.json"))


def load_case(name):
    case = json.loads((FIXTURES / f"{name}.json").read_text())
    original = parse_words(case["original"]["words"], duration_s=case["original"]["duration_s"])
    edited = parse_words(case["edited"]["words"], duration_s=case["edited"]["duration_s"])
    plan = plan_edit(
        original,
        edited,
        original_duration_s=case["original"]["duration_s"],
        edited_duration_s=case["edited"]["duration_s"],
        fps=case["fps"],
        source_frames=case["source_frames"],
        context_frames=case["context_frames"],
    )
    return case, plan


# ---------------------------------------------------------------- counting frames


@pytest.mark.parametrize(
    "duration,fps,frames",
    [
        (3.0, 25, 75),
        (1.2, 25, 30),
        (2.5, 29.97, 75),
        (1.0, 30000 / 1001, 30),
        (0.02, 25, 1),
        (0.0199, 25, 0),
        (10.0, 24, 240),
        (1 / 60, 30, 1),
        (0.0, 30, 0),
    ],
)
def test_target_frame_count_rounds_half_up(duration, fps, frames):
    assert target_frame_count(duration, fps) == frames


@pytest.mark.parametrize("bad", [0, -25, float("nan"), float("inf"), "25", True])
def test_target_frame_count_refuses_bad_fps(bad):
    with pytest.raises(ValueError, match="fps"):
        target_frame_count(1.0, bad)


def test_target_frame_count_refuses_bad_duration():
    with pytest.raises(ValueError, match="duration_s"):
        target_frame_count(-1.0, 25)


# ---------------------------------------------------------------- aligning words


def test_normalize_token():
    assert normalize_token(" Don't,") == "dont"
    assert normalize_token("HELLO!") == normalize_token("hello") == "hello"
    assert normalize_token("Ｆｕｌｌ") == "full"  # NFKC folds full-width letters
    assert normalize_token("1990,") == "1990"
    assert normalize_token("—") == ""


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ("the cat sat", "the dog sat", [("substitution", (1, 2), (1, 2))]),
        ("the cat sat", "the cat sat down", [("insertion", (3, 3), (3, 4))]),
        ("well the cat sat", "the cat sat", [("deletion", (0, 1), (0, 0))]),
        (
            "a b c d e",
            "x b d e y",
            [("substitution", (0, 1), (0, 1)), ("deletion", (2, 3), (2, 2)), ("insertion", (5, 5), (4, 5))],
        ),
        ("the cat and the dog", "the dog", [("deletion", (1, 4), (1, 1))]),
        ("one two", "three four", [("substitution", (0, 2), (0, 2))]),
        ("Hello, world!", "hello world", []),
        ("a - b", "a b", []),
    ],
)
def test_align_words(a, b, expected):
    pairs, edits = align_words(a.split(), b.split())
    assert [(e.type, e.original, e.edited) for e in edits] == expected
    ta, tb = a.split(), b.split()
    assert all(normalize_token(ta[i]) == normalize_token(tb[j]) for i, j in pairs)


def test_align_prefers_the_longest_common_subsequence():
    # difflib-style greedy matching of the repeated 'the' could anchor on the wrong one; LCS keeps 4 words.
    pairs, edits = align_words("the cat saw the dog".split(), "the dog saw the cat".split())
    assert len(pairs) == 3 and len(edits) == 2


# ---------------------------------------------------------------- hand-built fixtures


@pytest.mark.parametrize("name", CASES)
def test_fixture_plans(name):
    case, plan = load_case(name)
    exp = case["expected"]
    assert plan.mode == "edit" and plan.fps == case["fps"] and plan.source_frames == case["source_frames"]
    assert plan.target_frames == exp["target_frames"]
    assert len(plan.edits) == len(exp["edits"])
    for got, want in zip(plan.edits, exp["edits"], strict=True):
        assert got.type == want["type"]
        assert list(got.source_span) == want["source_span"]
        assert list(got.target_span) == want["target_span"]
        assert list(got.mask_span) == want["mask_span"]
        assert list(got.original_words) == want["original_words"]
        assert list(got.edited_words) == want["edited_words"]
        assert list(got.margin_clamped) == want.get("margin_clamped", [0, 0])
    assert [list(r) for r in plan.mask_spans()] == exp["mask_runs"]
    for k, value in exp["source_time_at"].items():
        assert plan.source_time[int(k)] == pytest.approx(value, abs=1e-9), f"target frame {k}"
    # The hand-derived map of every unchanged frame: [start, end) shows source frame k - shift, exactly.
    covered = np.zeros(plan.target_frames, dtype=bool)
    for lo, hi, shift in exp["unchanged"]:
        k = np.arange(lo, hi)
        np.testing.assert_array_equal(plan.source_time[lo:hi], k - shift, err_msg=f"frames [{lo}, {hi})")
        covered[lo:hi] = True
    np.testing.assert_array_equal(covered | plan.retimed_mask, True)
    assert not (covered & plan.retimed_mask).any()
    assert np.all(np.diff(plan.source_time) >= 0)
    assert len(plan.warnings) == len(exp.get("warnings", []))
    for got, pattern in zip(plan.warnings, exp.get("warnings", []), strict=True):
        assert re.search(pattern, got), (pattern, got)


def test_fixture_manual_spans_give_the_same_plan():
    case, words_plan = load_case("multi_edit")
    manual = plan_from_spans(
        case["manual_spans"],
        original_duration_s=case["original"]["duration_s"],
        fps=case["fps"],
        source_frames=case["source_frames"],
        context_frames=case["context_frames"],
    )
    assert manual.target_frames == words_plan.target_frames
    np.testing.assert_allclose(manual.source_time, words_plan.source_time, atol=1e-9)
    np.testing.assert_array_equal(manual.infill_mask, words_plan.infill_mask)
    # Types differ on purpose: without words, a span keeping 0.05 s of pause is a substitution, not a deletion.
    assert [e.type for e in manual.edits] == ["substitution"] * 3
    assert [e.target_span for e in manual.edits] == [e.target_span for e in words_plan.edits]


# ---------------------------------------------------------------- splices at common frame rates

FPS = [24, 25, 30000 / 1001, 29.97, 30]


def grid_words(n, start=0.3, step=0.41, length=0.3):
    return [Word(f"w{i}", round(start + step * i, 6), round(start + step * i + length, 6)) for i in range(n)]


def _q(t):
    return Fraction(str(round(float(t), 6)))


def splice(original, duration, ops, pause=0.08, tail_delta=0.0):
    """The words of a spliced speech and the truth about it.

    ops: (i0, i1, piece) replace original words [i0, i1) by ``piece``, words with times relative to the piece's
    first word's start. In the middle the cut runs from the end of word i0 - 1 to the start of word i1 and the
    piece keeps ``pause`` s on each side; at the clip start it begins at word 0's start, at the clip end it stops
    at the last word's end (the lead / tail silence is kept as it was). ``tail_delta`` changes the trailing
    silence only. Returns (edited words, edited duration, [(t0, t1, shift after)] of the edited regions)."""
    edited, regions, shift, i, n = [], [], Fraction(0), 0, len(original)
    for i0, i1, piece in ops:
        edited += [Word(w.text, float(_q(w.start) + shift), float(_q(w.end) + shift)) for w in original[i:i0]]
        at_start, at_end = i0 == 0, i1 == n
        c0 = _q(original[0].start if at_start else original[i0 - 1].end)
        c1 = _q(original[i1 - 1].end if at_end else original[i1].start)
        lead = Fraction(0) if at_start else _q(pause)
        if piece:
            gap = lead + _q(piece[-1].end) + (Fraction(0) if at_end else _q(pause))
        else:
            gap = Fraction(0) if at_start or at_end else _q(pause)
        b0 = c0 + shift
        edited += [Word(w.text, float(b0 + lead + _q(w.start)), float(b0 + lead + _q(w.end))) for w in piece]
        shift += gap - (c1 - c0)
        regions.append((b0, b0 + gap, shift))
        i = i1
    edited += [Word(w.text, float(_q(w.start) + shift), float(_q(w.end) + shift)) for w in original[i:]]
    return edited, float(_q(duration) + shift + _q(tail_delta)), regions


def expected_map(regions, fps, target, source_frames):
    """(edited frames, source frame of every other frame) from the issue's rules and the splice's truth."""
    rate = Fraction(fps).limit_denominator(10**6)
    edit = np.zeros(target, dtype=bool)
    for t0, t1, _ in regions:
        edit[math.floor(t0 * rate) : math.ceil(t1 * rate)] = True
    source = np.full(target, -1.0)
    for j in range(target):
        if not edit[j]:
            shift = next((sh for t0, t1, sh in reversed(regions) if math.ceil(t1 * rate) <= j), Fraction(0))
            source[j] = min(j - math.floor(shift * rate + Fraction(1, 2)), source_frames - 1)
    return edit, source


def check_plan(original, edited, duration, edited_duration, regions, fps, context=2):
    source_frames = target_frame_count(duration, fps)
    plan = plan_edit(
        original,
        edited,
        original_duration_s=duration,
        edited_duration_s=edited_duration,
        fps=fps,
        source_frames=source_frames,
        context_frames=context,
    )
    assert plan.target_frames == target_frame_count(edited_duration, fps)
    edit, source = expected_map(regions, fps, plan.target_frames, source_frames)
    # One frame of slack only at an infill boundary: a frame whose neighbour is on the other side.
    differs = np.flatnonzero(edit != plan.retimed_mask)
    boundary = np.flatnonzero(np.diff(edit.astype(int)) != 0)
    assert all(np.min(np.abs(boundary - k)) <= 1 for k in differs), f"retimed frames differ at {differs}"
    plain = ~edit & ~plan.retimed_mask
    np.testing.assert_array_equal(plan.source_time[plain], source[plain])
    assert np.all(np.diff(plan.source_time) >= 0)
    for e in plan.edits:  # every retimed frame is infilled, with its context margin
        lo, hi = e.target_span if e.target_span[1] > e.target_span[0] else (e.target_span[0] - 1, e.target_span[0] + 1)
        assert plan.infill_mask[max(lo - context, 0) : min(hi + context, plan.target_frames)].all()
    assert plan.infill_mask.sum() == sum(b - a for a, b in plan.mask_spans())
    if not edit[-1]:  # the clip ends when the edited speech ends; the tail says what it repeats or drops
        shift = next((sh for _, _, sh in reversed(regions)), Fraction(0))
        last = plan.target_frames - 1 - math.floor(shift * Fraction(fps).limit_denominator(10**6) + Fraction(1, 2))
        assert any("repeated" in w for w in plan.warnings) == (last > source_frames - 1), plan.warnings
        assert any("dropped" in w for w in plan.warnings) == (last < source_frames - 1), plan.warnings
    return plan


def _piece(words):
    """Words of a separately spoken piece, relative to its first word's start (espeak's empty end marks go)."""
    words = [w for w in words if w.text.strip()]
    return [Word(w.text, round(w.start - words[0].start, 6), round(w.end - words[0].start, 6)) for w in words]


SENTENCE = "Please meet me at the old station before nine tonight."
SCENARIOS = {  # (i0, i1, replacement text) on the ten words above
    "substitution_start": [(0, 1, "Kindly")],
    "substitution_middle": [(6, 7, "harbour gate")],
    "substitution_end": [(9, 10, "tomorrow.")],
    "insertion_start": [(0, 0, "Now")],
    "insertion_middle": [(5, 5, "very")],
    "insertion_end": [(10, 10, "please.")],
    "deletion_start": [(0, 1, "")],
    "deletion_middle": [(5, 6, "")],
    "deletion_end": [(9, 10, "")],
    "two_edits": [(1, 2, "find"), (7, 9, "after ten")],
    "no_op": [],
}


def _grid_piece(text):
    return [Word(t, round(0.33 * k, 6), round(0.33 * k + 0.25, 6)) for k, t in enumerate(text.split())]


def _scenario(source, name, tail_delta=0.0):
    if source == "espeak":
        from _speech_helpers import espeak_available, speak

        if not espeak_available():
            pytest.skip("libespeak-ng not installed (Debian: apt-get install espeak-ng)")
        wave, rate, original = speak(SENTENCE)
        duration = len(wave) / rate
        pieces = {text: _piece(speak(text)[2]) for _, _, text in SCENARIOS[name] if text}
    else:  # hand-made times: always runs
        original = [
            Word(w.text, *(grid_words(10)[k].start, grid_words(10)[k].end))
            for k, w in enumerate(Word(t, 0, 0) for t in SENTENCE.split())
        ]
        duration = original[-1].end + 0.25
        pieces = {text: _grid_piece(text) for _, _, text in SCENARIOS[name] if text}
    ops = [(i0, i1, pieces.get(text, [])) for i0, i1, text in SCENARIOS[name]]
    edited, edited_duration, regions = splice(original, duration, ops, tail_delta=tail_delta)
    return original, edited, duration, edited_duration, regions


@pytest.mark.parametrize("fps", FPS)
@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("source", ["grid", "espeak"])
def test_every_frame_shows_the_right_source_frame(source, name, fps):
    original, edited, duration, edited_duration, regions = _scenario(source, name)
    plan = check_plan(original, edited, duration, edited_duration, regions, fps)
    want = [(i0, i1) for i0, i1, _ in SCENARIOS[name]]
    assert [e.original_words for e in plan.edits] == [tuple(w.text for w in original[a:b]) for a, b in want]
    if name.endswith("_start"):  # silence is not an edit: the lead stays original frames
        lead = math.floor(min(original[0].start, edited[0].start) * fps + 1e-9)
        assert plan.edits[0].target_span[0] == lead > 0
        np.testing.assert_array_equal(plan.source_time[:lead], np.arange(lead))
    if name == "no_op":
        np.testing.assert_array_equal(plan.source_time, np.arange(plan.target_frames))
        assert plan.edits == () and not plan.infill_mask.any() and plan.warnings == ()


@pytest.mark.parametrize("fps", FPS)
@pytest.mark.parametrize("tail_delta", [-0.07, 0.07])
@pytest.mark.parametrize("source", ["grid", "espeak"])
def test_trailing_silence_does_not_shift_the_frames_after_an_edit(source, tail_delta, fps):
    original, _, duration, _, _ = _scenario(source, "no_op")
    word = original[6]  # 'station' -> 'harbour', same time span: the unchanged words do not move
    edited = [*original[:6], Word("harbour", word.start, word.end), *original[7:]]
    edited_duration = duration + tail_delta
    plan = check_plan(
        original, edited, duration, edited_duration, [(_q(original[5].end), _q(original[7].start), 0)], fps
    )
    after = np.arange(plan.edits[0].target_span[1], plan.target_frames)
    shown = np.minimum(after, plan.source_frames - 1)
    np.testing.assert_array_equal(plan.source_time[after], shown)  # zero shift after the edit
    n = abs(plan.target_frames - plan.source_frames)
    if n:
        word = "repeated" if tail_delta > 0 else "dropped"
        assert any(word in w and f"{n} " in w for w in plan.warnings), plan.warnings


@pytest.mark.parametrize("fps", [24, 25, 30000 / 1001, Fraction(30000, 1001), 30, 50, 60, Fraction(24000, 1001)])
def test_no_drift_over_ten_minutes(fps):
    n = 1465
    original = grid_words(n)
    duration = original[-1].end + 0.3
    assert duration > 600
    ops = [(0, 1, _grid_piece("so")), (730, 733, _grid_piece("one two")), (1200, 1200, _grid_piece("x y z")),
           (n - 1, n, _grid_piece("end now"))]  # fmt: skip
    edited, edited_duration, regions = splice(original, duration, ops)
    plan = check_plan(original, edited, duration, edited_duration, regions, fps)
    rate = float(fps)
    for e, (t0, t1, _) in zip(plan.edits, regions, strict=True):  # the same plan in seconds at every rate
        assert e.target_span[0] / rate <= float(t0) < (e.target_span[0] + 1) / rate
        assert (e.target_span[1] - 1) / rate < float(t1) <= e.target_span[1] / rate
    # Every unedited frame is within half a frame of the sound it shows, to the end of the clip.
    for j in np.flatnonzero(~plan.infill_mask)[::7]:
        shift = next((float(sh) for t0, t1, sh in reversed(regions) if j / rate >= float(t1)), 0.0)
        truth = j / rate - shift
        if truth * rate < plan.source_frames - 1:
            assert abs(plan.source_time[j] / rate - truth) <= 0.5 / rate + 1e-9, j


def _untimed(words, index, duration):
    """The words as a transcriber leaves them with word ``index`` unaligned, parsed back (it is interpolated)."""
    data = [{"word": w.text, "start": w.start, "end": w.end} for w in words]
    data[index] = {"word": words[index].text}
    return parse_words(data, duration_s=duration)


@pytest.mark.parametrize("fps", FPS)
@pytest.mark.parametrize("source", ["grid", "espeak"])
def test_an_untimed_word(source, fps):
    original, edited, duration, edited_duration, regions = _scenario(source, "two_edits")
    timed = check_plan(original, edited, duration, edited_duration, regions, fps)
    # 'me' (original word 2) sits right after the first edit ('meet' -> 'find'): an edit boundary.
    at_boundary = _untimed(original, 2, duration)
    assert at_boundary[2].interpolated
    plan = check_plan(at_boundary, edited, duration, edited_duration, regions, fps)
    assert any("interpolated" in w and "'meet'" in w for w in plan.warnings), plan.warnings
    assert any("follow 'at', the first timed unchanged word" in w for w in plan.warnings), plan.warnings
    # 'the' (original word 4) is inside the stretch between the edits: the plan does not change, no warning.
    inside = _untimed(original, 4, duration)
    plan = check_plan(inside, edited, duration, edited_duration, regions, fps)
    np.testing.assert_array_equal(plan.source_time, timed.source_time)
    np.testing.assert_array_equal(plan.infill_mask, timed.infill_mask)
    assert plan.warnings == timed.warnings and plan.original_words[4].interpolated


def test_words_without_any_time_are_refused():
    original = grid_words(4)
    untimed = parse_words([{"word": w.text} for w in original], duration_s=2.0)
    assert all(w.interpolated for w in untimed)
    with pytest.raises(ValueError, match="original words: none of the 4 words has a time"):
        plan_edit(untimed, original, original_duration_s=2.0, edited_duration_s=2.0, fps=25, source_frames=50)
    with pytest.raises(ValueError, match="edited words: none of the 4 words has a time"):
        plan_edit(original, untimed, original_duration_s=2.0, edited_duration_s=2.0, fps=25, source_frames=50)


def test_edited_speech_longer_and_shorter_change_the_target_length():
    original = grid_words(6)
    longer, d_long, _ = splice(original, 3.0, [(2, 3, _grid_piece("n0 n1 n2"))])
    shorter, d_short, _ = splice(original, 3.0, [(2, 4, _grid_piece("n0"))])
    for edited, dur in ((longer, d_long), (shorter, d_short)):
        plan = plan_edit(original, edited, original_duration_s=3.0, edited_duration_s=dur, fps=25, source_frames=75)
        assert plan.target_frames == round(dur * 25)
        assert plan.source_time[-1] == 74  # the last frames are the last source frames again
    assert d_long > 3.0 > d_short


def test_context_margin_widens_and_is_clamped_at_the_clip_ends():
    original = grid_words(5)
    edited, dur, _ = splice(original, 2.4, [(0, 1, _grid_piece("n0"))])
    for margin in (0, 1, 4, 40):
        plan = plan_edit(
            original,
            edited,
            original_duration_s=2.4,
            edited_duration_s=dur,
            fps=25,
            source_frames=60,
            context_frames=margin,
        )
        (e,) = plan.edits
        lead = e.target_span[0]
        assert lead == 7  # the first changed word starts at 0.3 s on both sides: the lead silence is not edited
        np.testing.assert_array_equal(plan.source_time[:lead], np.arange(lead))
        assert e.mask_span == (max(lead - margin, 0), min(e.target_span[1] + margin, plan.target_frames))
        assert e.margin_clamped == (max(0, margin - lead), max(0, e.target_span[1] + margin - plan.target_frames))
        assert plan.infill_mask.sum() == e.mask_span[1] - e.mask_span[0]


@pytest.mark.parametrize("fps", [25, 100])
@pytest.mark.parametrize("pause", [0.0, 0.03])
def test_a_deletion_gives_the_seam_frames_only(pause, fps):
    original = grid_words(6)
    edited, dur, regions = splice(original, 3.0, [(2, 4, [])], pause=pause)  # the cut is at 1.01 s
    plan = plan_edit(
        original, edited, original_duration_s=3.0, edited_duration_s=dur, fps=fps, source_frames=3 * fps,
        context_frames=0,
    )  # fmt: skip
    (e,) = plan.edits
    ((t0, t1, _),) = regions
    assert e.type == "deletion" and e.target_span == (math.floor(t0 * fps), math.ceil(t1 * fps))
    if e.target_span[0] == e.target_span[1]:  # a cut at a frame boundary: the frame on each side is regenerated
        assert pause == 0 and fps == 100
        assert e.mask_span == (e.target_span[0] - 1, e.target_span[0] + 1)
    else:  # the frame(s) that show the seam, no more
        assert e.target_span[1] - e.target_span[0] == {(0.0, 25): 1, (0.03, 25): 1, (0.03, 100): 3}[pause, fps]
        assert e.mask_span == e.target_span
    assert plan.infill_mask.sum() == e.mask_span[1] - e.mask_span[0]


def test_misfitting_timestamps_are_reported():
    original = grid_words(6)
    edited, dur, _ = splice(original, 3.0, [(2, 3, _grid_piece("n0"))])
    edited[-1] = Word(edited[-1].text, edited[-1].start + 0.4, edited[-1].end + 0.4)  # not a splice any more
    plan = plan_edit(original, edited, original_duration_s=3.0, edited_duration_s=dur + 0.4, fps=25, source_frames=75)
    assert any("splice" in w for w in plan.warnings)


def test_interpolated_anchor_is_reported():
    original = [Word("a", 0.1, 0.4), Word("b", 0.5, 0.9, interpolated=True), Word("c", 1.0, 1.3)]
    edited = [Word("a", 0.1, 0.4), Word("b", 0.5, 0.9, interpolated=True), Word("x", 1.0, 1.5)]
    plan = plan_edit(original, edited, original_duration_s=1.5, edited_duration_s=1.7, fps=25, source_frames=38)
    assert any("interpolated" in w for w in plan.warnings)


def test_validation_against_the_video():
    original = grid_words(5)
    edited, dur, _ = splice(original, 2.4, [(1, 2, _grid_piece("n0"))])
    kwargs = dict(original_duration_s=2.4, edited_duration_s=dur, fps=25)
    plan_edit(original, edited, source_frames=59, **kwargs)  # 60 speech frames: one over is tolerated
    with pytest.raises(
        ValueError, match=r"original speech \(2.400 s = 60.0 frames at 25 fps\) is longer than the video"
    ):
        plan_edit(original, edited, source_frames=58, **kwargs)
    with pytest.raises(ValueError, match="source_frames"):
        plan_edit(original, edited, source_frames=0, **kwargs)
    with pytest.raises(ValueError, match=r"original words: word 3 'w3'.*ends after the audio"):
        plan_edit(original, edited, source_frames=60, original_duration_s=1.5, edited_duration_s=dur, fps=25)
    with pytest.raises(ValueError, match="context_frames"):
        plan_edit(original, edited, source_frames=60, context_frames=-1, **kwargs)


def test_same_words_with_a_longer_speech_repeat_the_last_frame_at_the_tail():
    words = grid_words(3)
    plan = plan_edit(words, words, original_duration_s=1.5, edited_duration_s=2.0, fps=25, source_frames=38)
    assert plan.edits == () and plan.target_frames == 50 and not plan.infill_mask.any()
    np.testing.assert_array_equal(plan.source_time, np.minimum(np.arange(50), 37))
    (warning,) = plan.warnings
    assert "goes on 2.000 s and the video 1.520 s" in warning and "repeated in the last 12 target frame(s)" in warning


def test_speech_shorter_than_the_video_uses_the_videos_frames():
    original = grid_words(4)
    edited, dur, _ = splice(original, 2.0, [(1, 2, _grid_piece("n0"))])
    plan = plan_edit(original, edited, original_duration_s=2.0, edited_duration_s=dur, fps=25, source_frames=100)
    assert plan.source_frames == 100 and plan.target_frames == round(dur * 25)
    assert plan.source_time.max() <= 49 + 1
    dropped = 99 - int(plan.source_time[-1])
    assert dropped > 40 and any(f"the video's last {dropped} frame(s) are dropped" in w for w in plan.warnings)


# ---------------------------------------------------------------- manual spans


def test_manual_spans_like_f5_tts():
    # F5-TTS: parts_to_edit [[1.0, 1.5], [2.0, 2.0]] with fix_duration [1.0, 0.4]
    plan = plan_from_spans(
        [(1.0, 1.5, 1.0), SpanEdit(2.0, 2.0, 0.4)], original_duration_s=3.0, fps=30, source_frames=90
    )
    assert plan.edited_duration_s == pytest.approx(3.9)
    assert plan.target_frames == 117
    assert [e.type for e in plan.edits] == ["substitution", "insertion"]
    assert plan.edits[0].source_span == (30, 45) and plan.edits[0].target_span == (30, 60)
    assert plan.edits[1].source_span == (60, 60) and plan.edits[1].target_span == (75, 87)
    assert plan.source_time[29] == 29 and plan.source_time[60] == 45 and plan.source_time[74] == 59
    assert plan.source_time[87] == 60 and plan.source_time[116] == 89
    assert plan.source_time[75] == pytest.approx(59.5)  # an insertion at a point sits between two frames


def test_manual_spans_that_do_not_fit_the_edited_speech():
    kwargs = dict(original_duration_s=2.0, fps=25, source_frames=50)
    with pytest.raises(ValueError, match=r"edited speech is 1.600 s but the spans make 1.500 s \(\+0.100 s"):
        plan_from_spans([(0.5, 1.0, 0.0)], edited_duration_s=1.6, **kwargs)
    with pytest.raises(ValueError, match="600.000 s but the spans make 2.200 s"):
        plan_from_spans([(0.5, 1.0, 0.7)], edited_duration_s=600.0, **kwargs)
    plan = plan_from_spans([(0.5, 1.0, 0.0)], edited_duration_s=1.6, fit="stretch_last", **kwargs)
    assert plan.target_frames == 40 and plan.edits[0].type == "substitution"  # 0.1 s of new speech now
    assert plan.edits[0].edited_span_s == pytest.approx((0.5, 0.6))
    assert any("absorbs the +0.100 s" in w for w in plan.warnings)
    np.testing.assert_array_equal(plan.source_time[15:], np.arange(25, 50))  # shift after: exactly -10 frames
    exact = plan_from_spans([(0.5, 1.0, 0.0)], edited_duration_s=1.515, **kwargs)  # within half a frame
    assert exact.warnings == () and exact.edits[0].type == "deletion"
    with pytest.raises(ValueError, match="last span's new duration cannot absorb"):
        plan_from_spans([(0.5, 1.0, 0.0)], edited_duration_s=1.3, fit="stretch_last", **kwargs)
    with pytest.raises(ValueError, match="fit: expected one of"):
        plan_from_spans([(0.5, 1.0, 0.0)], edited_duration_s=1.5, fit="stretch", **kwargs)


@pytest.mark.parametrize(
    "spans,message",
    [
        ([], "at least one"),
        ([(1.0, 0.5, 0.2)], r"span 0 \(1, 0.5, 0.2\): expected 0 <= start <= end"),
        ([(0.5, 1.0, -1)], "new_duration >= 0"),
        ([(0.5, 3.5, 1)], "ends after the original speech"),
        ([(1.0, 1.5, 1), (1.2, 1.8, 1)], "span 1.*overlaps"),
        ([(1.0, 1.0, 0.0)], "replaces nothing with nothing"),
        ([(1.0, float("nan"), 1)], "numbers of seconds"),
    ],
)
def test_manual_span_errors(spans, message):
    with pytest.raises(ValueError, match=message):
        plan_from_spans(spans, original_duration_s=3.0, fps=25, source_frames=75)


# ---------------------------------------------------------------- generation


@pytest.mark.parametrize("prompt", [1, 8])
def test_generation_plan(prompt):
    plan = plan_generation(2.0, fps=25, prompt_frames=prompt, source_frames=max(prompt, 10))
    assert plan.mode == "generate" and plan.target_frames == 50
    assert not plan.infill_mask[:prompt].any() and plan.infill_mask[prompt:].all()
    np.testing.assert_array_equal(plan.source_time[:prompt], np.arange(prompt))
    assert (plan.source_time[prompt:] == prompt - 1).all()
    (e,) = plan.edits
    assert e.type == "generation" and e.target_span == (prompt, 50)


def test_generation_options_and_errors():
    plan = plan_generation(1.0, fps=30, prompt_frames=6, source_frames=6, appearance_frame=0, context_frames=2)
    assert plan.infill_mask.sum() == 30 - 4 and (plan.source_time[6:] == 0).all()
    with pytest.raises(ValueError, match="longer than the 6 prompt"):
        plan_generation(0.2, fps=30, prompt_frames=6)
    with pytest.raises(ValueError, match="prompt_frames"):
        plan_generation(1.0, fps=30, prompt_frames=0)
    with pytest.raises(ValueError, match="source_frames"):
        plan_generation(1.0, fps=30, prompt_frames=4, source_frames=2)
    with pytest.raises(ValueError, match="appearance_frame 9"):
        plan_generation(1.0, fps=30, prompt_frames=4, source_frames=5, appearance_frame=9)


# ---------------------------------------------------------------- the plan object


def test_plan_round_trips_through_json():
    _, plan = load_case("multi_edit")
    again = EditPlan.from_json(plan.to_json(indent=1))
    for name in (
        "mode",
        "fps",
        "source_frames",
        "target_frames",
        "edits",
        "context_frames",
        "original_words",
        "edited_words",
        "warnings",
        "original_duration_s",
        "edited_duration_s",
    ):
        assert getattr(again, name) == getattr(plan, name), name
    np.testing.assert_array_equal(again.source_time, plan.source_time)
    np.testing.assert_array_equal(again.infill_mask, plan.infill_mask)
    assert again.source_time.dtype == np.float64 and again.infill_mask.dtype == np.bool_
    gen = plan_generation(1.0, fps=24, prompt_frames=3, source_frames=3)
    assert EditPlan.from_dict(json.loads(json.dumps(gen.to_dict()))).edits == gen.edits


def test_plan_loading_refuses_bad_data():
    _, plan = load_case("insertion_middle")
    data = plan.to_dict()
    with pytest.raises(ValueError, match="unknown keys \\['extra'\\]"):
        EditPlan.from_dict({**data, "extra": 1})
    with pytest.raises(ValueError, match="version 99"):
        EditPlan.from_dict({**data, "version": 99})
    with pytest.raises(ValueError, match="not a FacEDiT edit plan"):
        EditPlan.from_dict({"fps": 25})
    with pytest.raises(ValueError, match="infill run"):
        EditPlan.from_dict({**data, "infill_runs": [[60, 70]]})
    with pytest.raises(ValueError, match="source_time must lie"):
        EditPlan.from_dict({**data, "source_time": [99.0] * data["target_frames"]})
    with pytest.raises(ValueError, match="edit type"):
        EditPlan.from_dict({**data, "edits": [{**data["edits"][0], "type": "swap"}]})
    with pytest.raises(ValueError, match="not valid JSON"):
        EditPlan.from_json("{")


def test_check_matches():
    _, plan = load_case("substitution_longer")
    plan.check_matches(50, 25.0)
    plan.check_matches(50, 25.0004)
    with pytest.raises(
        ValueError, match="plan built for another clip: it expects 50 frames at 25 fps, the video has 51"
    ):
        plan.check_matches(51, 25)
    with pytest.raises(ValueError, match="another clip"):
        plan.check_matches(50, 30)


def test_edit_record_round_trip():
    e = Edit("insertion", (1.0, 1.0), (1.0, 1.5), (25, 25), (25, 38), (23, 40), (), ("x",), (0, 0))
    assert Edit.from_dict(e.to_dict()) == e


# ---------------------------------------------------------------- preview picture


def _frames_row_matches(image, plan, width):
    from facedit.plan_preview import _LEFT, _RIGHT, COLORS

    t_max = max(plan.original_duration_s, plan.edited_duration_s, plan.target_frames / plan.fps)
    xs = [int(_LEFT + (width - _LEFT - _RIGHT) * (k + 0.5) / plan.fps / t_max) for k in range(plan.target_frames)]
    retimed = {k: e.type for e in plan.edits for k in range(*e.target_span)}
    want = np.array(
        [COLORS[retimed.get(k, "context" if plan.infill_mask[k] else "unchanged")] for k in range(plan.target_frames)]
    )
    pixels = (image * 255).round().astype(int)
    return any(np.array_equal(pixels[y, xs], want) for y in range(image.shape[0]))


@pytest.mark.parametrize("name", ["multi_edit", "deletion_start", "no_change"])
def test_preview_draws_every_target_frame_in_its_class_colour(name):
    from facedit.plan_preview import render_plan

    _, plan = load_case(name)
    image = render_plan(plan, width=1000)
    assert image.dtype == np.float32 and image.ndim == 3 and image.shape[1:] == (1000, 3)
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert _frames_row_matches(image, plan, 1000)


def test_preview_of_manual_and_generation_plans_and_waveforms(tmp_path):
    import cv2

    from facedit.plan_preview import COLORS, render_plan, save_plan_png

    gen = plan_generation(2.0, fps=25, prompt_frames=5, source_frames=5)
    manual = plan_from_spans([(0.5, 1.0, 0.2), (1.5, 1.5, 0.6)], original_duration_s=2.0, fps=30, source_frames=60)
    for plan in (gen, manual):
        assert _frames_row_matches(render_plan(plan, width=800), plan, 800)
    t = np.arange(32000) / 16000
    wave = {"waveform": torch_wave(np.sin(2 * np.pi * 150 * t) * np.sin(np.pi * t)), "sample_rate": 16000}
    plain = render_plan(manual)
    with_wave = render_plan(manual, original_audio=wave, edited_audio=(np.sin(2 * np.pi * 150 * t[:26000]), 16000))
    wave_colour = np.all((with_wave * 255).round() == np.array(COLORS["wave"]), axis=-1)
    assert wave_colour.sum() > 5000 and not np.all((plain * 255).round() == np.array(COLORS["wave"]), axis=-1).any()
    save_plan_png(manual, str(tmp_path / "plan.png"))
    back = cv2.cvtColor(cv2.imread(str(tmp_path / "plan.png")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back, (plain * 255).round().astype(np.uint8))
    with pytest.raises(ValueError, match="width"):
        render_plan(manual, width=100)


def torch_wave(x):
    import torch

    return torch.from_numpy(np.asarray(x, dtype=np.float32))[None, None]


# ---------------------------------------------------------------- real speech (espeak-ng)


def test_plan_from_real_speech_spoken_by_espeak():
    from _speech_helpers import espeak_available, speak

    if not espeak_available():
        pytest.skip("libespeak-ng not installed (Debian: apt-get install espeak-ng)")
    original_wave, rate, original = speak("The quick brown fox jumps over the lazy dog.")
    edited_wave, _, edited = speak("The quick red fox jumps over the dog.")
    d_o, d_e = len(original_wave) / rate, len(edited_wave) / rate
    plan = plan_edit(
        original,
        edited,
        original_duration_s=d_o,
        edited_duration_s=d_e,
        fps=30,
        source_frames=target_frame_count(d_o, 30),
        context_frames=2,
    )
    assert [(e.type, e.original_words, e.edited_words) for e in plan.edits] == [
        ("substitution", ("brown",), ("red",)),
        ("deletion", ("lazy",), ()),
    ]
    # espeak keeps the unchanged words' timing (the edit is close to a splice); only the tail may differ
    assert all("dropped" in w or "repeated" in w for w in plan.warnings), plan.warnings
    assert plan.target_frames == target_frame_count(d_e, 30) < plan.source_frames
    # 'fox jumps over the' lies between the edits: its frames are source frames shifted by one integer.
    fox, the = edited[3], edited[6]
    middle = [k for k in range(plan.target_frames) if fox.start * 30 + 4 <= k <= the.end * 30 - 4]
    shifts = {plan.source_time[k] - k for k in middle}
    assert len(middle) > 20 and len(shifts) == 1 and float(shifts.pop()).is_integer()
    assert not plan.infill_mask[middle].any()


def test_preview_shows_every_warning_in_full_wrapped_to_the_width():
    import dataclasses

    from facedit.plan_preview import _text_width, _wrap, render_plan

    plan = plan_from_spans([(0.5, 1.0, 0.2)], original_duration_s=2.0, fps=30, source_frames=60)
    long = "after the last edit the edited speech goes on 1.149 s and the video 1.132 s: " * 3 + "the end"
    lines = _wrap(long, 400, 0.38)
    assert " ".join(lines) == " ".join(long.split()) and len(lines) > 2
    assert all(_text_width(line, 0.38) <= 400 for line in lines)
    plain = render_plan(dataclasses.replace(plan, warnings=()), width=600)
    warned = render_plan(dataclasses.replace(plan, warnings=(long, "a second warning")), width=600)
    red = np.all((warned * 255).round() == np.array((180, 40, 0)), axis=-1)
    rows = np.flatnonzero(red.any(axis=1))
    n = len(_wrap(f"warning 1 of 2: {long}", 584, 0.38)) + 1
    assert warned.shape[0] == plain.shape[0] + 32 + 15 * n - 46  # the header grows by the lines
    assert rows.max() - rows.min() > 15 * (n - 1) - 12  # text on every line, down to the last
    assert not red[:, 596:].any()  # nothing runs off the right edge

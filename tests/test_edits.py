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


def grid_words(n, start=0.3, step=0.41, length=0.3):
    return [Word(f"w{i}", round(start + step * i, 6), round(start + step * i + length, 6)) for i in range(n)]


def splice(original, duration, ops):
    """Edited words of a spliced speech. ops: (i0, i1, new_word_count, new_gap_s) replace the pause-to-pause
    region between original word i0 - 1 and word i1 by new_gap_s seconds holding new words.
    Returns edited words, edited duration, and the edited-time spans of the regions with their shift after."""
    edited, regions, shift, i = [], [], 0.0, 0
    for n_op, (i0, i1, count, gap) in enumerate(ops):
        edited += [Word(w.text, w.start + shift, w.end + shift) for w in original[i:i0]]
        a0 = original[i0 - 1].end if i0 > 0 else 0.0
        a1 = original[i1].start if i1 < len(original) else duration
        b0 = a0 + shift
        for c in range(count):
            edited.append(Word(f"new{n_op}_{c}", b0 + gap * (c + 0.2) / count, b0 + gap * (c + 0.8) / count))
        shift += gap - (a1 - a0)
        regions.append((b0, b0 + gap, shift))
        i = i1
    edited += [Word(w.text, w.start + shift, w.end + shift) for w in original[i:]]
    return edited, duration + shift, regions


SCENARIOS = {
    "substitution_longer": [(3, 4, 2, 0.9)],
    "substitution_shorter": [(3, 6, 1, 0.3)],
    "insertion": [(4, 4, 2, 0.8)],
    "deletion": [(2, 5, 0, 0.07)],
    "at_start_and_end": [(0, 1, 2, 0.9), (9, 10, 0, 0.0)],
    "several": [(1, 2, 1, 0.2), (4, 4, 3, 1.1), (6, 7, 0, 0.05), (8, 9, 2, 0.77)],
}


@pytest.mark.parametrize("fps", [24, 25, 29.97, 30000 / 1001, 30])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_unedited_frames_map_to_the_right_source_frames(fps, scenario):
    original = grid_words(10)
    duration = original[-1].end + 0.25
    edited, edited_duration, regions = splice(original, duration, SCENARIOS[scenario])
    source_frames = math.ceil(duration * fps)
    plan = plan_edit(
        original,
        edited,
        original_duration_s=duration,
        edited_duration_s=edited_duration,
        fps=fps,
        source_frames=source_frames,
        context_frames=2,
    )
    assert plan.target_frames == target_frame_count(edited_duration, fps)
    assert abs(plan.target_frames - edited_duration * fps) <= 0.5 + 1e-9
    assert len(plan.edits) == len(SCENARIOS[scenario])
    assert np.all(np.diff(plan.source_time) >= 0)
    assert plan.source_time.min() >= 0 and plan.source_time.max() <= source_frames - 1
    checked = 0
    for k in range(plan.target_frames):
        t0, t1 = k / fps, (k + 1) / fps
        # Frames two or more frames away from every edited region are unedited speech: one integer source frame,
        # within half a frame of where the same sound is in the original.
        if any(t1 > b0 - 2 / fps and t0 < b1 + 2 / fps for b0, b1, _ in regions):
            continue
        shift = next((s for b0, b1, s in reversed(regions) if t0 >= b1), 0.0)
        truth = k - shift * fps
        if truth > source_frames - 1:
            continue
        got = plan.source_time[k]
        assert got == int(got), f"frame {k} not an integer source frame: {got}"
        assert abs(got - truth) <= 0.5 + 1e-9, f"frame {k}: source {got}, sound at {truth}"
        assert not plan.retimed_mask[k]
        checked += 1
    assert checked > plan.target_frames // 3
    first_b0 = regions[0][0]
    head = [k for k in range(plan.target_frames) if (k + 1) / fps <= first_b0 - 2 / fps]
    assert all(plan.source_time[k] == k for k in head)
    for e in plan.edits:  # every retimed frame is infilled, with its context margin
        lo, hi = e.target_span if e.target_span[1] > e.target_span[0] else (e.target_span[0] - 1, e.target_span[0] + 1)
        assert plan.infill_mask[max(lo - 2, 0) : min(hi + 2, plan.target_frames)].all()


def test_edited_speech_longer_and_shorter_change_the_target_length():
    original = grid_words(6)
    longer, d_long, _ = splice(original, 3.0, [(2, 3, 3, 1.2)])
    shorter, d_short, _ = splice(original, 3.0, [(2, 4, 1, 0.2)])
    for edited, dur in ((longer, d_long), (shorter, d_short)):
        plan = plan_edit(original, edited, original_duration_s=3.0, edited_duration_s=dur, fps=25, source_frames=75)
        assert plan.target_frames == round(dur * 25)
        assert plan.source_time[-1] == 74  # the last frames are the last source frames again
    assert d_long > 3.0 > d_short


def test_context_margin_widens_and_is_clamped_at_the_clip_ends():
    original = grid_words(5)
    edited, dur, _ = splice(original, 2.4, [(0, 1, 1, 0.5)])
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
        assert e.target_span[0] == 0
        assert e.mask_span == (0, min(e.target_span[1] + margin, plan.target_frames))
        assert e.margin_clamped == (margin, max(0, e.target_span[1] + margin - plan.target_frames))
        assert plan.infill_mask.sum() == e.mask_span[1]


def test_a_cut_with_no_margin_still_regenerates_the_frames_around_it():
    original = grid_words(6)
    edited, dur, _ = splice(original, 3.0, [(2, 4, 0, 0.05)])  # 0.77 s removed, the cut keeps a short pause
    plan = plan_edit(
        original, edited, original_duration_s=3.0, edited_duration_s=dur, fps=25, source_frames=75, context_frames=0
    )
    (e,) = plan.edits
    assert e.type == "deletion" and e.target_span[1] - e.target_span[0] <= 2
    lo, hi = e.mask_span
    assert lo < e.target_span[0] + 1 and hi > e.target_span[0] and plan.infill_mask[lo:hi].all()
    assert plan.infill_mask.sum() >= 2


def test_misfitting_timestamps_are_reported():
    original = grid_words(6)
    edited, dur, _ = splice(original, 3.0, [(2, 3, 1, 0.6)])
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
    edited, dur, _ = splice(original, 2.4, [(1, 2, 1, 0.5)])
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


def test_same_words_with_a_longer_speech_is_refused():
    words = grid_words(3)
    with pytest.raises(ValueError, match="same words.*manual mode"):
        plan_edit(words, words, original_duration_s=1.5, edited_duration_s=2.0, fps=25, source_frames=38)


def test_speech_shorter_than_the_video_uses_the_videos_frames():
    original = grid_words(4)
    edited, dur, _ = splice(original, 2.0, [(1, 2, 1, 0.5)])
    plan = plan_edit(original, edited, original_duration_s=2.0, edited_duration_s=dur, fps=25, source_frames=100)
    assert plan.source_frames == 100 and plan.target_frames == round(dur * 25)
    assert plan.source_time.max() <= 49 + 1


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


def test_manual_deletion_and_given_edited_duration():
    plan = plan_from_spans([(0.5, 1.0, 0.0)], original_duration_s=2.0, fps=25, source_frames=50, edited_duration_s=1.6)
    assert plan.target_frames == 40 and plan.edits[0].type == "deletion"
    assert any("absorbs" in w for w in plan.warnings)


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
    assert plan.warnings == ()  # espeak keeps the unchanged words' timing: the edit is close to a splice
    assert plan.target_frames == target_frame_count(d_e, 30) < plan.source_frames
    # 'fox jumps over the' lies between the edits: its frames are source frames shifted by one integer.
    fox, the = edited[3], edited[6]
    middle = [k for k in range(plan.target_frames) if fox.start * 30 + 4 <= k <= the.end * 30 - 4]
    shifts = {plan.source_time[k] - k for k in middle}
    assert len(middle) > 20 and len(shifts) == 1 and float(shifts.pop()).is_integer()
    assert not plan.infill_mask[middle].any()

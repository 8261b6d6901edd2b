"""The composed edit/generate pipeline, its timelines between fps, and the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from facedit.pipeline import (
    EditOptions,
    audio_duration,
    edit,
    generate,
    infill_timeline,
    iter_edit,
    make_plan,
    retime_track,
)
from facedit.timeline import (
    from_model_grid,
    interpolate_motion,
    model_grid,
    orthonormalize_rotations,
    to_model_grid,
    work_windows,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "facedit" / "samples"


def _rotations(n: int, seed: int = 0, fps: float = 25.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    angles = 0.1 * np.sin(2 * np.pi * 0.7 * np.arange(n)[:, None] / fps + rng.uniform(0, 6, size=(1, 3)))
    out = []
    for a, b, c in angles:
        rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
        ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
        rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
        out.append((rz @ ry @ rx).reshape(9))
    return np.array(out)


def _motion(n: int, seed: int = 0, fps: float = 25.0) -> np.ndarray:
    """Smooth motion as a face makes it: expression near 1.5 Hz, head pose and translation slower."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None] / fps
    exp = 0.02 * np.sin(2 * np.pi * 1.5 * t + rng.uniform(0, 6, size=(1, 63)))
    trans = 0.01 * np.cos(2 * np.pi * 0.5 * t + rng.uniform(0, 6, size=(1, 3)))
    return np.concatenate([exp, _rotations(n, seed, fps), trans], axis=1)


# ------------------------------------------------------------------------------------------------- timelines


def test_work_windows_merge_runs_whose_context_touches():
    mask = np.zeros(100, bool)
    mask[10:15] = True
    mask[22:25] = True
    mask[70:72] = True
    windows = work_windows(mask, context_frames=4)
    assert [(w.start, w.end) for w in windows] == [(6, 29), (66, 76)]
    assert windows[0].runs == ((10, 15), (22, 25))
    assert work_windows(mask, 0)[0].start == 10
    with pytest.raises(ValueError, match="context_frames"):
        work_windows(mask, -1)


def test_interpolate_motion_is_exact_at_integers_and_keeps_rotations_proper():
    motion = _motion(20)
    assert np.array_equal(interpolate_motion(motion, np.arange(20.0)), motion)
    mid = interpolate_motion(motion, np.arange(19) + 0.5)
    rot = mid[:, 63:72].reshape(-1, 3, 3)
    assert np.allclose(rot @ rot.transpose(0, 2, 1), np.eye(3), atol=1e-9)
    assert np.allclose(np.linalg.det(rot), 1.0)
    assert np.allclose(mid[:, :63], (motion[:-1, :63] + motion[1:, :63]) / 2)
    with pytest.raises(ValueError, match="positions"):
        interpolate_motion(motion, np.array([19.5]))


def test_orthonormalize_fixes_a_reflection_into_a_rotation():
    motion = _motion(3)
    motion[1, 63:72] = (np.diag([1.0, 1.0, -1.0]) @ motion[1, 63:72].reshape(3, 3)).reshape(9)
    fixed = orthonormalize_rotations(motion)[:, 63:72].reshape(-1, 3, 3)
    assert np.allclose(np.linalg.det(fixed), 1.0)


def test_same_fps_grid_is_the_identity():
    mask = np.zeros(30, bool)
    mask[10:20] = True
    grid = model_grid(mask, 25.0, 25.0)
    assert grid.identity and np.array_equal(grid.mask, mask)
    motion = _motion(30)
    carried = to_model_grid(motion, grid)
    assert np.array_equal(carried[~mask], motion[~mask]) and not carried[mask].any()
    assert np.array_equal(from_model_grid(motion, grid, mask), motion[mask])


@pytest.mark.parametrize("video_fps", [24.0, 30000 / 1001, 30.0, 60.0])
def test_other_fps_round_trip_through_the_model_grid(video_fps):
    """Smooth motion carried to 25 fps and read back at the masked video frames stays close to the truth."""
    n = int(2 * video_fps)
    truth = _motion(n, fps=video_fps)
    mask = np.zeros(n, bool)
    mask[n // 3 : 2 * n // 3] = True
    grid = model_grid(mask, video_fps, 25.0)
    assert not grid.identity
    assert grid.positions[-1] >= n - 1 > grid.positions[-2]
    # every masked video frame lies strictly inside the generated part of the grid (or on known frames)
    step = grid.positions[1]
    on_model = np.flatnonzero(mask) / step
    assert grid.mask[np.floor(on_model).astype(int)].all() or grid.mask[np.ceil(on_model).astype(int)].all()
    # the "generated" motion is the truth sampled on the grid: reading it back must reproduce the truth
    model_truth = interpolate_motion(truth, np.minimum(grid.positions, n - 1))
    back = from_model_grid(model_truth, grid, mask)
    assert np.abs(back - truth[mask]).max() < 2e-3
    known = to_model_grid(truth, grid)
    assert np.allclose(known[~grid.mask], model_truth[~grid.mask])


# ---------------------------------------------------------------------------------------------- models + clip


@pytest.fixture(scope="module")
def models():
    from facedit.models import load_models

    return load_models(ROOT / "no-such-models-folder", allow_random=True, seed=0)


def _clip(n: int, size: int = 128) -> np.ndarray:
    portrait = cv2.cvtColor(cv2.imread(str(SAMPLES / "portrait.jpg")), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    portrait = cv2.resize(portrait, (size, size), interpolation=cv2.INTER_AREA)
    frames = []
    for i in range(n):
        m = cv2.getRotationMatrix2D((size / 2, size / 2), 2 * np.sin(i / 5), 1.0)
        m[0, 2] += np.sin(i / 3)
        frames.append(cv2.warpAffine(portrait, m, (size, size), borderMode=cv2.BORDER_REFLECT))
    return np.stack(frames)


def _speech(seconds: float, rate: int = 16000) -> dict:
    t = torch.arange(int(seconds * rate)) / rate
    return {"waveform": (0.1 * torch.sin(2 * np.pi * 220 * t) * torch.sin(np.pi * t))[None, None], "sample_rate": rate}


FACE_BOX = (34.0, 24.0, 94.0, 96.0)


def test_random_models_are_named(models):
    assert set(models.random) == {"liveportrait", "wavlm", "facedit"}


def test_retime_track_reads_integers_exactly_and_interpolates_between(models):
    from facedit.liveportrait import detect_face_track

    frames = _clip(6)
    track = detect_face_track(frames, box=FACE_BOX, smoothing=0)
    same = retime_track(track, np.arange(6.0))
    assert np.array_equal(same.center, track.center) and np.array_equal(same.size, track.size)
    half = retime_track(track, np.array([0.5]))
    assert np.allclose(half.center[0], (track.center[0] + track.center[1]) / 2)
    with pytest.raises(ValueError, match="source_time"):
        retime_track(track, np.array([5.5]))


@pytest.mark.parametrize("fps", [25.0, 30.0])
def test_edit_changes_only_the_edited_span_and_keeps_the_rest_bit_identical(models, fps):
    n = int(1.6 * fps)
    frames = _clip(n)
    speech = _speech(1.9)
    options = EditOptions(steps=2, context_frames=2, motion_context_s=0.3, face_box=FACE_BOX, stitching=False)
    result = edit(frames, fps, speech, models, spans=[(0.6, 0.8, 0.5)], original_duration_s=n / fps,
                  options=options)  # fmt: skip
    plan = result.plan
    assert len(result.frames) == plan.target_frames == round(1.9 * fps)
    touched = plan.infill_mask | plan.retimed_mask
    for k in np.flatnonzero(~touched):
        assert np.array_equal(result.frames[k], frames[int(plan.source_time[k])]), k
    masked = np.flatnonzero(plan.infill_mask)
    assert masked.size > 0
    changed = [not np.array_equal(result.frames[k], frames[int(round(plan.source_time[k]))]) for k in masked]
    assert all(changed)
    # only the face region changes: the corners stay as they were resampled
    k = masked[len(masked) // 2]
    src = frames[int(round(plan.source_time[k]))]
    assert np.abs(result.frames[k][:6, :6] - src[:6, :6]).max() < 0.05


def test_iter_edit_reads_frames_in_order_and_only_once_outside_the_window(models):
    fps = 25.0
    frames = _clip(40)
    reads: list[int] = []

    class Reader:
        def __len__(self):
            return len(frames)

        def __getitem__(self, i):
            reads.append(int(i))
            return frames[i]

    plan = make_plan(fps=fps, source_frames=40, original_duration_s=1.6, edited_duration_s=1.6,
                     spans=[(0.8, 1.0, 0.2)], context_frames=1)  # fmt: skip
    speech = models.wavlm.encode(_speech(1.6))
    options = EditOptions(steps=1, motion_context_s=0.2, face_box=FACE_BOX, stitching=False)
    out = list(iter_edit(Reader(), plan, models, speech, options))
    assert len(out) == 40
    window = set(range(15, 31))
    outside = [i for i in reads if i not in window]
    assert outside == sorted(outside) and len(outside) == len(set(outside))


def test_iter_edit_rejects_a_plan_for_another_clip_and_short_speech(models):
    plan = make_plan(fps=25.0, source_frames=40, original_duration_s=1.6, edited_duration_s=1.6,
                     spans=[(0.8, 1.0, 0.2)])  # fmt: skip
    speech = models.wavlm.encode(_speech(1.6))
    with pytest.raises(ValueError, match="frames|clip"):
        next(iter_edit(_clip(30), plan, models, speech))
    short = models.wavlm.encode(_speech(1.0))
    with pytest.raises(ValueError, match="speech features cover"):
        next(iter_edit(_clip(40), plan, models, short))


def test_infill_timeline_touches_only_masked_rows_and_needs_motion_near_edits(models):
    fps = 25.0
    motion = _motion(60).astype(np.float32)
    motion[:5] = np.nan  # never extracted: far from the edit
    mask = np.zeros(60, bool)
    mask[30:36] = True
    speech = models.wavlm.encode(_speech(2.4))
    options = EditOptions(steps=2, motion_context_s=0.4)
    out = infill_timeline(models.facedit, motion, mask, fps, speech, options)
    assert np.array_equal(out[~mask], motion[~mask], equal_nan=True)
    assert np.isfinite(out[mask]).all() and not np.allclose(out[mask], motion[mask])
    motion[28] = np.nan
    with pytest.raises(ValueError, match="missing"):
        infill_timeline(models.facedit, motion, mask, fps, speech, options)


def test_generate_keeps_the_portrait_as_frame_zero(models):
    portrait = _clip(1)[0]
    result = generate(portrait, _speech(0.6), models, fps=25.0,
                      options=EditOptions(steps=2, face_box=FACE_BOX, stitching=False))  # fmt: skip
    assert result.frames.shape == (15, 128, 128, 3)
    assert np.array_equal(result.frames[0], portrait)
    assert not np.array_equal(result.frames[5], portrait)
    assert np.array_equal(result.frames[5][:4, :4], portrait[:4, :4])


def test_audio_duration_rejects_what_is_not_audio():
    assert audio_duration(_speech(0.5)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="waveform"):
        audio_duration({"samples": []})


def test_cli_demo_writes_a_playable_mp4_with_audio(tmp_path):
    from facedit.video_io import iter_frames, probe_video, read_audio

    out = tmp_path / "demo.mp4"
    proc = subprocess.run(
        [sys.executable, "-m", "facedit", "demo", "--out", str(out), "--steps", "2", "--models", str(tmp_path / "m")],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RANDOM-initialised" in proc.stderr
    # the sample has a keyframe every second: the GOPs before and after the edit are the source's own packets
    assert "smart render (h264): 3 of 4 source GOPs copied packet for packet (75 frames bit-identical" in proc.stderr
    info = probe_video(out)
    assert info.frame_count == 111 and float(info.fps) == 25.0
    source = np.stack(list(iter_frames(SAMPLES / "facedit_sample.mp4", dtype="uint8")))
    edited = np.stack(list(iter_frames(out, dtype="uint8")))
    np.testing.assert_array_equal(edited[:50], source[:50])  # before the edit's GOP, frame for frame
    wave, rate = read_audio(out)
    assert abs(wave.shape[-1] / rate - 4.428) < 0.05
    assert (tmp_path / "demo.plan.png").exists()


def test_cli_edit_explains_missing_inputs(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "facedit", "edit", "--video", "x.mp4", "--speech", "y.wav",
                           "--out", str(tmp_path / "o.mp4")], cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and "--original-words" in proc.stderr


# ---------------------------------------------------------------------------------- frame rates, files, the CLI


def _video_file(path, frames: np.ndarray, fps, audio_s: float | None = None):
    from facedit.video_io import write_video

    audio = None if audio_s is None else np.zeros((1, int(audio_s * 16000)), np.float32)
    return write_video(path, frames, fps, audio=audio, sample_rate=16000 if audio is not None else None, crf=10)


def test_iter_edit_refuses_a_plan_made_at_another_frame_rate(models, tmp_path):
    from facedit.video_io import VideoFrames

    plan = make_plan(fps=5.0, source_frames=20, original_duration_s=4.0, edited_duration_s=4.0,
                     spans=[(1.0, 1.4, 0.4)])  # fmt: skip
    speech = models.wavlm.encode(_speech(4.0))
    with pytest.raises(ValueError, match=r"20 frames at 5 fps.*20 frames at 10 fps"):
        next(iter_edit(_clip(20), plan, models, speech, fps=10.0))
    reader = VideoFrames(_video_file(tmp_path / "ten.mp4", _clip(20), 10))  # a reader knows its own rate
    with pytest.raises(ValueError, match=r"plan built for another clip.*at 10 fps"):
        next(iter_edit(reader, plan, models, speech))


def test_edit_file_reads_a_variable_frame_rate_video_by_its_timestamps(models, tmp_path, caplog):
    import soundfile as sf
    from _vfr_helpers import TIMES, marker, shown_at, write_vfr

    from facedit.pipeline import edit_file
    from facedit.video import OutputFormat
    from facedit.video_io import iter_frames

    base = np.rint(_clip(len(TIMES)) * 255).astype(np.uint8)
    src = write_vfr(tmp_path / "vfr.mp4", image=lambda i: base[i], size=(128, 128))
    speech = tmp_path / "edited.wav"
    sf.write(str(speech), _speech(3.0)["waveform"][0, 0].numpy(), 16000)
    options = EditOptions(steps=1, context_frames=2, motion_context_s=0.2, face_box=FACE_BOX, stitching=False)
    out = tmp_path / "out.mp4"
    with caplog.at_level("WARNING"):
        plan = edit_file(src, speech, out, models, spans=[(2.0, 2.2, 0.2)], options=options,
                         output=OutputFormat(crf=0))  # fmt: skip
    assert "variable frame rate" in caplog.text
    assert plan.fps == 50 and plan.source_frames == plan.target_frames == 150
    masked = np.flatnonzero(plan.infill_mask)
    assert masked.min() >= 100 - 3 and masked.max() <= 110 + 3  # the edit at 2.0-2.2 s is at 2.0-2.2 s
    shown = [marker(f) for f in iter_frames(out, dtype="uint8")]
    assert len(shown) == 150
    untouched = np.flatnonzero(~(plan.infill_mask | plan.retimed_mask))
    assert [shown[k] for k in untouched] == [shown_at(k / 50) for k in untouched]


def _stop(*args, **kwargs):
    raise RuntimeError("stopped after the plan")


def test_cli_prints_every_plan_warning_before_the_long_stages(tmp_path, monkeypatch, capsys):
    import dataclasses

    import soundfile as sf

    import facedit.pipeline as pipeline
    from facedit.__main__ import main

    video = _video_file(tmp_path / "v.mp4", _clip(20), 10, audio_s=2.0)
    sf.write(str(tmp_path / "e.wav"), np.zeros(32000, np.float32), 16000)
    real = pipeline.make_plan
    warned = ("first thing", "second thing")
    monkeypatch.setattr(pipeline, "make_plan", lambda **kw: dataclasses.replace(real(**kw), warnings=warned))
    monkeypatch.setattr(pipeline, "encode_speech", _stop)
    argv = ["edit", "--video", str(video), "--speech", str(tmp_path / "e.wav"), "--spans", "0.5 0.7 0.2",
            "--out", str(tmp_path / "o.mp4"), "--models", str(tmp_path / "m")]  # fmt: skip
    monkeypatch.setattr("facedit.__main__._models", lambda args, allow_random=False: None)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "plan warning: first thing" in err and "plan warning: second thing" in err
    assert err.index("plan warning: second thing") < err.index("stopped after the plan")


def test_cli_checks_words_against_the_audio_they_time(tmp_path, monkeypatch, capsys):
    import json

    import soundfile as sf

    from facedit.__main__ import main

    video = _video_file(tmp_path / "v.mp4", _clip(20), 10, audio_s=2.0)
    sf.write(str(tmp_path / "e.wav"), np.zeros(24000, np.float32), 16000)  # 1.5 s
    words = [{"word": "hello", "start": 0.2, "end": 0.6}, {"word": "there", "start": 0.7, "end": 1.2}]
    (tmp_path / "o.json").write_text(json.dumps(words))
    late = words + [{"word": "friend", "start": 1.3, "end": 1.9}]  # after the 1.5 s edited speech ends
    (tmp_path / "e.json").write_text(json.dumps(late))
    monkeypatch.setattr("facedit.__main__._models", lambda args, allow_random=False: None)
    argv = ["edit", "--video", str(video), "--speech", str(tmp_path / "e.wav"), "--original-words",
            str(tmp_path / "o.json"), "--edited-words", str(tmp_path / "e.json"),
            "--out", str(tmp_path / "o.mp4")]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "--edited-words (checked against --speech, 1.500 s)" in err and "friend" in err
    (tmp_path / "e.json").write_text(json.dumps(words))
    (tmp_path / "o.json").write_text(json.dumps(late[:2] + [{"word": "x", "start": 2.5, "end": 2.9}]))
    assert main(argv) == 1
    assert "--original-words (checked against the video's audio track" in capsys.readouterr().err


def test_cli_edit_writes_the_plan_json_the_evaluator_reads(tmp_path, monkeypatch):
    import soundfile as sf

    import facedit.pipeline as pipeline
    from facedit.__main__ import main
    from facedit.edits import plan_from_spans
    from facedit.evaluate import load_plans, plan_boundaries

    video = _video_file(tmp_path / "v.mp4", _clip(20), 10, audio_s=2.0)
    sf.write(str(tmp_path / "e.wav"), np.zeros(32000, np.float32), 16000)
    plan = plan_from_spans([(0.5, 0.7, 0.2)], original_duration_s=2.0, fps=10, source_frames=20, context_frames=3)

    def edit_file(video, speech, out, models, **kwargs):
        Path(out).write_bytes(b"")  # the video itself is not what this test looks at
        return plan

    monkeypatch.setattr(pipeline, "edit_file", edit_file)
    monkeypatch.setattr("facedit.__main__._models", lambda args, allow_random=False: None)
    out = tmp_path / "o.mp4"
    argv = ["edit", "--video", str(video), "--speech", str(tmp_path / "e.wav"), "--spans", "0.5 0.7 0.2",
            "--out", str(out), "--models", str(tmp_path / "m")]  # fmt: skip
    assert main(argv) == 0
    assert out.with_suffix(".plan.png").is_file()
    (read,) = load_plans({"o": str(out)}).values()
    assert read.mask_spans() == plan.mask_spans() == [(2, 10)]
    assert plan_boundaries(read, 20, 20) == plan_boundaries(plan, 20, 20)


def test_speech_encoded_for_a_plan_is_cut_to_what_was_encoded(models):
    from facedit.pipeline import _windows_for, encode_speech, speech_window

    seconds, fps = 120.0, 25.0
    speech = _speech(seconds)
    plan = make_plan(fps=fps, source_frames=int(seconds * fps), original_duration_s=seconds, edited_duration_s=seconds,
                     spans=[(60.0, 61.0, 1.0)], context_frames=12)  # fmt: skip
    full = models.wavlm.encode(speech)
    cut = encode_speech(models, speech, plan=plan)
    assert cut.num_frames < full.num_frames // 2 and cut.duration_s == full.duration_s  # encoded in ~30 s chunks
    assert not torch.isfinite(cut.features[0]).all() and not torch.isfinite(cut.features[-1]).all()  # the cuts
    (window,) = _windows_for(plan, fps, EditOptions())
    start, end = window.start / fps, (window.end - 1) / fps
    got, offset = speech_window(cut, start, end, 1.0)
    want, want_offset = speech_window(full, start, end, 1.0)
    assert got.shape == want.shape and offset == pytest.approx(want_offset, abs=1e-9)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)  # windows encoded in chunks vs whole
    with pytest.raises(ValueError, match="were not encoded"):
        speech_window(cut, cut.offset_s - 3.0, end, 1.0)  # reaches past the encoded stretch

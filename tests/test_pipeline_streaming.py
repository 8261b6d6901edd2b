"""An edit window is streamed (issue 18, memory): the source frames go through a spill, the target frames are
made one at a time, and the output is the one the stacked window gave."""

from __future__ import annotations

import logging
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import torch
from test_bad_inputs import _NoFaceWhereMarked
from test_pipeline import FACE_BOX, _clip, _speech

import facedit.liveportrait.crop as crop_module
from facedit.liveportrait import crop_faces, detect_face_track, extract_motion
from facedit.pipeline import (
    EditOptions,
    _windows_for,
    faceless_frames,
    infill_timeline,
    iter_edit,
    make_plan,
    render_frames,
    retime_track,
)
from facedit.resample import resample_frames
from facedit.video.window import WindowFrames
from facedit.video_io import VideoFrames, write_video


@pytest.fixture(scope="module")
def models():
    from pathlib import Path

    from facedit.models import load_models

    return load_models(Path(__file__).parent / "no-such-models-folder", allow_random=True, seed=0)


@pytest.fixture
def quick_decoder(models, monkeypatch):
    """The random LivePortrait's warp + decode (seconds a frame here) replaced by a cheap function of the same
    inputs: what these tests check is which frame gets which face, not the network (tests/test_pipeline.py)."""

    def warp_decode(feature, kp_source, kp_driving):
        base = torch.nn.functional.interpolate(feature.mean(2)[:, :3], size=(512, 512), mode="bilinear")
        return torch.sigmoid(base + (kp_driving - kp_source).sum((1, 2))[:, None, None, None])

    monkeypatch.setattr(models.liveportrait, "warp_decode", warp_decode)
    return models


def _stacked_window(frames, plan, window, models, speech, options):
    """The window as it was made before streaming: every frame stacked (source, then target), rendered whole."""
    times = plan.source_time[window.start : window.end]
    s0, s1 = int(np.floor(times.min())), int(np.ceil(times.max()))
    source = np.stack([np.asarray(frames[i], dtype=np.float32) for i in range(s0, s1 + 1)])
    track = detect_face_track(source, face_index=options.face_index, face_order=options.face_order,
                              box=options.face_box, smoothing=options.crop_smoothing)  # fmt: skip
    local = times - s0
    faceless = faceless_frames(track.detected, local)
    target = resample_frames(source, local, track.face_box, config=options.resample)
    target_track = retime_track(track, local)
    crops = crop_faces(target, target_track)
    motion = extract_motion(models.liveportrait, crops, chunk_size=options.extract_chunk)
    mask = plan.infill_mask[window.start : window.end]
    driving = motion.motion.numpy()
    if mask.any():
        driving = infill_timeline(models.facedit, driving, mask, plan.fps, speech, options)
    indices = np.flatnonzero(~faceless if options.rerender_all else mask & ~faceless)
    return render_frames(models.liveportrait, target, target_track, motion, driving, indices, crops=crops,
                         options=options)  # fmt: skip


def _stacked_edit(frames, plan, models, speech, options):
    out, cursor = [], 0
    for window in _windows_for(plan, plan.fps, options):
        out += [np.asarray(frames[int(plan.source_time[k])], np.float32) for k in range(cursor, window.start)]
        out += list(_stacked_window(frames, plan, window, models, speech, options))
        cursor = window.end
    out += [np.asarray(frames[int(plan.source_time[k])], np.float32) for k in range(cursor, plan.target_frames)]
    return np.stack(out)


class _Reader:
    """A lazy reader that records what it is asked for."""

    def __init__(self, frames):
        self.frames, self.reads = frames, []

    def __len__(self):
        return len(self.frames)

    def __getitem__(self, i):
        self.reads.append(int(i))
        return self.frames[i].copy()


class _MovingFace(_NoFaceWhereMarked):
    """A face that moves from frame to frame (by the value marked in pixel (0, 1)), so that a frame pasted
    through another frame's crop would show; none where pixel (0, 0) is black."""

    def __call__(self, image: np.ndarray):
        shift = float(image[0, 1, 0]) / 16
        return [replace(d, box=(d.box[0] + shift, d.box[1], d.box[2] + shift, d.box[3] - shift / 2))
                for d in super().__call__(image)]  # fmt: skip


@pytest.mark.parametrize("case", ["stretched", "faceless", "rerender_all", "squeezed", "face_box"])
def test_streamed_edit_gives_the_frames_of_the_stacked_window_bit_for_bit(quick_decoder, monkeypatch, caplog, case):
    models = quick_decoder
    fps, n = 25.0, 30
    frames = _clip(n)
    frames[:, 0, 1, 0] = np.arange(n) * 8 / 255
    span, edited_s = (0.6, 0.7, 0.3), 1.4  # stretched: fractional source times, resampled with flow
    if case == "squeezed":
        span, edited_s = (0.4, 0.8, 0.2), 1.0  # compressed: trajectory-aligned averages of several frames
    box = FACE_BOX if case == "face_box" else None
    options = EditOptions(steps=2, context_frames=2, motion_context_s=0.3, face_box=box, stitching=False,
                          rerender_all=case == "rerender_all", render_chunk=3)  # fmt: skip
    monkeypatch.setattr(crop_module, "default_detector", _MovingFace)
    if case == "faceless":
        frames[13:15, 0, 0] = 0.0
    plan = make_plan(fps=fps, source_frames=n, original_duration_s=n / fps, edited_duration_s=edited_s,
                     spans=[span], context_frames=2)  # fmt: skip
    speech = models.wavlm.encode(_speech(edited_s))
    reader = _Reader(frames)
    with caplog.at_level(logging.WARNING, logger="facedit"):
        streamed = np.stack(list(iter_edit(reader, plan, models, speech, options)))
    assert ("no face was detected for output frames" in caplog.text) == (case == "faceless")
    expected = _stacked_edit(frames, plan, models, speech, options)
    assert streamed.shape == expected.shape and streamed.dtype == np.float32
    for k in range(plan.target_frames):
        assert np.array_equal(streamed[k], expected[k]), k
    # every source frame the edit needs is read once, in order: windows included, however often they are gone over
    assert reader.reads == sorted(set(reader.reads))
    touched = plan.infill_mask | (plan.source_time != np.round(plan.source_time))
    nearest = frames[np.round(plan.source_time[touched]).astype(int)]
    assert touched.any() and not np.array_equal(streamed[touched], nearest)


def test_a_video_reader_edits_as_its_decoded_frames_do(quick_decoder, tmp_path):
    """VideoFrames spills uint8 frames: the output equals the edit of the same frames decoded into an array."""
    fps, n = 25.0, 30
    path = write_video(tmp_path / "clip.mp4", _clip(n), fps)
    decoded = np.stack([VideoFrames(path)[i] for i in range(n)])
    plan = make_plan(fps=fps, source_frames=n, original_duration_s=n / fps, edited_duration_s=1.4,
                     spans=[(0.5, 0.7, 0.4)], context_frames=1)  # fmt: skip
    speech = quick_decoder.wavlm.encode(_speech(1.4))
    options = EditOptions(steps=1, motion_context_s=0.2, face_box=FACE_BOX, stitching=False)
    from_file = np.stack(list(iter_edit(VideoFrames(path), plan, quick_decoder, speech, options)))
    from_array = np.stack(list(iter_edit(decoded, plan, quick_decoder, speech, options)))
    assert np.array_equal(from_file, from_array)


def test_window_frames_read_once_in_order_and_come_back_from_the_spill(tmp_path):
    frames = np.random.default_rng(0).random((12, 20, 24, 3), dtype=np.float32)
    reader = _Reader(frames)
    with WindowFrames(reader, 3, 9) as window:
        assert len(window) == 6
        assert np.array_equal(window[2], frames[5])  # reads 3, 4, 5
        assert np.array_equal(window[0], frames[3]) and np.array_equal(window[5], frames[8])
        assert np.array_equal(window[4], frames[7]) and window[1].dtype == np.float32
        with pytest.raises(IndexError, match="outside this window's 6 frames"):
            window[6]
    assert reader.reads == [3, 4, 5, 6, 7, 8]

    path = write_video(tmp_path / "c.mp4", (frames * 255).round() / 255, 25)
    video = VideoFrames(path)
    with WindowFrames(VideoFrames(path), 2, 12) as window:
        for k in (9, 0, 4, 9):  # the window's first read decodes forward; later ones come from the uint8 spill
            assert np.array_equal(window[k], video[2 + k]), k
    with WindowFrames(frames, 1, 4) as window:  # an array is indexed directly
        assert np.array_equal(window[2], frames[3])
    with pytest.raises(ValueError, match=r"clip: window \[10, 13\) is outside its 12 frames"):
        WindowFrames(frames, 10, 13, "clip")


def test_window_frames_refuse_frames_of_another_size():
    frames = [np.zeros((8, 8, 3), np.float32), np.zeros((8, 9, 3), np.float32)]
    with WindowFrames(frames, 0, 2, "clip.mp4") as window, pytest.raises(ValueError, match="clip.mp4: frame 1 is"):
        window[1]


def test_window_frames_say_which_folder_has_no_room(monkeypatch):
    import errno
    import io

    import facedit.video.window as window_module

    class Full(io.RawIOBase):
        def seek(self, offset, whence=0):
            return offset

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(window_module.tempfile, "TemporaryFile", lambda **kwargs: Full())
    reader = _Reader(np.zeros((3, 8, 8, 3), np.float32))
    with (
        WindowFrames(reader, 0, 3, "talk.mp4") as window,
        pytest.raises(OSError, match="talk.mp4: cannot keep frame 0") as err,
    ):
        window[0]
    assert "No space left" in str(err.value) and "TMPDIR" in str(err.value)


def _gop_clip(path, frames: np.ndarray, fps: Fraction, gop: int):
    """An x264 clip with a keyframe every ``gop`` frames, so that a smart render can copy most of it."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.height, s.width = frames.shape[1:3]
        s.pix_fmt, s.options = "yuv420p", {"preset": "ultrafast", "g": str(gop), "bf": "2"}
        for i, frame in enumerate((frames * 255).round().astype(np.uint8)):
            f = av.VideoFrame.from_ndarray(frame, format="rgb24")
            f.pts, f.time_base = i, 1 / fps
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return path


@pytest.mark.parametrize("rate", [Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30)])
def test_a_smart_render_makes_only_the_frames_of_the_gops_it_re_encodes(quick_decoder, tmp_path, rate):
    """edit_file's lazy EditedFrames: frames in copied GOPs are never asked of the source nor made; the file is
    the one every frame made in order gives, and its frames outside the re-encoded GOPs are the source's."""
    import av

    from facedit.pipeline import EditedFrames
    from facedit.video import write_edited_video

    fps, n = float(rate), 96
    src = _gop_clip(tmp_path / "src.mp4", _clip(n), rate, gop=12)
    plan = make_plan(fps=fps, source_frames=n, original_duration_s=n / fps, edited_duration_s=n / fps + 0.2,
                     spans=[(1.6, 1.8, 0.4)], context_frames=1)  # fmt: skip
    speech = quick_decoder.wavlm.encode(_speech(n / fps + 0.2))
    options = EditOptions(steps=1, motion_context_s=0.2, face_box=FACE_BOX, stitching=False)
    lazy_reader = _Reader(VideoFrames(src))
    lazy = EditedFrames(lazy_reader, plan, quick_decoder, speech, options)
    report = write_edited_video(tmp_path / "lazy.mp4", src, plan, lazy, audio=None, sample_rate=None)
    full_reader = _Reader(VideoFrames(src))
    whole = iter_edit(full_reader, plan, quick_decoder, speech, options)
    write_edited_video(tmp_path / "whole.mp4", src, plan, whole, audio=None, sample_rate=None)

    assert report.mode == "smart" and report.copied_gops >= 5, report
    assert full_reader.reads == list(range(n))
    needed = set()
    for s, e in report.reencoded_spans:
        needed |= {int(np.floor(t)) for t in plan.source_time[s:e]} | {int(np.ceil(t)) for t in plan.source_time[s:e]}
    window = _windows_for(plan, plan.fps, options)[0]
    times = plan.source_time[window.start : window.end]
    needed |= set(range(int(np.floor(times.min())), int(np.ceil(times.max())) + 1))
    assert set(lazy_reader.reads) <= needed and len(lazy_reader.reads) < n / 2, lazy_reader.reads

    def decoded(path):
        with av.open(str(path)) as c:
            return [f.to_ndarray() for f in c.decode(video=0)]

    lazy_frames, whole_frames = decoded(tmp_path / "lazy.mp4"), decoded(tmp_path / "whole.mp4")
    assert len(lazy_frames) == len(whole_frames) == plan.target_frames
    assert all(np.array_equal(a, b) for a, b in zip(lazy_frames, whole_frames, strict=True))
    source_frames = decoded(src)
    reencoded = np.zeros(plan.target_frames, dtype=bool)
    for s, e in report.reencoded_spans:
        reencoded[s:e] = True
    kept = np.flatnonzero(~reencoded)
    assert len(kept) == report.copied_frames > 0
    for k in kept:
        assert np.array_equal(lazy_frames[k], source_frames[int(plan.source_time[k])]), k

    again = EditedFrames(_Reader(VideoFrames(src)), plan, quick_decoder, speech, options)
    again[50]
    with pytest.raises(IndexError, match="made in increasing order; frame 10 was asked for after frame 50"):
        again[10]
    with pytest.raises(IndexError, match=f"outside the plan's {plan.target_frames} target frames"):
        again[plan.target_frames]

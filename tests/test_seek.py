"""Reading from a frame in the middle decodes from the keyframe before it, and gives the frames that decoding from
the first frame gives, bit for bit: B-frames, open GOPs, H.265, start offsets and edit lists, MP4 and MKV."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

import facedit.video_io as vio
from facedit.edits import plan_from_spans
from facedit.video import write_edited_video

W, H, N = 64, 48, 75


def _frame(i: int) -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    rgb = np.stack([128 + 90 * np.sin((x + 3 * i) / 7), 128 + 90 * np.cos((y - 2 * i) / 5), 0 * x + (7 * i) % 256], -1)
    return np.clip(rgb + np.random.default_rng(i).normal(0, 6, rgb.shape), 0, 255).astype(np.uint8)


def _source(path, codec="libx264", options=None, first_pts=0):
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.options = {"preset": "ultrafast", **(options or {})}
        for i in range(N):
            f = av.VideoFrame.from_ndarray(_frame(i), format="rgb24")
            f.pts, f.time_base = first_pts + i, Fraction(1, 25)
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return str(path)


SOURCES = {
    "h264 B-frames, GOP 12": ("libx264", {"g": "12", "bf": "3", "preset": "medium"}, 0, ".mp4"),
    "h264 open GOP": ("libx264", {"g": "10", "bf": "2", "x264-params": "open-gop=1:keyint-min=10"}, 0, ".mp4"),
    "h264 starting at 1.2 s": ("libx264", {"g": "9", "bf": "2"}, 30, ".mp4"),
    "h264 edit list (first frames hidden)": ("libx264", {"g": "11", "bf": "2"}, -3, ".mp4"),
    "h264 in mkv": ("libx264", {"g": "8", "bf": "2"}, 4, ".mkv"),
    "h265 open GOP (CRA)": ("libx265", {"g": "12", "x265-params": "log-level=error:bframes=3"}, 0, ".mp4"),
}


@pytest.fixture(params=list(SOURCES))
def source(request, tmp_path):
    codec, options, first_pts, ext = SOURCES[request.param]
    return _source(tmp_path / f"src{ext}", codec, options, first_pts)


def _spy(monkeypatch) -> list[bool]:
    """Whether each read decoded from a keyframe after the first."""
    found: list[bool] = []
    real = vio._from_keyframe

    def spy(*args):
        result = real(*args)
        found.append(result is not None)
        return result

    monkeypatch.setattr(vio, "_from_keyframe", spy)
    return found


def test_reading_from_the_middle_gives_the_frames_of_a_decode_from_the_start(source, monkeypatch):
    whole = list(vio.iter_frames(source, dtype="uint8"))
    assert len(whole) == vio.probe_video(source).frame_count
    seeked = _spy(monkeypatch)
    for start in (1, 9, 10, 11, 12, 13, 24, 37, 50, len(whole) - 2):
        got = list(vio.iter_frames(source, start, start + 4, dtype="uint8"))
        assert len(got) == min(4, len(whole) - start)
        for k, frame in enumerate(got):
            np.testing.assert_array_equal(frame, whole[start + k], err_msg=f"frame {start + k} read from {start}")
    assert sum(seeked) >= 5  # most starts lie past the first keyframe's GOP


def test_a_reader_that_jumps_or_steps_back_seeks_and_stays_exact(source, monkeypatch):
    whole = list(vio.iter_frames(source, dtype="uint8"))
    monkeypatch.setattr(vio, "SEEK_AHEAD", 5)
    seeked = _spy(monkeypatch)
    frames = vio.VideoFrames(source)
    for index in (40, 41, 60, 3, 70, 30):
        np.testing.assert_array_equal(frames.uint8(index), whole[index], err_msg=f"frame {index}")
    assert sum(seeked) >= 3


def test_a_seek_that_misses_the_frame_decodes_from_the_start(tmp_path, monkeypatch):
    path = _source(tmp_path / "src.mp4", options={"g": "12", "bf": "2"})
    whole = list(vio.iter_frames(path, dtype="uint8"))
    _, _, points = vio._scan(path, None)
    wrong = vio._SeekPoints(points.pts, np.stack([points.keys[:, 0], points.keys[:, 1] + 10**6], 1))  # seeks too far
    monkeypatch.setattr(vio, "_scan", lambda p, fps: (*vio._scan_cached(p, 0, 0, fps)[:2], wrong))
    seeked = _spy(monkeypatch)
    np.testing.assert_array_equal(next(vio.iter_frames(path, 40, dtype="uint8")), whole[40])
    assert seeked == [False]


def test_smart_render_of_a_late_edit_copies_and_matches(tmp_path):
    """The re-encoded GOPs' source frames come from a reader that seeks; unchanged frames stay the source's."""
    path = _source(tmp_path / "src.mp4", options={"g": "12", "bf": "2"})
    whole = list(vio.iter_frames(path, dtype="uint8"))
    plan = plan_from_spans([(2.2, 2.4, 0.2)], original_duration_s=N / 25, edited_duration_s=N / 25, fps=25,
                           source_frames=N)  # fmt: skip
    frames = vio.VideoFrames(path)
    out = tmp_path / "out.mp4"
    report = write_edited_video(out, path, plan, frames)
    assert report.mode == "smart" and report.copied_gops >= 4
    got = list(vio.iter_frames(out, dtype="uint8"))
    reencoded = np.zeros(N, bool)
    for a, b in report.reencoded_spans:
        reencoded[a:b] = True
    assert reencoded[40:].any() and not reencoded[:36].any()
    for k in np.flatnonzero(~plan.infill_mask):
        if reencoded[k]:  # the source frame's own samples through the encoder (a wrong frame is ~20 dB off)
            error = np.mean((got[k].astype(float) - whole[k]) ** 2)
            assert 10 * np.log10(255**2 / max(error, 1e-9)) > 40, k
        else:
            np.testing.assert_array_equal(got[k], whole[k], err_msg=f"copied frame {k}")

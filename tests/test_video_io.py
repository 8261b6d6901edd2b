from fractions import Fraction

import av
import numpy as np
import pytest

from facedit.video_io import fps_to_fraction, iter_frames, probe_video, read_audio, read_video, write_video


def _frames(t: int, h: int = 48, w: int = 64) -> np.ndarray:
    """Smooth gradients that move a little every frame: easy to encode, distinct per frame."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty((t, h, w, 3), np.float32)
    for i in range(t):
        out[i, ..., 0] = 0.5 + 0.4 * np.sin((x + 2 * i) / 9.0)
        out[i, ..., 1] = 0.5 + 0.4 * np.cos((y - i) / 7.0)
        out[i, ..., 2] = 0.2 + 0.6 * i / max(t - 1, 1)
    return out


@pytest.mark.parametrize(
    "fps, expected",
    [
        (25, Fraction(25)),
        (30.0, Fraction(30)),
        (29.97, Fraction(30000, 1001)),
        (23.976, Fraction(24000, 1001)),
        (59.94, Fraction(60000, 1001)),
        (12.5, Fraction(25, 2)),
        ("30000/1001", Fraction(30000, 1001)),
        (Fraction(30000, 1001), Fraction(30000, 1001)),
    ],
)
def test_fps_to_fraction(fps, expected):
    assert fps_to_fraction(fps) == expected


@pytest.mark.parametrize("bad", [0, -25, float("nan"), "fast", None])
def test_fps_to_fraction_rejects(bad):
    with pytest.raises(ValueError, match="fps"):
        fps_to_fraction(bad)


@pytest.mark.parametrize(
    "fps, sample_rate, channels",
    [(Fraction(30000, 1001), 16000, 1), (25, 44100, 2), (30, 48000, 1)],
)
def test_round_trip_frames_fps_audio(tmp_path, fps, sample_rate, channels):
    t = 14
    frames = _frames(t)
    n = int(round(t / fps_to_fraction(fps) * sample_rate)) + 37  # not a multiple of the AAC frame size
    ts = np.arange(n) / sample_rate
    audio = np.stack([0.3 * np.sin(2 * np.pi * (220 + 110 * c) * ts) for c in range(channels)]).astype(np.float32)
    path = write_video(tmp_path / "rt.mp4", frames, fps, audio=audio, sample_rate=sample_rate, crf=12)

    info = probe_video(path)
    assert info.fps == fps_to_fraction(fps)
    assert isinstance(info.fps, Fraction)
    assert info.frame_count == t
    assert (info.width, info.height) == (64, 48)
    assert info.sample_rate == sample_rate and info.audio_channels == channels

    data = read_video(path)
    assert data.frames.shape == frames.shape and data.frames.dtype == np.float32
    assert data.fps == fps_to_fraction(fps)
    assert np.abs(data.frames - frames).mean() < 0.01
    assert data.sample_rate == sample_rate
    assert data.audio.shape == (channels, n)
    # AAC is lossy, but a sine read back in place (not shifted) matches closely after the first block.
    err = np.abs(data.audio[:, 2048:-2048] - audio[:, 2048:-2048]).mean()
    assert err < 0.02, err


def test_audio_and_video_stay_in_sync(tmp_path):
    fps, sr, t = Fraction(30000, 1001), 16000, 40
    frames = np.zeros((t, 32, 32, 3), np.float32)
    audio = np.zeros((1, int(t / fps * sr)), np.float32)
    for k in (7, 29):  # a white frame and a click at the same instant
        frames[k] = 1.0
        s = int(round(k / fps * sr))
        audio[0, s : s + 80] = 0.8
    path = write_video(tmp_path / "sync.mp4", frames, fps, audio=audio, sample_rate=sr)
    data = read_video(path)
    bright = [i for i in range(t) if data.frames[i].mean() > 0.5]
    assert bright == [7, 29]
    env = np.abs(data.audio[0])
    for k in (7, 29):
        expected = k / fps * sr
        window = env[int(expected) - 800 : int(expected) + 800]
        onset = int(expected) - 800 + int(np.argmax(window > 0.3))
        assert abs(onset - expected) < 0.005 * sr, (k, onset, expected)  # within 5 ms


def test_iter_frames_range_and_uint8(tmp_path):
    frames = (_frames(10) * 255).round().astype(np.uint8)
    path = write_video(tmp_path / "u8.mp4", frames, 25, crf=0, pix_fmt="yuv444p")
    part = list(iter_frames(path, 3, 6, dtype="uint8"))
    assert len(part) == 3 and part[0].dtype == np.uint8
    full = read_video(path, with_audio=False)
    assert full.audio is None and full.sample_rate is None
    np.testing.assert_array_equal(np.stack(part).astype(np.float32) / 255.0, full.frames[3:6])
    ranged = read_video(path, start_frame=8)
    assert ranged.frames.shape[0] == 2
    assert read_audio(path) is None


def test_write_accepts_generator_and_torch(tmp_path):
    torch = pytest.importorskip("torch")
    frames = _frames(6)
    # Lossless, so the decoded frames depend only on the input (threaded x264 need not repeat its lossy choices).
    path = write_video(tmp_path / "gen.mp4", (f for f in frames), 24, crf=0, pix_fmt="yuv444p")
    assert probe_video(path).frame_count == 6
    path2 = write_video(tmp_path / "torch.mp4", torch.from_numpy(frames), 24, crf=0, pix_fmt="yuv444p")
    np.testing.assert_allclose(read_video(path2).frames, read_video(path).frames, atol=1e-6)


def test_progress_called_per_frame(tmp_path):
    seen = []
    write_video(tmp_path / "p.mp4", _frames(5), 25, progress=seen.append)
    assert seen == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"frames": np.zeros((3, 31, 32, 3), np.float32), "pix_fmt": "yuv420p"}, "even width and height"),
        ({"pix_fmt": "rgb48le"}, "cannot write"),
        ({"frames": np.full((3, 32, 32, 3), 1.2, np.float32)}, r"0\.\.1"),
        ({"frames": np.zeros((3, 32, 32), np.float32)}, r"\[T, H, W, 3\]"),
        ({"frames": np.zeros((0, 32, 32, 3), np.float32)}, "at least one frame"),
        ({"audio": np.zeros((1, 100), np.float32)}, "sample_rate"),
        ({"audio": np.zeros((9, 100), np.float32), "sample_rate": 16000}, r"1\.\.8 channels"),
        ({"audio": np.full((1, 100), np.nan, np.float32), "sample_rate": 16000}, "NaN"),
        ({"crf": 80}, "crf"),
        ({"preset": "quick"}, "preset"),
    ],
)
def test_write_rejects_bad_input(tmp_path, kwargs, match):
    args = {"frames": np.zeros((3, 32, 32, 3), np.float32), "fps": 25}
    args.update(kwargs)
    out = tmp_path / "bad.mp4"
    with pytest.raises(ValueError, match=match):
        write_video(out, **args)
    assert list(tmp_path.iterdir()) == []


def test_write_rejects_frame_size_change_midway(tmp_path):
    frames = [np.zeros((32, 32, 3), np.float32), np.zeros((32, 34, 3), np.float32)]
    with pytest.raises(ValueError, match=r"frames\[1\]: size"):
        write_video(tmp_path / "x.mp4", frames, 25)
    assert list(tmp_path.iterdir()) == []


def test_read_missing_and_garbage(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        read_video(tmp_path / "nope.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(ValueError, match="junk.mp4"):
        probe_video(junk)


def _stream(path):
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0].codec_context
        a = c.streams.audio[0].codec_context if c.streams.audio else None
        return (v.pix_fmt, v.width, v.height), (a.name, a.sample_rate, a.channels) if a is not None else None


@pytest.mark.parametrize(
    "size, pix_fmt, expected",
    [((17, 9), None, "yuv444p"), ((64, 48), None, "yuv420p"), ((64, 48), "yuv444p", "yuv444p"),
     ((18, 10), "yuv422p", "yuv422p")],
)  # fmt: skip
def test_write_odd_sizes_and_444(tmp_path, size, pix_fmt, expected):
    w, h = size
    frames = _frames(6, h, w)
    path = write_video(tmp_path / "odd.mp4", frames, 25, crf=0, pix_fmt=pix_fmt)
    assert _stream(path)[0] == (expected, w, h)
    back = read_video(path).frames
    assert back.shape == frames.shape
    tol = 0.004 if expected == "yuv444p" else 0.02  # 4:4:4 at crf 0 is lossless up to the RGB <-> YUV rounding
    assert np.abs(back - frames).mean() < tol


@pytest.mark.parametrize(
    "ext, channels, codec, rate", [(".mp4", 1, "aac", 16000), (".mkv", 2, "pcm_s16le", 17000),
                                   (".mov", 6, "pcm_s16le", 17000), (".mp4", 6, "aac", 16000)]
)  # fmt: skip
def test_write_any_sample_rate_and_channel_count(tmp_path, ext, channels, codec, rate):
    n = 17000
    ts = np.arange(n) / 17000
    audio = np.stack([0.3 * np.sin(2 * np.pi * (200 + 50 * c) * ts) for c in range(channels)]).astype(np.float32)
    path = write_video(tmp_path / f"a{ext}", _frames(25), 25, audio=audio, sample_rate=17000)
    assert _stream(path)[1] == (codec, rate, channels)
    back, back_rate = read_audio(path)
    assert back_rate == rate and back.shape[0] == channels
    assert abs(back.shape[1] / rate - 1.0) < 0.01
    if codec.startswith("pcm"):  # kept at its own rate: the samples themselves, to 16 bits
        np.testing.assert_allclose(back, audio, atol=1.0 / 32767)


def test_write_failure_keeps_previous_file(tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous result")

    def frames():
        yield from _frames(4)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_video(out, frames(), 25)
    assert out.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
    write_video(out, _frames(4), 25)
    assert probe_video(out).frame_count == 4


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_write_interrupted_by_signal_leaves_no_partial_file(tmp_path, sig):
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous result")
    script = textwrap.dedent(f"""
        import sys, time
        import numpy as np
        sys.path.insert(0, {root!r})
        from facedit.video_io import write_video
        def frames():
            for i in range(10):
                if i == 3:
                    print("writing", flush=True)
                    time.sleep(60)
                yield np.zeros((16, 16, 3), np.uint8)
        write_video({str(out)!r}, frames(), 25)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    assert any(p.name.endswith(".partial.mp4") for p in tmp_path.iterdir())
    proc.send_signal(getattr(signal, sig))
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert out.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_write_refuses_out_that_is_an_input(tmp_path):
    from facedit.video_io import VideoFrames

    src = write_video(tmp_path / "a.mp4", _frames(4), 25)
    before = open(src, "rb").read()
    with pytest.raises(ValueError, match="is the input file"):
        write_video(tmp_path / "." / "a.mp4", VideoFrames(src), 25)
    with pytest.raises(ValueError, match="is the input file"):
        write_video(src, _frames(4), 25, inputs=[src])
    assert open(src, "rb").read() == before


# ------------------------------------------------------------------------------------------ variable frame rate


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_variable_frame_rate_is_read_by_its_timestamps(tmp_path, ext, caplog):
    from _vfr_helpers import TIMES, marker, shown_at, write_vfr

    path = write_vfr(tmp_path / f"vfr{ext}")
    with caplog.at_level("WARNING", logger="facedit.video"):
        info = probe_video(path)
    assert info.variable_frame_rate and info.retimed
    # the rate it mostly runs at (50 fps), so no stored frame is lost; the slow part repeats each frame 4 times
    assert info.fps == 50 and info.frame_count == 150 and info.stored_frames == len(TIMES)
    assert "variable frame rate" in caplog.text and str(path) in caplog.text
    assert "50 fps" in info.note and "75 repeated and 0 dropped" in info.note

    data = read_video(path)
    assert data.fps == 50 and len(data.frames) == 150
    shown = [marker(f) for f in data.frames]
    assert shown == [shown_at(k / 50) for k in range(150)]
    # an edit at 2.0 s lands at 2.0 s: frame 100 shows what was on screen then (read one by one, it showed 1.5 s)
    assert shown[100] == shown_at(2.0) == 62
    assert [marker(f) for f in iter_frames(path, 98, 103)] == shown[98:103]


def test_variable_frame_rate_at_a_requested_rate_and_by_random_access(tmp_path):
    from _vfr_helpers import marker, shown_at, write_vfr

    from facedit.video_io import VideoFrames

    path = write_vfr(tmp_path / "vfr.mkv")
    info = probe_video(path, fps=25)
    assert info.fps == 25 and info.frame_count == 75 and info.retimed
    assert "25 repeated and 25 dropped" in info.note
    frames = VideoFrames(path, fps=25)
    assert len(frames) == 75
    for k in (60, 3, 51, 74):  # a step back reopens the file
        assert marker(frames[k]) == shown_at(k / 25), k
    assert read_video(path, 50, 51, fps="25").frames.shape[0] == 1
    with pytest.raises(ValueError, match="fps"):
        probe_video(path, fps=0)


@pytest.mark.parametrize("fps, ext", [(Fraction(30000, 1001), ".mkv"), (25, ".mp4"), (Fraction(24000, 1001), ".mov")])
def test_constant_rate_files_are_read_frame_by_frame(tmp_path, fps, ext):
    frames = _frames(12)
    path = write_video(tmp_path / f"cfr{ext}", frames, fps)  # mkv keeps milliseconds: 33, 34, 33 ... apart
    info = probe_video(path)
    assert not info.variable_frame_rate and not info.retimed and info.note == ""
    assert info.fps == fps_to_fraction(fps) and info.frame_count == info.stored_frames == 12
    back = np.stack(list(iter_frames(path)))
    assert back.shape == frames.shape and np.abs(back - frames).mean() < 0.01


def test_a_dropped_frame_is_filled_by_repeating_the_one_before(tmp_path):
    from _vfr_helpers import marker, write_vfr

    times = [Fraction(i, 25) for i in range(30) if i != 12]  # frame 12 was never stored
    path = write_vfr(tmp_path / "gap.mp4", times)
    info = probe_video(path)
    assert info.retimed and info.fps == 25 and info.frame_count == 30 and info.stored_frames == 29
    assert "1 repeated and 0 dropped" in info.note
    shown = [marker(f) for f in iter_frames(path, dtype="uint8")]
    assert shown == list(range(12)) + [11] + list(range(12, 29))


def test_evenly_spaced_frames_are_read_at_their_own_rate_not_the_declared_one(tmp_path):
    from _vfr_helpers import marker, write_vfr

    path = write_vfr(tmp_path / "c25.mkv", [Fraction(i, 25) for i in range(20)])  # the stream says 50 fps
    info = probe_video(path)
    assert info.fps == 25 and info.frame_count == 20 and not info.retimed and not info.variable_frame_rate
    assert [marker(f) for f in iter_frames(path, dtype="uint8")] == list(range(20))


def test_video_frames_convert_only_the_frames_asked_for(tmp_path, monkeypatch):
    """A frame stepped over is decoded but not converted to RGB (a smart render skips most of a long clip); a
    frame asked for later from the cache is converted then, and every frame equals iter_frames' own."""
    import facedit.video_io as video_io
    from facedit.video_io import VideoFrames

    path = write_video(tmp_path / "clip.mp4", _frames(40), 25)
    expected = np.stack(list(iter_frames(path, dtype="uint8")))
    converted = []
    convert = video_io._frame_to_rgb
    monkeypatch.setattr(video_io, "_frame_to_rgb", lambda frame, flags: converted.append(1) or convert(frame, flags))
    frames = VideoFrames(path, cache_frames=8)
    assert np.array_equal(frames.uint8(30), expected[30]) and len(converted) == 1
    assert np.array_equal(frames.uint8(25), expected[25]) and len(converted) == 2  # from the cache, no reopening
    assert frames.uint8(25) is frames.uint8(25) and len(converted) == 2
    assert np.array_equal(frames[5], expected[5] / np.float32(255)) and len(converted) == 3  # a step back reopens


def _clip_with_audio(path, codec: str, seconds: float, audio_delay_s: float = 0.0, video_start: int = 0):
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 32, 32, "yuv420p"
        v.options = {"preset": "ultrafast"}
        a = c.add_stream(codec, rate=16000)
        a.layout = "mono"
        for i in range(int(seconds * 25)):
            f = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 5 * i % 256, np.uint8), format="rgb24")
            f.pts, f.time_base = video_start + i, Fraction(1, 25)
            c.mux(v.encode(f))
        c.mux(v.encode(None))
        wave = (0.2 * np.sin(np.arange(int(seconds * 16000) - 77) / 9.0)).astype(np.float32)[None]
        delay = int(audio_delay_s * 16000)
        for p in range(0, wave.shape[1], 1024):
            fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[:, p : p + 1024]), format="fltp", layout="mono")
            fr.sample_rate, fr.pts, fr.time_base = 16000, delay + p, Fraction(1, 16000)
            c.mux(a.encode(fr))
        c.mux(a.encode(None))
    return path


@pytest.mark.parametrize(
    "ext, codec, delay, video_start, decodes",
    [
        (".mp4", "aac", 0.0, 0, False),
        (".mp4", "aac", 0.3, 0, False),  # the audio starts after the video: read_audio pads it
        (".mp4", "aac", 0.0, 5, False),  # the video starts later: read_audio cuts the audio before it
        (".mkv", "aac", 0.0, 0, False),
        (".mov", "pcm_s16le", 0.0, 0, True),  # no packet durations to trust: decoded
    ],
)
def test_audio_seconds_is_read_audios_length_from_packets(
    tmp_path, monkeypatch, ext, codec, delay, video_start, decodes
):
    import facedit.video_io as vio

    path = _clip_with_audio(tmp_path / f"clip{ext}", codec, 2.0, delay, video_start)
    wave, rate = vio.read_audio(path)
    calls = []
    monkeypatch.setattr(vio, "read_audio", lambda p: calls.append(p) or (wave, rate))
    assert vio.audio_seconds(path) == wave.shape[-1] / rate
    assert bool(calls) == decodes


def test_audio_seconds_decodes_when_the_durations_promise_more_than_the_packets_hold(tmp_path, monkeypatch):
    import facedit.video_io as vio

    path = _clip_with_audio(tmp_path / "clip.mp4", "aac", 1.0)
    real_open = vio._open

    class Stretched:  # every packet claims twice its samples
        def __init__(self, container):
            self.container = container
            self.streams = container.streams

        def demux(self, stream):
            for packet in self.container.demux(stream):
                if packet.duration:
                    packet.duration = 2 * packet.duration
                yield packet

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.container.close()

    monkeypatch.setattr(vio, "_open", lambda p: Stretched(real_open(p)))
    calls = []
    monkeypatch.setattr(vio, "read_audio", lambda p: calls.append(p) or (np.zeros((1, 16000), np.float32), 16000))
    assert vio.audio_seconds(path) == 1.0 and calls

from fractions import Fraction

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
    path = write_video(tmp_path / "gen.mp4", (f for f in frames), 24)
    assert probe_video(path).frame_count == 6
    path2 = write_video(tmp_path / "torch.mp4", torch.from_numpy(frames), 24)
    np.testing.assert_allclose(read_video(path2).frames, read_video(path).frames, atol=1e-6)


def test_progress_called_per_frame(tmp_path):
    seen = []
    write_video(tmp_path / "p.mp4", _frames(5), 25, progress=seen.append)
    assert seen == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"frames": np.zeros((3, 31, 32, 3), np.float32)}, "even width and height"),
        ({"frames": np.full((3, 32, 32, 3), 1.2, np.float32)}, r"0\.\.1"),
        ({"frames": np.zeros((3, 32, 32), np.float32)}, r"\[T, H, W, 3\]"),
        ({"frames": np.zeros((0, 32, 32, 3), np.float32)}, "at least one frame"),
        ({"audio": np.zeros((1, 100), np.float32)}, "sample_rate: required"),
        ({"audio": np.zeros((1, 100), np.float32), "sample_rate": 16001}, "AAC supports"),
        ({"audio": np.zeros((3, 100), np.float32), "sample_rate": 16000}, r"C = 1 or 2"),
        ({"crf": 80}, "crf"),
    ],
)
def test_write_rejects_bad_input(tmp_path, kwargs, match):
    args = {"frames": np.zeros((3, 32, 32, 3), np.float32), "fps": 25}
    args.update(kwargs)
    out = tmp_path / "bad.mp4"
    with pytest.raises(ValueError, match=match):
        write_video(out, **args)
    assert not out.exists()


def test_write_rejects_frame_size_change_midway(tmp_path):
    frames = [np.zeros((32, 32, 3), np.float32), np.zeros((32, 34, 3), np.float32)]
    with pytest.raises(ValueError, match=r"frames\[1\]: size"):
        write_video(tmp_path / "x.mp4", frames, 25)
    assert not (tmp_path / "x.mp4").exists()


def test_read_missing_and_garbage(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        read_video(tmp_path / "nope.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(ValueError, match="junk.mp4"):
        probe_video(junk)

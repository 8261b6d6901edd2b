"""Smart render audio: the source's AAC packets are copied where the edited speech is the source's decoded track,
and only the packets between are encoded."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import soundfile as sf

from facedit.audio import load_audio_file
from facedit.edits import plan_from_spans
from facedit.video import write_edited_video
from facedit.video_io import probe_video, read_audio

RATE, FPS, N = 16000, 25, 1024
W, H = 32, 32


def _speech(t: np.ndarray, pitch: float) -> np.ndarray:
    return (0.2 * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) * np.sin(2 * np.pi * pitch * t)).astype(np.float32)


def _source(path, seconds=3.0, rate=RATE):
    """A small x264 clip (GOP 12, B-frames) with a speech-like AAC track; returns (path, the wave encoded)."""
    frames = int(seconds * FPS)
    wave = _speech(np.arange(int(seconds * rate)) / rate, 180.0)[None]
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        v.options = {"preset": "ultrafast", "g": "12", "bf": "2"}
        a = c.add_stream("aac", rate=rate)
        a.layout = "mono"
        for i in range(frames):
            rgb = np.full((H, W, 3), (3 * i) % 256, np.uint8)
            c.mux(v.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        c.mux(v.encode(None))
        for p in range(0, wave.shape[1], N):
            fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[:, p : p + N]), format="fltp", layout="mono")
            fr.sample_rate, fr.pts, fr.time_base = rate, p, Fraction(1, rate)
            c.mux(a.encode(fr))
        c.mux(a.encode(None))
    return path, wave


def _through_wav(tmp_path, wave, rate=RATE):
    """The speech as an edit hands it over: a 16-bit wav, read back."""
    sf.write(str(tmp_path / "speech.wav"), wave.T, rate, subtype="PCM_16")
    audio = load_audio_file(tmp_path / "speech.wav")
    return audio["waveform"][0].numpy()


def _audio_packets(path) -> dict[int, bytes]:
    with av.open(str(path)) as c:
        return {int(p.pts): bytes(p) for p in c.demux(c.streams.audio[0]) if p.size}


def _write(tmp_path, src, spans, wave, rate=RATE, name="out.mp4"):
    info = probe_video(src)
    edited_s = wave.shape[1] / rate
    plan = plan_from_spans(spans, original_duration_s=info.duration_s, edited_duration_s=edited_s, fps=FPS,
                           source_frames=info.frame_count)  # fmt: skip
    frames = np.zeros((plan.target_frames, H, W, 3), np.uint8)
    out = tmp_path / name
    return out, write_edited_video(out, src, plan, frames, audio=wave, sample_rate=rate)


def _snr(reference: np.ndarray, test: np.ndarray) -> float:
    return float(10 * np.log10((reference**2).mean() / ((reference - test) ** 2).mean()))


def test_audio_outside_the_edit_is_the_sources_packets(tmp_path):
    src, _ = _source(tmp_path / "src.mp4")
    decoded, _ = read_audio(src)
    a, b = int(1.0 * RATE), int(1.6 * RATE)
    edited = decoded.copy()
    edited[:, a:b] = _speech(np.arange(b - a) / RATE, 300.0)
    edited = _through_wav(tmp_path, edited)
    out, report = _write(tmp_path, src, [(1.0, 1.6, 0.6)], edited)

    source, written = _audio_packets(src), _audio_packets(out)
    far = [t for t in written if (t + 2 * N <= a - N or t - N >= b + N) and t + N <= edited.shape[1]]
    assert far and all(written[t] == source[t] for t in far)
    assert report.audio_packets == len(written)
    assert report.copied_audio_packets >= len(far) and report.copied_audio_packets < len(written)
    assert "copied from the source" in report.summary()
    assert any(written[t] != source.get(t) for t in written if a <= t < b)  # the new words were encoded

    got, rate = read_audio(out)
    assert rate == RATE and got.shape == edited.shape
    keep = np.ones(edited.shape[1], bool)
    keep[max(0, a - 3 * N) : b + 3 * N] = False
    keep[-2 * N :] = False  # the last partial packet is encoded anew
    np.testing.assert_array_equal(got[:, keep], decoded[:, keep])  # the source's own decoded samples
    assert _snr(edited[:, a:b], got[:, a:b]) > 20
    joins = slice(a - 3 * N, b + 3 * N)
    assert np.abs(got[:, joins] - edited[:, joins]).max() < 0.05


@pytest.mark.parametrize("change", ["the pre-encode wave", "louder", "another rate"])
def test_audio_is_encoded_where_the_speech_is_not_the_sources(tmp_path, change):
    src, wave = _source(tmp_path / "src.mp4")
    decoded, _ = read_audio(src)
    rate = RATE
    if change == "the pre-encode wave":  # as close as coding noise, but not the track's sound
        edited = np.ascontiguousarray(wave[:, : decoded.shape[1]])
    elif change == "louder":
        edited = decoded * np.float32(1.05)
    else:
        rate = 24000
        edited = np.ascontiguousarray(np.repeat(decoded, 3, axis=1)[:, ::2])
    out, report = _write(tmp_path, src, [(1.0, 1.6, 0.6)], edited, rate=rate)
    assert report.copied_audio_packets == 0
    assert "copied from the source" not in report.summary()
    got, got_rate = read_audio(out)
    assert got_rate == rate and got.shape == edited.shape
    assert _snr(edited, got) > 20


@pytest.mark.parametrize("frames, copies_tail", [(8, True), (1, False)])
def test_after_a_longer_edit_the_tail_is_copied_when_it_moved_by_whole_packets(tmp_path, frames, copies_tail):
    """An insertion of 8 frames moves the rest by 5120 samples (5 packets): copied at that offset; 1 frame (640
    samples) would put the packets between two others, so the tail is encoded."""
    src, _ = _source(tmp_path / "src.mp4")
    decoded, _ = read_audio(src)
    a, b = int(1.0 * RATE), int(1.2 * RATE)
    longer = (b - a) + frames * RATE // FPS
    new = _speech(np.arange(longer) / RATE, 300.0)[None]
    edited = _through_wav(tmp_path, np.concatenate([decoded[:, :a], new, decoded[:, b:]], axis=1))
    out, report = _write(tmp_path, src, [(1.0, 1.2, longer / RATE)], edited)
    shift = longer - (b - a)
    source, written = _audio_packets(src), _audio_packets(out)
    head = [t for t in written if 0 <= t and t + 2 * N <= a - N]
    tail = [t for t in written if t - N >= a + longer + N and t + N <= edited.shape[1]]
    assert head and tail
    assert all(written[t] == source[t] for t in head)
    assert all(written[t] == source.get(t - shift) for t in tail) == copies_tail
    assert report.copied_audio_packets >= len(head) + (len(tail) if copies_tail else 0)
    got, _ = read_audio(out)
    assert got.shape == edited.shape
    assert _snr(edited, got) > 20


def test_a_failed_audio_copy_keeps_the_previous_output(tmp_path, monkeypatch):
    import facedit.video.render as render

    src, _ = _source(tmp_path / "src.mp4")
    decoded, _ = read_audio(src)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous")

    def broken(*args, **kwargs):
        raise OSError(5, "the source went away")

    monkeypatch.setattr(render, "joined_audio_packets", broken)
    with pytest.raises(OSError, match="went away"):
        _write(tmp_path, src, [(1.0, 1.6, 0.6)], decoded)
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "src.mp4"]


def test_a_stopped_audio_copy_returns_nothing(tmp_path):
    import threading

    from facedit.video.audio_copy import joined_audio_packets, source_audio

    src, wave = _source(tmp_path / "src.mp4")
    with av.open(str(src)) as container:
        found, why = source_audio(container, str(src), ".mp4", RATE, "mono")
    assert found is not None, why
    packets, copied = joined_audio_packets(found, np.ascontiguousarray(wave[:, :-100]))
    assert len(packets) > 40 and copied == 0  # the pre-encode wave is not the track's sound: all encoded
    stop = threading.Event()
    stop.set()
    assert joined_audio_packets(found, np.ascontiguousarray(wave[:, :-100]), stop=stop) == ([], 0)

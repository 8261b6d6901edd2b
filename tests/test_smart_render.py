"""Smart render: copied GOPs are the source's packets, re-encoded GOPs are close to the rendered frames."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from fractions import Fraction

import av
import numpy as np
import pytest

from facedit.edits import plan_from_spans
from facedit.video import OutputFormat, write_edited_video
from facedit.video.nal import nal_units, parameter_sets
from facedit.video_io import iter_frames, probe_video, read_audio

W, H = 64, 48
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pattern(i: int, w: int = W, h: int = H) -> np.ndarray:
    """Smooth moving gradients: distinct per frame, cheap to encode, no hard chroma edges."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 0.5 + 0.4 * np.sin((x + 2 * i) / 16.0)
    g = 0.5 + 0.4 * np.cos((y - i) / 14.0)
    b = 0.2 + 0.6 * ((i % 50) / 50.0) + 0 * x
    return np.rint(np.stack([r, g, b], -1) * 255).astype(np.uint8)


def _textured(i: int, w: int = W, h: int = H) -> np.ndarray:
    """Moving random texture with fresh grain every frame (fine chroma detail, expensive to encode)."""
    field = np.random.default_rng(7).integers(0, 256, (h + 64, w + 64, 3)).astype(np.float32)
    grain = np.random.default_rng(100 + i).normal(0, 12, (h, w, 3))
    base = field[i % 64 : i % 64 + h, (2 * i) % 64 : (2 * i) % 64 + w]
    return np.clip(0.6 * base + 0.4 * _pattern(i, w, h) + grain, 0, 255).astype(np.uint8)


def _make_source(path, codec="libx264", n=60, fps=Fraction(25), options=None, audio_s=None, rate=16000,
                 texture=False, first_pts=0, colour=None, pix_fmt="yuv420p"):  # fmt: skip
    """``first_pts`` < 0: the first frames have negative times, which MP4 hides with an edit list.
    ``colour``: (matrix, primaries, transfer, range) tags, e.g. (6, 6, 6, 2) for BT.601 full range."""
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = W, H, pix_fmt
        s.options = {"preset": "ultrafast", **(options or {})}
        if codec == "libx265":
            s.options = {**s.options, "x265-params": "log-level=error:" + s.options.pop("x265-params", "")}
        convert = {}
        if colour is not None:
            cc = s.codec_context
            cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range = colour
            convert = {"dst_colorspace": {6: 5}.get(colour[0], colour[0]), "dst_color_range": colour[3]}
        a = None
        if audio_s is not None:
            a = c.add_stream("aac", rate=rate)
            a.layout = "mono"
        for i in range(n):
            rgb = _textured(i) if texture else _pattern(i)
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt, **convert)
            f.pts, f.time_base = i + first_pts, 1 / fps
            c.mux(s.encode(f))
        c.mux(s.encode(None))
        if a is not None:
            total = int(audio_s * rate)
            t = np.arange(total) / rate
            wave = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)[None]
            for p in range(0, total, 1024):
                fr = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(wave[:, p : p + 1024]), format="fltp", layout="mono"
                )
                fr.sample_rate, fr.pts, fr.time_base = rate, p, Fraction(1, rate)
                c.mux(a.encode(fr))
            c.mux(a.encode(None))
    return path


def _decode(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="yuv420p") if f.format.name == "yuv420p" else f.to_ndarray()
                for f in c.decode(video=0)]  # fmt: skip


def _packets(path) -> dict[int, bytes]:
    """Frame index (from pts order) -> packet bytes."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        pk = [(p.pts, bytes(p)) for p in c.demux(s) if p.size and not p.is_discard]
    pk.sort()
    return {i: data for i, (_, data) in enumerate(pk)}


def _colour_tags(path) -> tuple:
    """(stream's matrix, primaries, transfer, range), and the set of the decoded frames' tags."""
    with av.open(str(path)) as c:
        cc = c.streams.video[0].codec_context
        frames = {(f.colorspace, f.color_primaries, f.color_trc, f.color_range) for f in c.decode(video=0)}
        return (cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range), frames


def _profiles(codec: str, units) -> set[int]:
    """profile_idc of the sequence parameter sets among NAL ``units`` (H.264 type 7, H.265 type 33)."""
    if codec == "h264":
        return {u[1] for u in units if u[0] & 0x1F == 7}
    return {u[3] & 0x1F for u in units if (u[0] >> 1) & 0x3F == 33}


def _rgb(path) -> list[np.ndarray]:
    return list(iter_frames(path, dtype="uint8"))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _moved(frame: np.ndarray, k: int) -> np.ndarray:
    """A re-rendered frame: a smooth bump (a mouth that moved) added to the source frame."""
    y, x = np.mgrid[0 : frame.shape[0], 0 : frame.shape[1]]
    bump = 40 * np.exp(-(((x - 20 - k % 20) / 8.0) ** 2 + ((y - 24) / 6.0) ** 2))
    return np.clip(frame + bump[..., None], 0, 255).astype(np.uint8)


def _rendered(src_rgb, plan):
    """What the pipeline would hand over: source frames, with the masked ones changed (a moving square)."""
    out = []
    for k in range(plan.target_frames):
        frame = src_rgb[int(round(plan.source_time[k]))].copy()
        if plan.infill_mask[k]:
            frame = _moved(frame, k)
        out.append(frame)
    return np.stack(out)


SOURCES = {
    "h264_bframes": dict(codec="libx264", options={"bf": "3", "g": "250"}, n=300),
    "h264_bframes_gop12": dict(codec="libx264", options={"bf": "3", "g": "12"}),
    "h264_intra": dict(codec="libx264", options={"g": "1"}),
    "h265": dict(codec="libx265", options={"g": "12", "x265-params": "open-gop=0"}),
    "h265_open_gop": dict(codec="libx265", options={"g": "12"}),
    "h264_open_gop": dict(codec="libx264", options={"bf": "3", "g": "250", "x264-params": "open-gop=1"}, n=300),
    "h264_open_gop_12": dict(codec="libx264", options={"bf": "3", "g": "12", "x264-params": "open-gop=1"}),
    "h264_2997": dict(codec="libx264", options={"g": "15", "bf": "2"}, fps=Fraction(30000, 1001)),
    "h264_long_audio": dict(codec="libx264", options={"g": "12"}, audio_s=3.0),
    "h264_textured": dict(codec="libx264", options={"g": "12", "bf": "3", "crf": "16"}, texture=True),
    "h265_textured": dict(codec="libx265", options={"g": "12", "crf": "16"}, texture=True),
    "h264_start_offset": dict(codec="libx264", options={"bf": "3", "g": "12"}, first_pts=5),  # video starts late
    "h264_edit_list": dict(codec="libx264", options={"bf": "3", "g": "12"}, first_pts=-3),  # 3 frames hidden
    "h264_bt601_full": dict(codec="libx264", options={"bf": "3", "g": "12"}, colour=(6, 6, 6, 2)),
    "h265_bt709": dict(codec="libx265", options={"g": "12"}, colour=(1, 1, 1, 1)),
    "h264_444": dict(codec="libx264", options={"bf": "3", "g": "12"}, pix_fmt="yuv444p"),
    "h265_10bit": dict(codec="libx265", options={"g": "12"}, pix_fmt="yuv420p10le"),
}


def _check(tmp_path, name, where, ext=".mp4", span=(0.2, 0.4)):
    """Edit ``span`` = (original seconds, new seconds) at the start or middle of source ``name`` and check the file."""
    kw = dict(SOURCES[name])
    src = _make_source(tmp_path / f"src_{name}.mp4", **kw)
    n = kw.get("n", 60) + min(0, kw.get("first_pts", 0))
    fps = kw.get("fps", Fraction(25))
    start = 0.0 if where == "start" else float(n / fps) * 0.5
    plan = plan_from_spans([(start, start + span[0], span[1])], original_duration_s=float(n / fps), fps=float(fps),
                           source_frames=n, context_frames=2)  # fmt: skip
    src_rgb = _rgb(src)
    assert len(src_rgb) == n == probe_video(src).frame_count
    rendered = _rendered(src_rgb, plan)
    wave = np.random.default_rng(0).uniform(-0.2, 0.2, (2, 17000)).astype(np.float32)  # 17 kHz stereo
    out = tmp_path / f"out{ext}"
    report = write_edited_video(out, src, plan, rendered, audio=wave, sample_rate=17000)
    assert report.mode == "smart", report.messages
    assert not list(tmp_path.glob(".out*partial*"))

    spans = report.reencoded_spans
    reenc = np.zeros(plan.target_frames, bool)
    for s, e in spans:
        reenc[s:e] = True
    assert reenc[plan.infill_mask].all()
    out_yuv, src_yuv = _decode(out), _decode(src)
    assert len(out_yuv) == plan.target_frames
    with av.open(str(src)) as c:
        src_tb = c.streams.video[0].time_base
    with av.open(str(out)) as c:
        vs = c.streams.video[0]
        assert Fraction(vs.average_rate) == fps
        assert vs.time_base == (src_tb if ext != ".mkv" else Fraction(1, 1000))  # MKV's is always 1/1000
        assert vs.start_time * vs.time_base == 0
        end = max(p.pts + p.duration for p in c.demux(vs) if p.size) * vs.time_base
        assert float(end) == pytest.approx(plan.target_frames / float(fps), abs=1e-3)  # mkv keeps milliseconds
    with av.open(str(out)) as c:
        audio = c.streams.audio[0]
        assert audio.start_time * audio.time_base == pytest.approx(0, abs=1e-3)
        assert audio.codec_context.channels == 2
        assert audio.codec_context.name == ("aac" if ext == ".mp4" else "pcm_s16le")

    assert _colour_tags(out) == _colour_tags(src)  # copied and re-encoded frames carry the source's tags
    wave_out, rate_out = read_audio(out)
    assert abs(wave_out.shape[1] / rate_out - plan.target_frames / float(fps)) <= 1 / float(fps)

    src_pk, out_pk = _packets(src), _packets(out)
    with av.open(str(src)) as c:
        codec = c.streams.video[0].codec_context.name
        _, sets = parameter_sets(codec, bytes(c.streams.video[0].codec_context.extradata))
        src_formats = {f.format.name for f in c.decode(video=0)}
    prefix = b"".join(len(u).to_bytes(4, "big") + u for u in sets)
    with av.open(str(out)) as c:
        assert {f.format.name for f in c.decode(video=0)} == src_formats
    reencoded_sps = _profiles(codec, [u for k in np.flatnonzero(reenc) for u in nal_units(out_pk[k], 4)])
    assert reencoded_sps == _profiles(codec, sets)  # each re-encoded run starts with the source's profile
    copied = 0
    out_rgb = _rgb(out)
    for k in range(plan.target_frames):
        if reenc[k]:
            assert _psnr(out_rgb[k], rendered[k]) >= 45.0, (k, _psnr(out_rgb[k], rendered[k]))
            continue
        j = int(plan.source_time[k])
        assert plan.source_time[k] == j and not plan.infill_mask[k]
        for a, b in zip(out_yuv[k], src_yuv[j], strict=True):
            np.testing.assert_array_equal(a, b)
        assert out_pk[k] in (src_pk[j], prefix + src_pk[j])
        copied += 1
    assert copied == report.copied_frames
    return report, plan


@pytest.mark.parametrize("name", list(SOURCES))
@pytest.mark.parametrize("where", ["middle", "start"])
def test_smart_render_copies_untouched_gops(tmp_path, name, where):
    report, plan = _check(tmp_path, name, where)
    if name.startswith("h264_open_gop"):  # no H.264 splice point before a recovery-point I-frame: re-encoded on
        assert any("open GOPs" in m for m in report.messages), report.messages
        assert report.copied_frames >= (21 if where == "middle" and name == "h264_open_gop_12" else 0)
    elif name == "h264_edit_list":  # the first GOP holds the hidden frames: re-encoded without them
        assert any("edit list hides 3" in m for m in report.messages), report.messages
        assert report.reencoded_spans[0][0] == 0 and report.copied_frames > plan.target_frames // 3
    elif name != "h264_bframes":  # one GOP of 250 frames holds both edits there
        assert report.copied_frames > plan.target_frames // 3


@pytest.mark.parametrize("name", ["h264_bframes_gop12", "h264_intra", "h265_open_gop"])
def test_smart_render_deletion_moves_later_gops_back(tmp_path, name):
    report, plan = _check(tmp_path, name, "middle", span=(0.6, 0.12))  # 15 frames become 3
    assert plan.target_frames == 48
    last = max(k for k in range(plan.target_frames) if not any(s <= k < e for s, e in report.reencoded_spans))
    assert plan.source_time[last] - last == 12  # the copied tail sits 12 frames earlier than in the source


@pytest.mark.parametrize("ext", [".mkv", ".mov"])
def test_smart_render_mkv_mov_keep_pcm_at_its_own_rate(tmp_path, ext):
    report, _ = _check(tmp_path, "h264_bframes_gop12", "middle", ext=ext)
    assert report.audio_codec == "pcm_s16le" and report.audio_rate == 17000


def _plain_plan(n=20, fps=25.0):
    return plan_from_spans([(0.2, 0.3, 0.2)], original_duration_s=n / fps, fps=fps, source_frames=n, context_frames=1)


@pytest.mark.parametrize(
    "kind, ext, size, codec, pix_fmt",
    [
        ("lossless", ".mkv", (17, 9), "ffv1", "yuv444p"),
        ("lossless", ".mp4", (17, 9), "h264", "yuv444p"),
        ("prores_hq", ".mov", (64, 48), "prores", "yuv422p10le"),
        ("prores_4444", ".mov", (17, 9), "prores", "yuv444p12le"),  # the decoder reports 4444 as 12 bit
        ("h264", ".mp4", (17, 9), "h264", "yuv444p"),
        ("h265", ".mkv", (64, 48), "hevc", "yuv420p"),
    ],
)
def test_full_reencode_formats(tmp_path, kind, ext, size, codec, pix_fmt):
    plan = _plain_plan()
    w, h = size
    frames = np.stack([_pattern(i, w, h) for i in range(plan.target_frames)])
    out = tmp_path / f"out{ext}"
    report = write_edited_video(out, None, plan, frames, audio=np.zeros((2, 9000), np.float32), sample_rate=17000,
                                output=OutputFormat(kind=kind))  # fmt: skip
    assert report.mode == "full"
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.name, v.codec_context.pix_fmt) == (codec, pix_fmt)
        assert (v.codec_context.width, v.codec_context.height) == (w, h)
        a = c.streams.audio[0]
        assert a.codec_context.channels == 2
        assert a.codec_context.sample_rate == (17000 if ext != ".mp4" else 16000)
    back = np.stack(_rgb(out))
    assert back.shape == frames.shape
    if kind == "lossless" and ext == ".mkv":
        assert min(_psnr(a, b) for a, b in zip(back, frames, strict=True)) >= 45.0


@pytest.mark.parametrize(
    "kind, ext", [("lossless", ".mkv"), ("h264", ".mp4"), ("prores_hq", ".mov"), ("prores_4444", ".mov")]
)
def test_full_reencode_keeps_the_source_colour_tags(tmp_path, kind, ext):
    src = _make_source(tmp_path / "src.mp4", n=20, colour=(6, 6, 6, 2))  # BT.601, full range
    plan = _plain_plan()
    frames = _rendered(_rgb(src), plan)
    out = tmp_path / f"out{ext}"
    report = write_edited_video(out, src, plan, frames, output=OutputFormat(kind=kind))
    assert report.mode == "full"
    tags = (6, 6, 6, 1 if kind.startswith("prores") else 2)  # ProRes has no range flag: written in video range
    assert _colour_tags(out) == (tags, {tags})
    assert any("limited range" in m for m in report.messages) == kind.startswith("prores")
    back = np.stack(_rgb(out))  # decoded by the file's own tags: right levels, right matrix
    assert min(_psnr(a, b) for a, b in zip(back, frames, strict=True)) >= (35.0 if kind == "h264" else 45.0)


def test_out_that_is_the_input_is_refused_before_opening(tmp_path):
    src = _make_source(tmp_path / "a.mp4", n=20)
    before = src.read_bytes()
    link = tmp_path / "b.mp4"
    link.symlink_to(src)
    for out in (src, link, tmp_path / "." / "a.mp4"):
        with pytest.raises(ValueError, match="is the input file"):
            write_edited_video(out, src, _plain_plan(), iter(()))
    assert src.read_bytes() == before


def test_failed_write_keeps_the_previous_output(tmp_path):
    src = _make_source(tmp_path / "src.mp4", n=20)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous result")
    plan = _plain_plan()

    def frames():
        for i in range(5):
            yield _pattern(i)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_edited_video(out, src, plan, frames(), output=OutputFormat(kind="h264"))
    assert out.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "src.mp4"]


class _FailingOutput:
    """A real output container whose writes fail like a full disk (mux) or a failing drive (trailer)."""

    def __init__(self, real, fail: str):
        self.real, self.fail, self.muxed = real, fail, 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    def mux(self, packets):
        self.muxed += 1
        if self.fail == "mux" and self.muxed == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.real.mux(packets)

    def close(self):
        self.real.close()
        if self.fail == "close":
            raise av.error.OSError(errno.EIO, "Input/output error")


@pytest.mark.parametrize("kind", ["same", "h264"])
@pytest.mark.parametrize("fail", ["mux", "close"])
@pytest.mark.parametrize("previous", [True, False])
def test_write_error_names_the_output_and_keeps_the_previous_one(tmp_path, monkeypatch, kind, fail, previous):
    src = _make_source(tmp_path / "src.mp4", n=20)
    out = tmp_path / "out.mp4"
    if previous:
        out.write_bytes(b"previous result")
    plan = _plain_plan()
    frames = _rendered(_rgb(src), plan)
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda path, mode="r", **kw: (
        _FailingOutput(real_open(path, mode, **kw), fail) if mode == "w" else real_open(path, mode, **kw)))  # fmt: skip
    reason = "No space left on device" if fail == "mux" else r"av\.error\.OSError: Input/output error"
    kept = f"the previous {out} is kept as it was" if previous else f"no {out} was left behind"
    with pytest.raises(OSError, match=rf"out: writing {out} failed \({reason}\); {kept}") as caught:
        write_edited_video(out, src, plan, frames, output=OutputFormat(kind=kind))
    assert caught.value.errno == (errno.ENOSPC if fail == "mux" else errno.EIO)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out.mp4", "src.mp4"] if previous else ["src.mp4"])
    if previous:
        assert out.read_bytes() == b"previous result"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_write_leaves_no_partial_file(tmp_path, sig):
    src = _make_source(tmp_path / "src.mp4", n=20)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous result")
    script = textwrap.dedent(f"""
        import sys, time
        import numpy as np
        sys.path.insert(0, {ROOT!r})
        from facedit.edits import plan_from_spans
        from facedit.video import OutputFormat, write_edited_video
        plan = plan_from_spans([(0.2, 0.3, 0.2)], original_duration_s=0.8, fps=25.0, source_frames=20)
        def frames():
            for i in range(plan.target_frames):
                if i == 3:
                    print("writing", flush=True)
                    time.sleep(60)
                yield np.zeros((48, 64, 3), np.uint8)
        write_edited_video({str(out)!r}, {str(src)!r}, plan, frames(), output=OutputFormat(kind="h264"))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    assert any(p.name.endswith(".partial.mp4") for p in tmp_path.iterdir())
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert out.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "src.mp4"]


def test_fallback_to_full_reencode_says_why(tmp_path):
    src = tmp_path / "src.mkv"
    with av.open(str(src), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for i in range(20):
            f = av.VideoFrame.from_ndarray(_pattern(i), format="rgb24").reformat(format="yuv420p")
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    plan = _plain_plan()
    frames = np.stack([_pattern(i) for i in range(plan.target_frames)])
    report = write_edited_video(tmp_path / "out.mp4", src, plan, frames)
    assert report.mode == "full" and "mpeg4" in report.messages[0]
    assert len(_rgb(tmp_path / "out.mp4")) == plan.target_frames


def test_fallback_for_timestamps_that_are_not_frame_aligned(tmp_path):
    """MKV stores milliseconds: 29.97 fps frames are 33 or 34 ms apart, which copied packets cannot keep."""
    fps = Fraction(30000, 1001)
    src = _make_source(tmp_path / "src.mkv", n=30, fps=fps, options={"g": "10"})
    plan = plan_from_spans([(0.4, 0.6, 0.5)], original_duration_s=30 / float(fps), fps=float(fps), source_frames=30)
    frames = _rendered(_rgb(src), plan)
    report = write_edited_video(tmp_path / "out.mkv", src, plan, frames)
    assert report.mode == "full" and report.messages[0].startswith("smart render not possible"), report.messages
    back = _rgb(tmp_path / "out.mkv")
    assert len(back) == plan.target_frames
    assert min(_psnr(a, b) for a, b in zip(back, frames, strict=True)) >= 35.0


def test_variable_frame_rate_source_is_reencoded_and_says_why(tmp_path):
    src = tmp_path / "vfr.mp4"
    with av.open(str(src), "w") as c:  # 20 frames at 25 fps with two missing after the tenth
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.options = {"preset": "ultrafast", "g": "5"}
        for i in range(20):
            f = av.VideoFrame.from_ndarray(_pattern(i), format="rgb24").reformat(format="yuv420p")
            f.pts, f.time_base = i + (2 if i >= 10 else 0), Fraction(1, 25)
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    n = probe_video(src).frame_count  # however the reader counts it (stored or retimed frames)
    plan = plan_from_spans([(0.1, 0.2, 0.2)], original_duration_s=n / 25, fps=25.0, source_frames=n)
    frames = _rendered(_rgb(src), plan)
    report = write_edited_video(tmp_path / "out.mp4", src, plan, frames)
    assert report.mode == "full" and "variable frame rate" in report.messages[0], report.messages
    assert len(_rgb(tmp_path / "out.mp4")) == plan.target_frames


def test_unreadable_source_is_named(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_bytes(b"not a video at all")
    plan = _plain_plan()
    for source, match in ((bad, "notes.mp4"), (tmp_path / "missing.mp4", "missing.mp4")):
        with pytest.raises(ValueError, match=f"source: .*{match}"):
            write_edited_video(tmp_path / "out.mp4", source, plan, np.zeros((plan.target_frames, H, W, 3), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.mp4"]


def _save_node_inputs(tmp_path, monkeypatch):
    """The Save Edited Video node (ComfyUI's ui faked), a source clip, its plan, the rendered frames and audio."""
    import torch
    from _node_helpers import pack_module

    video = pack_module("nodes.video")
    monkeypatch.setenv("FACEDIT_OUTPUT_DIR", str(tmp_path / "output"))
    src = _make_source(tmp_path / "src.mp4", options={"g": "12"})
    plan = pack_module("facedit.edits").plan_from_spans(
        [(1.2, 1.4, 0.4)], original_duration_s=2.4, fps=25.0, source_frames=60, context_frames=2
    )
    frames = torch.from_numpy(_rendered(_rgb(src), plan).astype(np.float32) / 255.0)
    audio = {"waveform": torch.zeros(1, 1, 40000), "sample_rate": 16000}
    comfy = pack_module("nodes._comfy")

    class FakeUI:  # what comfy_api.latest.ui gives the node inside ComfyUI
        SavedResult = staticmethod(lambda name, subfolder, kind: {"filename": name, "subfolder": subfolder})

        class PreviewVideo:
            def __init__(self, results):
                self.results = results

            def as_dict(self):
                return {"images": self.results, "animated": (True,)}

    monkeypatch.setattr(comfy, "ui", FakeUI)
    return video.FacEDiTSaveEditedVideo, src, plan, frames, audio


def test_save_edited_video_node(tmp_path, monkeypatch):
    node, src, plan, frames, audio = _save_node_inputs(tmp_path, monkeypatch)
    out = node.execute(str(src), plan, frames, audio, "clips/edit", "same", "mkv", 18)
    path, report = out.args
    assert path.endswith("clips/edit_00001.mkv") and os.path.isfile(path)
    assert len(_rgb(path)) == plan.target_frames
    first = report.splitlines()[0]
    assert first.startswith("smart render (h264): 3 of 5 source GOPs copied packet for packet"), report
    assert out.ui == {"images": [{"filename": "edit_00001.mkv", "subfolder": "clips"}], "animated": (True,),
                      "text": [report]}  # fmt: skip
    with pytest.raises(ValueError, match="images"):
        node.execute(str(src), plan, frames[:5], audio, "clips/edit", "same", "mkv", 18)


def test_save_node_pixel_format(tmp_path, monkeypatch):
    node, src, plan, frames, audio = _save_node_inputs(tmp_path, monkeypatch)
    path, _ = node.execute(str(src), plan, frames, audio, "px/h264", "h264", "mp4", 18, "yuv444p").args
    with av.open(path) as c:
        assert (c.streams.video[0].codec_context.name, c.streams.video[0].codec_context.pix_fmt) == ("h264", "yuv444p")
    path, _ = node.execute(str(src), plan, frames, audio, "px/ffv1", "lossless", "mkv", 18, "yuv422p10le").args
    with av.open(path) as c:
        assert (c.streams.video[0].codec_context.name, c.streams.video[0].codec_context.pix_fmt) == (
            "ffv1",
            "yuv422p10le",
        )
    written = sorted(p.name for p in (tmp_path / "output" / "px").iterdir())
    bad = [
        (("same", "mp4", "yuv444p"), r"pix_fmt: yuv444p needs a full re-encode, but format 'same'"),
        (("h264", "mp4", "rgb24"), r"pix_fmt: expected one of \('auto', 'yuv420p'"),
        (("prores_hq", "mov", "yuv420p"), r"pix_fmt: prores_ks cannot write 'yuv420p'"),
    ]
    for (kind, container, pix_fmt), match in bad:
        with pytest.raises(ValueError, match=match):
            node.execute(str(src), plan, frames, audio, "px/bad", kind, container, 18, pix_fmt)
    assert sorted(p.name for p in (tmp_path / "output" / "px").iterdir()) == written  # nothing left behind


def test_cli_refuses_out_that_is_the_video(tmp_path, capsys):
    from facedit.__main__ import main

    src = _make_source(tmp_path / "a.mp4", n=20)
    before = src.read_bytes()
    argv = ["edit", "--video", str(src), "--speech", str(tmp_path / "missing.wav"), "--spans", "0.2 0.3 0.2",
            "--out", str(tmp_path / "." / "a.mp4"), "--models", str(tmp_path / "no_models")]  # fmt: skip
    assert main(argv) == 1
    assert "is the input file" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_variable_frame_rate_source_is_reencoded_whole_not_copied(tmp_path, caplog):
    from _vfr_helpers import marker, shown_at, write_vfr

    from facedit.video_io import probe_video

    src = write_vfr(tmp_path / "vfr.mp4", image=lambda i: _pattern(i))
    info = probe_video(src)
    assert info.retimed and info.fps == 50
    plan = plan_from_spans([(2.0, 2.2, 0.2)], original_duration_s=info.duration_s, fps=float(info.fps),
                           source_frames=info.frame_count, context_frames=2)  # fmt: skip
    rendered = _rendered(_rgb(src), plan)
    with caplog.at_level("WARNING", logger="facedit.video"):
        report = write_edited_video(tmp_path / "out.mp4", src, plan, rendered, output=OutputFormat(crf=0))
    assert report.mode == "full" and report.copied_frames == 0
    assert any("variable frame rate" in m and "cannot be copied" in m for m in report.messages), report.messages
    assert "smart render not possible" in caplog.text
    out = _rgb(tmp_path / "out.mp4")
    assert len(out) == plan.target_frames
    for k in np.flatnonzero(~plan.infill_mask):  # frame k of the file is what was on screen at k / fps
        assert marker(out[k]) == shown_at(k / 50), k


def test_a_plan_for_another_frame_rate_or_clip_is_refused(tmp_path):
    src = _make_source(tmp_path / "ten.mp4", n=20, fps=Fraction(10))
    frames = np.stack([_pattern(i) for i in range(20)])
    plan = plan_from_spans([(0.2, 0.4, 0.2)], original_duration_s=4.0, fps=5.0, source_frames=20)
    with pytest.raises(ValueError, match=r"5 fps.*ten\.mp4 has 20 frames at 10 fps"):
        write_edited_video(tmp_path / "out.mp4", src, plan, frames)
    other = plan_from_spans([(0.2, 0.4, 0.2)], original_duration_s=1.2, fps=10.0, source_frames=12)
    with pytest.raises(ValueError, match="12 frames at 10 fps"):
        write_edited_video(tmp_path / "out.mp4", src, other, frames[:12])
    assert not (tmp_path / "out.mp4").exists()


def test_save_node_refuses_a_plan_made_for_a_vfr_files_stored_frames(tmp_path, monkeypatch):
    import torch
    from _node_helpers import pack_module
    from _vfr_helpers import TIMES, write_vfr

    video = pack_module("nodes.video")
    monkeypatch.setenv("FACEDIT_OUTPUT_DIR", str(tmp_path / "output"))
    src = write_vfr(tmp_path / "vfr.mkv")
    # what a loader that reads the stored frames one by one reports: 75 frames at the container's 50 fps
    plan = pack_module("facedit.edits").plan_from_spans(
        [(1.0, 1.2, 0.2)], original_duration_s=1.5, fps=50.0, source_frames=len(TIMES)
    )
    frames = torch.zeros(plan.target_frames, 48, 64, 3)
    audio = {"waveform": torch.zeros(1, 1, 24000), "sample_rate": 16000}
    with pytest.raises(ValueError, match=r"variable frame rate.*150 frames"):
        video.FacEDiTSaveEditedVideo.execute(str(src), plan, frames, audio, "clips/edit", "same", "mp4", 18)
    assert not (tmp_path / "output").exists() or not list((tmp_path / "output").rglob("*.mp4"))


def test_audio_encoded_ahead_in_a_thread_is_the_audio_encoded_in_step(tmp_path):
    """The smart render encodes the audio in a thread while it makes the video: the same packets, and an encoder
    error comes back to the writer as an error about the output file."""
    from facedit.video.render import _AudioWriter, _Output

    wave = np.random.default_rng(1).uniform(-0.3, 0.3, (2, 17000 * 3)).astype(np.float32)
    packets = {}
    for ahead in (False, True):
        path = tmp_path / f"ahead_{ahead}.mp4"
        with _Output(str(path)) as out:
            writer = _AudioWriter(out, ".mp4", wave, 17000)
            if ahead:
                writer.start_ahead()
                writer.join()
            for k in range(1, 80):
                writer.write_until(k * 0.04)
            writer.finish()
        with av.open(str(path)) as c:
            packets[ahead] = [(p.pts, bytes(p)) for p in c.demux(audio=0) if p.size]
    assert len(packets[True]) > 40 and packets[True] == packets[False], (len(packets[True]), len(packets[False]))

    class Broken:
        def encode(self, frame):
            raise av.error.InvalidDataError(errno.EINVAL, "broken encoder")

    path = tmp_path / "broken.mp4"
    with pytest.raises(OSError, match="broken encoder") as caught, _Output(str(path)) as out:
        writer = _AudioWriter(out, ".mp4", wave, 17000)
        writer.stream = Broken()
        writer.start_ahead()
        writer.finish()
    assert caught.value.filename == str(path)


@pytest.mark.parametrize("name", ["h264_bframes_gop12", "h265_open_gop"])
def test_analysis_keeps_only_the_bytes_that_decide_the_joins(tmp_path, name):
    from facedit.video import render

    kw = dict(SOURCES[name])
    src = _make_source(tmp_path / "src.mp4", **kw)
    n = kw.get("n", 60)
    plan = plan_from_spans([(1.0, 1.2, 0.4)], original_duration_s=n / 25, fps=25.0, source_frames=n, context_frames=2)
    with av.open(str(src)) as c:
        source, why = render._analyse(c, plan)
    assert source is not None, why
    kept = 0
    for gop in source.gops:
        for i, (j, packet) in enumerate(gop.packets):
            assert (packet.data is not None) == (i == 0 or j < gop.key_index), (j, gop.key_index)
            kept += packet.data is not None
    total = sum(len(gop.packets) for gop in source.gops)
    assert len(source.gops) >= 4 and kept < total // 2  # the P/B pictures are read again when copied
    if name == "h265_open_gop":
        assert any(j < gop.key_index for gop in source.gops for j, _ in gop.packets)  # leading pictures kept


def test_a_source_replaced_while_it_is_copied_is_an_error_and_the_output_is_kept(tmp_path, monkeypatch):
    from facedit.video import render

    kw = dict(SOURCES["h264_bframes_gop12"])
    src = _make_source(tmp_path / "src.mp4", **kw)
    other = _make_source(tmp_path / "other.mp4", **kw, texture=True)  # same timing, other pictures
    plan = plan_from_spans([(1.0, 1.2, 0.2)], original_duration_s=2.4, fps=25.0, source_frames=60, context_frames=2)
    rendered = _rendered(_rgb(src), plan)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous result")
    original = render._PacketData.__init__
    monkeypatch.setattr(render._PacketData, "__init__", lambda self, path: original(self, str(other)))
    with pytest.raises(RuntimeError, match="changed while it was being copied"):
        write_edited_video(out, src, plan, rendered)
    assert out.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.mp4", "out.mp4", "src.mp4"]


def test_keyframe_interval_sets_the_gops_of_a_full_encode(tmp_path):
    from facedit.video_io import write_video

    frames = np.stack([_pattern(i) for i in range(40)])
    path = write_video(tmp_path / "gops.mp4", frames, 25, keyframe_interval=10)
    with av.open(path) as c:
        keys = sorted(p.pts for p in c.demux(c.streams.video[0]) if p.size and p.is_keyframe)
        tb = c.streams.video[0].time_base
    assert [round(float(k * tb) * 25) for k in keys] == [0, 10, 20, 30]
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="keyframe_interval"):
            OutputFormat(kind="h264", keyframe_interval=bad)

"""Writing an edited clip: smart render (copy untouched GOPs, re-encode only those an edit meets) or a full
re-encode in an editor-friendly format.

Smart render, for H.264 / H.265 sources in MP4 / MOV / MKV: the source's video packets are grouped into GOPs
(decode order, a new group at each keyframe). A GOP is copied, packet for packet, when every frame it holds
lands unchanged on the target timeline at one common offset (an insertion or deletion before it moves that
offset); a GOP with leading pictures that refer back (open GOP) is copied whole only right after its copied
predecessor; after a re-encoded stretch an H.265 CRA GOP is copied without its leading pictures (re-encoded
with the stretch, which then ends a coded video sequence), while H.264 open GOPs are re-encoded up to the next
IDR picture (see nal.py). The remaining target frames form runs that are encoded afresh from the rendered
frames with the source's codec, pixel format, profile, colour tags and time base, each run starting with a
keyframe. Anything that would make the join unsafe (another codec, no encoder here, irregular timestamps, a
frame count that differs from the plan) falls back to a full re-encode, and the report says why.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import logging
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import numpy as np

from ..edits import EditPlan
from ..video_io import (
    SEEK_AHEAD,
    VideoInfo,
    _accurate_flags,
    _decoded,
    _frame_to_rgb,
    _frame_to_uint8,
    _iter_input_frames,
    fps_to_fraction,
    probe_video,
)
from .audio_copy import SourceAudio, joined_audio_packets, source_audio
from .nal import HEVC_END_OF_SEQUENCE, annexb_to_length_prefixed, h264_idr, hevc_cra, hevc_leading, parameter_sets
from .safe_write import atomic_output, check_output_path

log = logging.getLogger("facedit.video")

__all__ = ["OUTPUT_KINDS", "OutputFormat", "WriteReport", "check_plan_source", "write_edited_video", "write_frames"]

OUTPUT_KINDS = ("same", "lossless", "prores_hq", "prores_4444", "h264", "h265")
AAC_SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_SMART_CODECS = {"h264": "libx264", "hevc": "libx265"}
_SMART_CONTAINERS = (".mp4", ".mov", ".m4v", ".mkv")
_PCM_CONTAINERS = (".mov", ".mkv")
_CONTAINERS = (".mp4", ".mov", ".m4v", ".mkv")
_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
_BT709 = {"colorspace": 1, "color_primaries": 1, "color_trc": 1, "color_range": 1}
_SWS_COLORSPACE = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}  # AVColorSpace -> swscale matrix


@dataclass(frozen=True)
class OutputFormat:
    """How the video is written.

    ``kind``: ``same`` (smart render, the default), ``lossless`` (FFV1 in .mkv, else x264 qp 0 yuv444p),
    ``prores_hq`` / ``prores_4444`` (prores_ks, .mov), ``h264`` / ``h265`` (CRF ``crf``).
    ``pix_fmt``: the encoder's pixel format (None: the source's, else a default that fits the size: yuv420p,
    or yuv444p when the width or height is odd).
    ``preset``: the x264 / x265 speed preset of a full re-encode.
    ``reencode_crf``: quality of the GOPs a smart render re-encodes (x264 CRF, x265 constant QP; low = close
    to the rendered frames; x264 needs >= 1 unless the source is High 4:4:4).
    ``keyframe_interval``: the longest GOP, in frames, of a full x264 / x265 encode (None: the encoder's 250). A
    file written with short GOPs is copied closer around a later edit by the smart render.
    """

    kind: str = "same"
    crf: int = 18
    pix_fmt: str | None = None
    reencode_crf: int = 1
    preset: str = "medium"
    keyframe_interval: int | None = None

    def __post_init__(self) -> None:
        if self.keyframe_interval is not None and not (
            isinstance(self.keyframe_interval, int) and not isinstance(self.keyframe_interval, bool)
            and self.keyframe_interval >= 1
        ):  # fmt: skip
            raise ValueError(f"keyframe_interval: expected whole frames >= 1 or None, got {self.keyframe_interval!r}")
        if self.kind not in OUTPUT_KINDS:
            raise ValueError(f"output kind: expected one of {OUTPUT_KINDS}, got {self.kind!r}")
        if self.preset not in _PRESETS:
            raise ValueError(f"preset: expected one of {_PRESETS}, got {self.preset!r}")
        if not 0 <= int(self.crf) <= 51 or not 0 <= int(self.reencode_crf) <= 51:
            raise ValueError(f"crf: expected 0..51, got crf={self.crf}, reencode_crf={self.reencode_crf}")
        if self.kind == "same" and self.pix_fmt is not None:
            raise ValueError(
                f"pix_fmt: {self.pix_fmt} needs a full re-encode, but format 'same' copies the source's GOPs and "
                "re-encodes the rest in the source's own pixel format; leave the pixel format unset (auto), or "
                "choose format lossless, prores_hq, prores_4444, h264 or h265"
            )


@dataclass(frozen=True)
class WriteReport:
    """What was written: ``mode`` is ``smart`` or ``full``; spans are half-open target frame runs."""

    path: str
    mode: str
    video_codec: str
    copied_gops: int = 0
    reencoded_gops: int = 0
    copied_frames: int = 0
    reencoded_spans: tuple[tuple[int, int], ...] = ()
    audio_codec: str | None = None
    audio_rate: int | None = None
    copied_audio_packets: int = 0
    """AAC packets of the audio copied from the source (`facedit.video.audio_copy`), of ``audio_packets``."""
    audio_packets: int = 0
    messages: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        """What is bit-identical and what was re-encoded, in one line (the CLI and the save node show it)."""
        spans = ", ".join(f"{s}-{e - 1}" for s, e in self.reencoded_spans) or "none"
        if self.mode == "smart":
            gops = self.copied_gops + self.reencoded_gops
            text = (f"smart render ({self.video_codec}): {self.copied_gops} of {gops} source GOPs copied packet for "
                    f"packet ({self.copied_frames} frames bit-identical to the source), {self.reencoded_gops} "
                    f"re-encoded; re-encoded target frames {spans}")  # fmt: skip
        else:
            text = f"full re-encode ({self.video_codec}): every frame encoded, target frames {spans}"
        if self.audio_codec:
            text += f"; audio {self.audio_codec} {self.audio_rate} Hz"
            if self.copied_audio_packets:
                text += (f" ({self.copied_audio_packets} of {self.audio_packets} packets copied from the source, "
                         "where the speech is its sound)")  # fmt: skip
        return text


def _av():
    import av

    return av


class _Output:
    """The output container, written at ``path`` (the temporary file of `atomic_output`): an error while opening,
    encoding into, muxing into or closing it (disk full, I/O error) is an OSError about ``path``, which
    `atomic_output` reports as one about the output file."""

    def __init__(self, path: str):
        self.path = path
        self.container = self._call(_av().open, path, mode="w")

    def _call(self, fn, *args, **kwargs):
        av = _av()
        try:
            return fn(*args, **kwargs)
        except (OSError, av.error.FFmpegError) as err:
            reason = getattr(err, "strerror", None) or str(err).strip() or type(err).__name__
            if type(err).__module__ != "builtins":  # av.error.*: its class says which step failed
                reason = f"{type(err).__module__}.{type(err).__name__}: {reason}"
            raise OSError(getattr(err, "errno", None) or errno.EIO, reason, self.path) from err

    def __getattr__(self, name: str):  # add_stream, add_stream_from_template, streams
        return getattr(self.container, name)

    def mux(self, packets) -> None:
        self._call(self.container.mux, packets)

    def encode(self, stream, frame) -> None:
        """Encode ``frame`` (None: flush) with ``stream`` and mux the packets."""
        self.mux(self._call(stream.encode, frame))

    def __enter__(self) -> _Output:
        return self

    def __exit__(self, kind, error, tb) -> None:
        if kind is None:
            self._call(self.container.close)  # writes the trailer: can fail like any write
        else:
            with contextlib.suppress(Exception):  # the first error is the one to report
                self.container.close()


# ---------------------------------------------------------------- source analysis


@dataclass(frozen=True)
class _Packet:
    """A source video packet as the analysis keeps it: where it is and what it is, not its bytes (a long 4K
    source's packets are gigabytes), except for the pictures whose NAL units decide how a GOP may be joined
    (keyframes and the leading pictures after them). `_PacketData` reads the rest again when it is muxed."""

    ordinal: int  # among the stream's non-empty packets, in demux order
    pts: int
    size: int
    is_keyframe: bool
    data: bytes | None = None


class _PacketData:
    """The bytes of copied source packets, read in one forward pass over the source as the muxer asks for them
    (from the start again if a packet before the last one is asked for)."""

    def __init__(self, path: str):
        self.path = path
        self.container = None
        self.packets: Iterator[tuple[int, Any]] | None = None
        self.last = -1

    def _restart(self) -> None:
        self.close()
        self.container = _av().open(self.path)
        stream = self.container.streams.video[0]
        self.packets = enumerate(p for p in self.container.demux(stream) if p.size > 0)
        self.last = -1

    def get(self, packet: _Packet) -> bytes:
        if packet.data is not None:
            return packet.data
        if self.packets is None or packet.ordinal <= self.last:
            self._restart()
        for ordinal, found in self.packets:
            self.last = ordinal
            if ordinal == packet.ordinal:
                if (found.pts, found.size) != (packet.pts, packet.size):
                    break
                return bytes(found)
        raise RuntimeError(f"smart render: the source {self.path} changed while it was being copied (its video packet "
                           f"{packet.ordinal} is no longer the one analysed)")  # fmt: skip

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
        self.container, self.packets = None, None


@dataclass
class _Gop:
    packets: list[tuple[int, _Packet]]  # (source frame index, packet) in decode order
    key_index: int
    shift: int | None = None  # target = source + shift when copied
    drop_leading: bool = False  # copied without its leading pictures (they are re-encoded)

    @property
    def frames(self) -> list[int]:
        return [j for j, _ in self.packets]

    @property
    def leading(self) -> list[int]:
        return [j for j in self.frames if j < self.key_index]

    @property
    def copied(self) -> list[tuple[int, _Packet]]:
        """(source frame, packet) of what is copied, in decode order."""
        return [(j, p) for j, p in self.packets if not (self.drop_leading and j < self.key_index)]


@dataclass
class _Source:
    codec: str
    stream: Any
    time_base: Fraction
    frame_dur: int
    gops: list[_Gop]
    param_sets: tuple[int, list[bytes]] | None
    hidden: int = 0  # packets an edit list hides (decoded as references, never shown)


def _analyse(container, plan: EditPlan) -> tuple[_Source | None, str]:
    stream = container.streams.video[0]
    codec = stream.codec_context.name
    if codec not in _SMART_CODECS:
        return None, f"the source codec {codec} cannot be joined here (smart render handles H.264 and H.265)"
    if stream.time_base is None:
        return None, "the source video stream has no time base"
    tb = Fraction(stream.time_base)
    packets: list[tuple[_Packet, bool]] = []  # (packet, hidden by an edit list), in decode order
    key_pts = None
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        if packet.pts is None:
            return None, "a source packet has no timestamp"
        opens = packet.is_keyframe or key_pts is None  # a GOP (see below)
        key_pts = packet.pts if opens else key_pts
        # only the bytes `_choose_copies` reads are kept: a GOP's first picture and the leading pictures after it
        data = bytes(packet) if opens or packet.pts < key_pts else None
        packets.append((_Packet(len(packets), packet.pts, packet.size, packet.is_keyframe, data), packet.is_discard))
    if not packets:
        return None, "the source has no video packets"
    if stream.frames and stream.frames > len(packets):  # the last packet may be cut short: copied, it breaks the file
        return None, (f"the source is truncated: its index lists {stream.frames} video frames but only "
                      f"{len(packets)} are in the file")  # fmt: skip
    shown = [packet.pts for packet, hidden in packets if not hidden]  # an edit list hides the others
    if not shown:
        return None, "the source's edit list hides every video packet"
    order = sorted(shown)
    first = order[0]
    gaps = {b - a for a, b in zip(order, order[1:], strict=False)}
    if len(gaps) > 1:  # copied packets keep their own times, which are not the plan's evenly spaced frames
        return None, (f"the source has a variable frame rate or gaps (its frames are {float(min(gaps) * tb) * 1000:.1f}"
                      f"-{float(max(gaps) * tb) * 1000:.1f} ms apart), so its packets cannot be copied onto the "
                      "plan's constant-rate timeline")  # fmt: skip
    fps = fps_to_fraction(plan.fps)
    dur = 1 / (fps * tb)
    if dur.denominator != 1:
        return None, f"one frame ({1 / fps} s) is not a whole number of time-base ticks ({tb})"
    dur = int(dur)
    if len(shown) != plan.source_frames:
        return None, f"the source has {len(shown)} video packets but the plan {plan.source_frames} frames"
    if any(pts != first + i * dur for i, pts in enumerate(order)):
        return None, f"the source's frames are {float(min(gaps, default=0) * tb):.4f} s apart, the plan's {1 / fps} s"
    gops: list[_Gop] = []
    for packet, hidden in packets:
        j = (packet.pts - first) // dur  # hidden frames fall outside 0..n-1, so a GOP holding one is never copied
        if hidden and 0 <= j < len(shown):
            return None, "the source's edit list hides frames between shown ones"
        if packet.is_keyframe or not gops:
            gops.append(_Gop([], j))
        gops[-1].packets.append((j, packet))
    sets = parameter_sets(codec, bytes(stream.codec_context.extradata or b""))
    return _Source(codec, stream, tb, dur, gops, sets, hidden=len(packets) - len(shown)), ""


def _unchanged_targets(plan: EditPlan) -> dict[int, int]:
    """Source frame -> the target frame that shows it unchanged (unmasked, whole source time)."""
    st = plan.source_time
    whole = (~plan.infill_mask) & (st == np.round(st))
    out: dict[int, int] = {}
    for k in np.flatnonzero(whole):
        out.setdefault(int(st[k]), int(k))
    return out


def _common_shift(frames: list[int], targets: dict[int, int]) -> int | None:
    """The one offset at which all ``frames`` land unchanged on the target timeline, else None."""
    if frames[0] not in targets:
        return None
    shift = targets[frames[0]] - frames[0]
    return shift if all(targets.get(j) == j + shift for j in frames) else None


def _choose_copies(source: _Source, plan: EditPlan) -> list[str]:
    """Set each GOP's shift (None: re-encoded) and say where open GOPs cost more than the edit itself."""
    targets = _unchanged_targets(plan)
    length_size = source.param_sets[0] if source.param_sets else None
    previous: _Gop | None = None
    h264_open: list[int] = []
    for gop in source.gops:
        gop.shift, gop.drop_leading = _common_shift(gop.frames, targets), False
        key = gop.packets[0][1].data
        # joined: re-encoded frames or a copy at another offset come before it in the file
        after_copy = previous is not None and previous.shift == gop.shift
        joined = gop.shift is not None and not after_copy and not (previous is None and gop.shift == 0)
        if joined and source.codec == "h264" and (gop.leading or not h264_idr(key, length_size)):
            gop.shift = None
            h264_open.append(gop.key_index)
        elif joined and gop.leading:
            gop.shift = None
        if gop.shift is None and gop.leading and source.codec == "hevc" and hevc_cra(key, length_size):
            if all(hevc_leading(p.data, length_size) for j, p in gop.packets if j < gop.key_index):
                gop.shift = _common_shift([j for j in gop.frames if j >= gop.key_index], targets)
                gop.drop_leading = gop.shift is not None
        previous = gop
    if not h264_open:
        return []
    return [f"the source's open GOPs (H.264 I-frames that later frames look past) follow the re-encoded frames, so "
            f"{len(h264_open)} more GOPs from source frame {h264_open[0]} on were re-encoded; a source with "
            "closed GOPs (x264's default) is copied around the edit"]  # fmt: skip


class _SourceFrames:
    """Decoded source frames by index, forward only with a small cache; a step back or a jump decodes again from
    the keyframe before the frame (`facedit.video_io` seeks exactly)."""

    def __init__(self, path: str, cache: int = 8):
        self.path, self.cache_size = path, cache
        self.cache: dict[int, Any] = {}
        self.frames: Iterator[tuple[int, Any, Any, bool]] | None = None
        self.next = 0

    def get(self, index: int):
        if index in self.cache:
            return self.cache[index]
        if self.frames is None or index < self.next or index >= self.next + SEEK_AHEAD:
            self.close()
            self.frames, self.next = _decoded(self.path, start=index), index
        while self.next <= index:
            try:
                self.cache[self.next] = next(self.frames)[1]
            except StopIteration:
                raise ValueError(f"source: {self.path}: decoding ended before frame {index + 1}; the file is damaged "
                                 "or truncated") from None  # fmt: skip
            except ValueError as exc:
                raise ValueError(f"source: {exc}") from exc
            if len(self.cache) > self.cache_size:
                del self.cache[min(self.cache)]
            self.next += 1
        return self.cache[index]

    def close(self) -> None:
        if self.frames is not None:
            self.frames.close()
            self.frames = None


def _indexable(frames: Any) -> bool:
    """A lazy sequence (len + indexing) rather than an array or an iterator."""
    return (
        not isinstance(frames, np.ndarray)
        and not hasattr(frames, "detach")
        and hasattr(frames, "__getitem__")
        and hasattr(frames, "__len__")
        and not isinstance(frames, (list, tuple))
    )


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    padded = np.concatenate([[False], flags, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


# ---------------------------------------------------------------- encoding helpers


def _colour(ctx) -> dict[str, int]:
    return {
        "colorspace": int(ctx.colorspace or 2),
        "color_primaries": int(ctx.color_primaries or 2),
        "color_trc": int(ctx.color_trc or 2),
        "color_range": int(ctx.color_range or 0),
    }


def _to_video_frame(rgb: np.ndarray, pix_fmt: str, colour: dict[str, int]):
    av = _av()
    matrix = _SWS_COLORSPACE.get(colour["colorspace"], 5)
    full = colour["color_range"] == 2
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format=pix_fmt,
        dst_colorspace=matrix,
        dst_color_range=2 if full else 1,
        interpolation=_accurate_flags(),
    )
    return _tagged(frame, colour)


def _tagged(frame, colour: dict[str, int]):
    """The frame with the colour tags (some encoders, prores_ks among them, take them from frames)."""
    frame.colorspace, frame.color_primaries = colour["colorspace"], colour["color_primaries"]
    frame.color_trc, frame.color_range = colour["color_trc"], colour["color_range"] or 1
    return frame


def _onto_source(rgb: np.ndarray, source_frame, pix_fmt: str, colour: dict[str, int]):
    """A re-rendered frame as a change to the source frame's own samples: source + (YUV(rgb) - YUV(source rgb)).

    Converting the whole RGB frame back to 4:2:0 does not give the source's chroma back (its upsampling is not
    undone by any downsampling), which costs textured footage ~34 dB PSNR even where nothing changed. As a change,
    pixels the render left alone keep the source's samples exactly and only the change goes through RGB."""
    av = _av()
    if source_frame.format.name != pix_fmt:
        return _to_video_frame(rgb, pix_fmt, colour)
    src_rgb = _frame_to_rgb(source_frame, _accurate_flags(reading=True))
    base = source_frame.to_ndarray()
    delta = _to_video_frame(rgb, pix_fmt, colour).to_ndarray().astype(np.int32)
    delta -= _to_video_frame(src_rgb, pix_fmt, colour).to_ndarray()
    top = (1 << max(c.bits for c in av.VideoFormat(pix_fmt).components)) - 1
    return _tagged(av.VideoFrame.from_ndarray(np.clip(base + delta, 0, top).astype(base.dtype), format=pix_fmt), colour)


def _set_colour(ctx, colour: dict[str, int]) -> None:
    ctx.colorspace = colour["colorspace"]
    ctx.color_primaries = colour["color_primaries"]
    ctx.color_trc = colour["color_trc"]
    ctx.color_range = colour["color_range"] or 1


def _supported_pix_fmt(encoder: str, pix_fmt: str) -> bool:
    av = _av()
    formats = av.codec.Codec(encoder, "w").video_formats or ()
    return any(f.name == pix_fmt for f in formats)


def _segment_encoder(source: _Source, crf: int, gop: int):
    av = _av()
    src = source.stream.codec_context
    encoder = _SMART_CODECS[source.codec]
    ctx = av.CodecContext.create(encoder, "w")
    ctx.width, ctx.height, ctx.pix_fmt = src.width, src.height, src.pix_fmt
    ctx.time_base = source.time_base
    ctx.framerate = Fraction(1, 1) / (source.time_base * source.frame_dur)
    ctx.gop_size = gop
    _set_colour(ctx, _colour(src))
    options = {"crf": str(int(crf)), "preset": "medium"}
    profile = (src.profile or "").lower().replace(" ", "")
    known = {"baseline", "main", "high", "high10", "high422", "high444", "main10", "main12", "main444-8"}
    if encoder == "libx264" and profile.replace("constrained", "") in known:
        options["profile"] = profile.replace("constrained", "")
    if encoder == "libx265":  # psycho-visual tuning trades fidelity for look; here fidelity is the point
        del options["crf"]  # x265's CRF stays visibly lossy even at 0; a constant QP does not
        options["x265-params"] = f"log-level=error:psy-rd=0:psy-rdoq=0:aq-mode=0:qp={int(crf)}:bframes=0"
        if profile in ("main", "main10", "main12"):
            options["profile"] = profile
    ctx.options = options
    return ctx


# ---------------------------------------------------------------- audio


def _audio_wave(audio: Any, sample_rate: int | None) -> tuple[np.ndarray, int]:
    """``audio`` as float32 ``[C, S]`` (``[S]`` and ``[1, C, S]`` accepted) and its rate, or a clear error."""
    if sample_rate is None or int(sample_rate) <= 0:
        raise ValueError(f"sample_rate: a positive rate is required with audio, got {sample_rate}")
    wave = audio.detach().cpu().numpy() if hasattr(audio, "detach") else np.asarray(audio)
    if not np.issubdtype(wave.dtype, np.number):
        raise ValueError(f"audio: expected a numeric array, got dtype {wave.dtype}")
    wave = wave.astype(np.float32, copy=False)
    if wave.ndim == 3 and wave.shape[0] == 1:
        wave = wave[0]
    if wave.ndim == 1:
        wave = wave[None]
    if wave.ndim != 2 or not 1 <= wave.shape[0] <= 8:
        raise ValueError(f"audio: expected [C, S] with 1..8 channels, got shape {tuple(wave.shape)}")
    if not np.isfinite(wave).all():
        raise ValueError("audio: contains NaN or infinite values")
    return np.ascontiguousarray(wave), int(sample_rate)


def _prepare_audio(audio: Any, sample_rate: int | None, target_frames: int, fps: Fraction):
    """The checked audio cut or padded with silence to the video's length, so both end together."""
    if audio is None:
        return None
    wave, rate = _audio_wave(audio, sample_rate)
    want = round(Fraction(target_frames) / fps * rate)
    if wave.shape[1] >= want:
        wave = wave[:, :want]
    else:
        wave = np.concatenate([wave, np.zeros((wave.shape[0], want - wave.shape[1]), np.float32)], axis=1)
    return np.ascontiguousarray(wave), rate


def nearest_aac_rate(rate: int) -> int:
    return min(AAC_SAMPLE_RATES, key=lambda r: (abs(r - rate), -r))


class _AudioWriter:
    """Encodes the edited speech next to the video, interleaved by time."""

    def __init__(self, container, ext: str, wave: np.ndarray, rate: int,
                 copy_from: tuple[SourceAudio, Any] | None = None, shifts: Iterable[int] = (0,)):  # fmt: skip
        """``copy_from``: the source's AAC track and its stream, whose packets are copied where the wave is its
        sound (`facedit.video.audio_copy`; only ahead, see `start_ahead`); ``shifts``: the offsets to try."""
        av = _av()
        self.container, self.wave, self.rate = container, wave, rate
        channels = wave.shape[0]
        self.layout = _LAYOUTS[channels]
        self.copy_from, self.shifts = copy_from, tuple(shifts)
        self.copied, self.packets = 0, 0
        if ext in _PCM_CONTAINERS:
            self.codec, self.out_rate = "pcm_s16le", rate
        else:
            self.codec, self.out_rate = "aac", nearest_aac_rate(rate)
        if copy_from is not None:
            self.stream = container.add_stream_from_template(copy_from[1])
            self.stream.time_base = Fraction(1, rate)
        else:
            self.stream = container.add_stream(self.codec, rate=self.out_rate)
            self.stream.layout = self.layout
        self.resampler = av.AudioResampler(format="fltp", layout=self.layout, rate=self.out_rate)
        self.pos = 0
        self.messages = []
        self._thread: threading.Thread | None = None  # the ahead encoding (start_ahead), its packets, how many muxed
        self._ahead: list[Any] = []
        self._muxed = 0
        self._times: list[float] | None = None  # each ahead packet's start (s), once they are all there
        self._failed: BaseException | None = None
        self._stop = threading.Event()
        if self.out_rate != rate:
            self.messages.append(f"audio resampled from {rate} Hz to {self.out_rate} Hz for {self.codec}")

    def _mux(self, frames) -> None:
        for frame in frames:
            self.container.encode(self.stream, frame)

    def _frames(self, stop: int) -> Iterator[Any]:
        """The resampled frames of the wave up to sample ``stop``, from where the last call ended."""
        av = _av()
        while self.pos < stop:
            end = min(self.pos + 1024, stop)
            chunk = np.ascontiguousarray(self.wave[:, self.pos : end])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=self.layout)
            frame.sample_rate = self.rate
            frame.pts = self.pos
            frame.time_base = Fraction(1, self.rate)
            yield from self.resampler.resample(frame)
            self.pos = end

    def start_ahead(self) -> None:
        """Encode the whole track now, in a thread (PyAV lets go of the GIL while it encodes), so that it runs
        beside the video's decoding, rendering and encoding; `write_until` then muxes its packets."""

        def run() -> None:
            try:
                if self.copy_from is not None:
                    packets, self.copied = joined_audio_packets(self.copy_from[0], self.wave, self.shifts, self._stop)
                    for packet in packets:
                        packet.stream = self.stream
                    self._ahead, self.packets = packets, len(packets)
                    return
                for frame in self._frames(self.wave.shape[1]):
                    if self._stop.is_set():
                        return
                    self._ahead.extend(self.container._call(self.stream.encode, frame))
                for frame in [*self.resampler.resample(None), None]:
                    self._ahead.extend(self.container._call(self.stream.encode, frame))
            except BaseException as err:  # re-raised in the writing thread
                self._failed = err

        self._thread = threading.Thread(target=run, name="facedit-audio", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Let an ahead encoding end (after an error elsewhere) and wait for it."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()

    def join(self) -> None:
        """Wait for an ahead encoding, and raise its error. Call it before the first mux: writing the header reads
        the audio encoder's settings."""
        if self._thread is not None:
            self._thread.join()
            if self._failed is not None:
                raise self._failed

    def _mux_ahead(self, seconds: float | None) -> None:
        """Mux the ahead packets that start before ``seconds`` (None: all), in one call (a long clip has
        thousands, and this runs after every video packet)."""
        self.join()
        if self._times is None:
            self._times = [p.pts * float(p.time_base) for p in self._ahead]
        n = self._muxed
        m = len(self._ahead) if seconds is None else bisect.bisect_left(self._times, seconds, lo=n)
        if m > n:
            self.container.mux(self._ahead[n:m])
            self._muxed = m

    def write_until(self, seconds: float) -> None:
        if self._thread is None and self.copy_from is not None:
            self.start_ahead()
        if self._thread is not None:
            return self._mux_ahead(seconds)
        self._mux(self._frames(min(self.wave.shape[1], math.ceil(seconds * self.rate))))

    def finish(self) -> None:
        if self._thread is None and self.copy_from is not None:
            self.start_ahead()
        if self._thread is not None:
            return self._mux_ahead(None)
        self.write_until(self.wave.shape[1] / self.rate)
        self._mux(self.resampler.resample(None))
        self.container.encode(self.stream, None)


# ---------------------------------------------------------------- writers


def _progress_iter(
    frames: Iterable[Any], total: int | None, progress: Callable[[int, int], None] | None
) -> Iterator[Any]:
    for count, frame in enumerate(frames, 1):
        if total is not None and count > total:
            raise ValueError(f"frames: got more than the plan's {total} target frames")
        yield frame
        if progress is not None:
            progress(count, total)


def _joined_packets(src_container, source: _Source, plan: EditPlan, frames, output, progress):
    """The smart render's video: the re-encoded segments encoded, joined with the copied GOPs' packets in target
    order. Returns (notes, covered target frames, re-encoded segments, [(pts frame, data, key, kind)] in decode
    order, the decode delay in frames)."""
    av = _av()
    notes = _choose_copies(source, plan)
    if source.hidden:
        notes.append(f"the source's edit list hides {source.hidden} of its frames; the GOPs that hold them are "
                     "re-encoded without them")  # fmt: skip
    covered = np.zeros(plan.target_frames, dtype=bool)
    for gop in source.gops:
        if gop.shift is not None:
            covered[[j + gop.shift for j, _ in gop.copied]] = True
    segments = _runs(~covered)
    gop_len = max(len(g.packets) for g in source.gops)
    src_ctx = source.stream.codec_context
    colour = _colour(src_ctx)
    length_size = source.param_sets[0] if source.param_sets else None

    encoded: dict[int, list[tuple[int, bytes, bool]]] = {}  # segment start -> (pts frame, data, key)
    seg_of = np.full(plan.target_frames, -1, dtype=np.int64)
    for s, e in segments:
        seg_of[s:e] = s
    encoder = None
    count = 0
    st = plan.source_time
    unchanged = (~plan.infill_mask) & (st == np.round(st))
    decoded = _SourceFrames(src_container.name)

    def drain(packets, start):
        for p in packets:
            data = bytes(p)
            if length_size is not None:
                data = annexb_to_length_prefixed(data, length_size)
            encoded[start].append((int(p.pts) // source.frame_dur, data, bool(p.is_keyframe)))

    if _indexable(frames):  # only the frames of re-encoded GOPs are ever read
        if len(frames) != plan.target_frames:
            raise ValueError(f"frames: got {len(frames)} frames, the plan has {plan.target_frames} target frames")
        wanted = np.flatnonzero(seg_of >= 0)
        pairs = ((int(k), frames[int(k)]) for k in wanted)
        pairs = _progress_iter(pairs, len(wanted), progress)  # counts the frames the re-encoded GOPs need
        count = plan.target_frames
    else:
        pairs = enumerate(_progress_iter(_iter_input_frames(frames), plan.target_frames, progress))
    for k, frame in pairs:
        count = max(count, k + 1)
        start = int(seg_of[k])
        if start < 0:
            continue
        if start == k:
            encoder = _segment_encoder(source, output.reencode_crf, gop_len)
            encoded[start] = []
        if unchanged[k]:  # the source's own pixels, not a round trip through RGB
            vframe = decoded.get(int(st[k]))
            vframe.pict_type = av.video.frame.PictureType.NONE
        else:
            rgb = _frame_to_uint8(frame, k, (src_ctx.height, src_ctx.width))
            vframe = _onto_source(rgb, decoded.get(int(round(st[k]))), src_ctx.pix_fmt, colour)
        vframe.pts = k * source.frame_dur
        vframe.time_base = source.time_base
        drain(encoder.encode(vframe), start)
        if k + 1 == plan.target_frames or seg_of[k + 1] != start:
            drain(encoder.encode(None), start)
            encoder = None
    decoded.close()
    if count != plan.target_frames:
        raise ValueError(f"frames: got {count} frames, the plan has {plan.target_frames} target frames")

    # Blocks in target order: copied runs of GOPs and re-encoded segments, each a list of packets in decode order.
    blocks: list[tuple[int, str, list]] = []
    run: list[_Gop] = []
    for gop in source.gops + [_Gop([(-1, None)], -1)]:
        if run and (gop.shift is None or gop.shift != run[-1].shift or gop.key_index < 0 or gop.drop_leading):
            items = [(j + r.shift, p) for r in run for j, p in r.copied]
            blocks.append((min(t for t, _ in items), "copy", items))
            run = []
        if gop.shift is not None and gop.key_index >= 0:
            run.append(gop)
    for s, packets in encoded.items():
        blocks.append((s, "encode", packets))
    blocks.sort(key=lambda b: b[0])

    # (target frame, encoded bytes or (bytes put before it, the source packet to copy), key, kind), in decode order
    order: list[tuple[int, Any, bool, str]] = []
    after_encode = False
    for _, kind, items in blocks:
        if kind == "copy":
            for n, (t, p) in enumerate(items):
                first = b""
                if n == 0 and after_encode and source.param_sets is not None:
                    size = source.param_sets[0]
                    first = b"".join(len(u).to_bytes(size, "big") + u for u in source.param_sets[1])
                order.append((t, (first, p), p.is_keyframe, "copy"))
            after_encode = False
        else:
            order.extend((t, d, key, "encode") for t, d, key in items)
            if source.codec == "hevc":  # the next copied CRA then starts a sequence of its own (POC, no RASL)
                eos = HEVC_END_OF_SEQUENCE
                eos = len(eos).to_bytes(length_size, "big") + eos if length_size else b"\x00\x00\x00\x01" + eos
                t, d, key, kind = order[-1]  # a segment encodes every frame it holds: the last item is encoded bytes
                order[-1] = (t, d + eos, key, kind)
            after_encode = True
    if sorted(t for t, *_ in order) != list(range(plan.target_frames)):
        raise RuntimeError("smart render: the joined packets do not cover every target frame once")
    delay = max(0, max(n - t for n, (t, *_) in enumerate(order)))
    return notes, covered, segments, order, delay


def _smart_audio(out: _Output, ext: str, src_container, plan: EditPlan, audio) -> _AudioWriter:
    """The writer of a smart render's audio: the source's AAC packets copied where the edited speech is their
    sound, at the offsets of the video's copies (and 0), when the source's track is what would be written."""
    wave, rate = audio
    found, why = source_audio(src_container, src_container.name, ext, rate, _LAYOUTS[wave.shape[0]])
    if found is None:
        log.debug("audio encoded, not copied: %s", why)
        return _AudioWriter(out, ext, wave, rate)
    per_frame = Fraction(rate) / fps_to_fraction(plan.fps)
    st = plan.source_time
    whole = np.flatnonzero(~plan.infill_mask & (st == np.round(st)))
    frame_shifts = np.unique(whole - st[whole].astype(np.int64)).tolist()
    shifts = {0} | {int(d * per_frame) for d in frame_shifts if (d * per_frame).denominator == 1}
    return _AudioWriter(out, ext, wave, rate, copy_from=(found, src_container.streams.audio[0]), shifts=shifts)


def _smart(tmp: str, ext: str, src_container, source: _Source, plan: EditPlan, frames, audio, output, progress):
    av = _av()
    with _Output(tmp) as out:
        vstream = out.add_stream_from_template(source.stream)
        vstream.time_base = source.time_base
        writer = _smart_audio(out, ext, src_container, plan, audio) if audio is not None else None
        if writer is not None:
            writer.start_ahead()
        copies = _PacketData(src_container.name)
        try:
            notes, covered, segments, order, delay = _joined_packets(src_container, source, plan, frames, output,
                                                                     progress)  # fmt: skip
            if writer is not None:
                writer.join()
            seconds_per_frame = float(source.time_base * source.frame_dur)
            for n, (t, data, key, kind) in enumerate(order):
                if kind == "copy":
                    before, copied = data
                    data = before + copies.get(copied)
                packet = av.Packet(data)
                packet.stream = vstream
                packet.time_base = source.time_base
                packet.pts = t * source.frame_dur
                packet.dts = (n - delay) * source.frame_dur
                packet.duration = source.frame_dur
                packet.is_keyframe = key
                out.mux(packet)
                if writer is not None:
                    writer.write_until((n - delay + 1) * seconds_per_frame)
            if writer is not None:
                writer.finish()
        finally:
            copies.close()
            if writer is not None:
                writer.stop()
    copied = [g for g in source.gops if g.shift is not None]
    return WriteReport(
        path="",
        mode="smart",
        video_codec=source.codec,
        copied_gops=len(copied),
        reencoded_gops=len(source.gops) - len(copied),
        copied_frames=int(covered.sum()),
        reencoded_spans=tuple(segments),
        audio_codec=writer.codec if writer else None,
        audio_rate=writer.out_rate if writer else None,
        copied_audio_packets=writer.copied if writer else 0,
        audio_packets=writer.packets if writer else 0,
        messages=tuple(notes) + (tuple(writer.messages) if writer else ()),
    )


def _full_settings(kind: str, ext: str, output: OutputFormat, src_ctx, size: tuple[int, int]):
    """(encoder, pix_fmt, options) of a full re-encode."""
    width, height = size
    odd = width % 2 or height % 2
    if kind == "same":
        encoder = _SMART_CODECS.get(src_ctx.name if src_ctx is not None else "", "libx264")
        pix_fmt = output.pix_fmt or (src_ctx.pix_fmt if src_ctx is not None else None)
        if pix_fmt is None or not _supported_pix_fmt(encoder, pix_fmt) or (odd and pix_fmt.endswith(("420p", "422p"))):
            pix_fmt = "yuv444p" if odd else "yuv420p"
        options = {"crf": str(output.crf), "preset": output.preset}
    elif kind == "lossless":
        if ext == ".mkv":
            encoder, pix_fmt, options = "ffv1", output.pix_fmt or "yuv444p", {"level": "3", "slicecrc": "1"}
        else:
            encoder, pix_fmt, options = "libx264", output.pix_fmt or "yuv444p", {"qp": "0", "preset": output.preset}
    elif kind in ("prores_hq", "prores_4444"):
        if ext != ".mov":
            raise ValueError(f"out: ProRes is written to .mov, got {ext!r}")
        encoder = "prores_ks"
        pix_fmt = output.pix_fmt or ("yuv422p10le" if kind == "prores_hq" else "yuv444p10le")
        options = {"profile": "3" if kind == "prores_hq" else "4"}
    else:
        encoder = "libx264" if kind == "h264" else "libx265"
        pix_fmt = output.pix_fmt or ("yuv444p" if odd else "yuv420p")
        options = {"crf": str(output.crf), "preset": output.preset}
        if encoder == "libx265":
            options["x265-params"] = "log-level=error"
    if output.keyframe_interval is not None and encoder in ("libx264", "libx265"):
        options["g"] = str(output.keyframe_interval)
    if not _supported_pix_fmt(encoder, pix_fmt):
        raise ValueError(f"pix_fmt: {encoder} cannot write {pix_fmt!r}")
    if odd and pix_fmt.endswith(("420p", "422p", "420p10le", "422p10le")):
        raise ValueError(f"pix_fmt: {pix_fmt} needs an even width and height, the frames are {width}x{height}; "
                         "choose a 4:4:4 pixel format such as yuv444p, or leave pix_fmt unset")  # fmt: skip
    return encoder, pix_fmt, options


def _full(tmp: str, ext: str, src_ctx, colour, fps: Fraction, total: int | None, frames, audio, output: OutputFormat,
          progress):  # fmt: skip
    """Encode every frame; ``total``: the frame count the plan expects (None: any)."""
    frame_iter = _iter_input_frames(_progress_iter(_iter_input_frames(frames), total, progress))
    try:
        first = _frame_to_uint8(next(frame_iter), 0, None)
    except StopIteration:
        raise ValueError("frames: expected at least one frame, got none") from None
    height, width = first.shape[:2]
    encoder, pix_fmt, options = _full_settings(output.kind, ext, output, src_ctx, (width, height))
    notes = []
    if encoder == "prores_ks" and colour["color_range"] == 2:  # ProRes has no range flag: always video range
        colour = {**colour, "color_range": 1}
        notes.append("ProRes is video (limited) range: the full-range source is written in limited range")
    with _Output(tmp) as out:
        vstream = out.add_stream(encoder, rate=fps)
        vstream.width, vstream.height, vstream.pix_fmt = width, height, pix_fmt
        vstream.options = options
        _set_colour(vstream.codec_context, colour)
        writer = _AudioWriter(out, ext, *audio) if audio is not None else None
        count, frame = 0, first
        while True:
            vframe = _to_video_frame(frame, pix_fmt, colour)
            vframe.pts, vframe.time_base = count, 1 / fps
            out.encode(vstream, vframe)
            count += 1
            if writer is not None:
                writer.write_until(float(count / fps))
            try:
                frame = _frame_to_uint8(next(frame_iter), count, (height, width))
            except StopIteration:
                break
        if total is not None and count != total:
            raise ValueError(f"frames: got {count} frames, the plan has {total} target frames")
        out.encode(vstream, None)
        if writer is not None:
            writer.finish()
    return WriteReport(
        path="",
        mode="full",
        video_codec=encoder,
        reencoded_spans=((0, count),),
        audio_codec=writer.codec if writer else None,
        audio_rate=writer.out_rate if writer else None,
        messages=tuple(notes) + (tuple(writer.messages) if writer else ()),
    )


def _container(out: str) -> str:
    ext = os.path.splitext(out)[1].lower()
    if ext not in _CONTAINERS:
        raise ValueError(f"out: expected a .mp4, .mov, .m4v or .mkv file, got {out!r}")
    return ext


def _open_source(source: str | os.PathLike):
    av = _av()
    if not os.path.isfile(source):
        raise ValueError(f"source: the video {os.fspath(source)} does not exist")
    try:
        return av.open(os.fspath(source))
    except av.error.FFmpegError as exc:
        raise ValueError(f"source: {os.fspath(source)} is not a readable video file ({exc})") from exc


def write_frames(
    out: str | os.PathLike,
    frames: Iterable[Any] | np.ndarray,
    fps: float | Fraction | str,
    audio: Any = None,
    sample_rate: int | None = None,
    output: OutputFormat = OutputFormat(kind="h264"),
    progress: Callable[[int, int], None] | None = None,
    inputs: Iterable[str | os.PathLike | None] = (),
) -> WriteReport:
    """Encode ``frames`` into a new file at ``out`` with no source to copy from (every frame is encoded).

    Like :func:`write_edited_video`: the file appears only when complete (an error, Ctrl-C or SIGTERM leaves a
    previous ``out`` as it was and no partial file), odd sizes get a 4:4:4 pixel format unless ``output.pix_fmt``
    says otherwise, and audio of any rate is written (PCM at its own rate in .mov / .mkv, AAC at the nearest AAC
    rate in .mp4). The audio is written in full, not cut to the video. ``inputs``: files that ``out`` must not be
    (a lazily read frame source with a ``path`` is one already). ``progress(count, None)`` after each frame.
    """
    out = check_output_path(out, *inputs, getattr(frames, "path", None))
    ext = _container(out)
    rate = fps_to_fraction(fps)
    wave = None if audio is None else _audio_wave(audio, sample_rate)
    with atomic_output(out) as tmp:
        report = _full(tmp, ext, None, _BT709, rate, None, frames, wave, output, progress)
    report = replace(report, path=out)
    for message in report.messages:
        log.info("%s: %s", out, message)
    return report


def check_plan_source(plan: EditPlan, source: str | os.PathLike, source_fps: float | Fraction | str | None = None,
                      name: str = "source") -> VideoInfo:  # fmt: skip
    """Refuse a plan made for another clip: its fps and frame count must be those ``source`` is read at
    (``source_fps``: the rate it was read at when one was asked for)."""
    info = probe_video(source, source_fps)
    if abs(float(plan.fps) - float(info.fps)) <= 1e-3 and plan.source_frames == info.frame_count:
        return info
    if info.retimed and plan.source_frames == info.stored_frames:
        raise ValueError(
            f"plan: made for the {info.stored_frames} stored frames of {name} {source} as if they were evenly spaced "
            f"at {plan.fps:g} fps, but that file has a variable frame rate, so the edit would land at the wrong "
            f"times. facedit reads it at {info.fps} fps by its timestamps ({info.frame_count} frames; the CLI does "
            "this); or convert it to a constant rate first (ffmpeg -i IN -fps_mode cfr -r 25 OUT) and load that"
        )
    raise ValueError(
        f"plan: made for {plan.source_frames} frames at {plan.fps:g} fps, but {name} {source} has "
        f"{info.frame_count} frames at {float(info.fps):g} fps ({info.fps}): build the plan for this video, at its "
        "own frame rate"
    )


def write_edited_video(
    out: str | os.PathLike,
    source: str | os.PathLike | None,
    plan: EditPlan,
    frames: Iterable[Any] | np.ndarray,
    audio: Any = None,
    sample_rate: int | None = None,
    output: OutputFormat = OutputFormat(),
    progress: Callable[[int, int], None] | None = None,
    source_fps: float | Fraction | str | None = None,
) -> WriteReport:
    """Write the edited clip to ``out`` (the extension picks the container) and say how it was written.

    ``source``: the video the plan was built for (None: there is none to copy from, e.g. generation); a plan made
    at another fps or frame count is refused (:func:`check_plan_source`; ``source_fps``: the rate the frames
    were read at, when one was asked for). A variable-frame-rate source is re-encoded whole, never copied.
    ``frames``: the plan's ``target_frames`` RGB frames in order (array ``[T, H, W, 3]``, any iterable, or a lazy
    sequence with ``len`` and indexing, of which smart render reads only the re-encoded frames;
    float 0..1 or uint8); with ``kind="same"`` only those in re-encoded GOPs are used, the rest come from the
    source's packets. ``audio``: ``[C, S]`` float (or None) at ``sample_rate``; it is cut or padded to the
    video's length so both start and end together. The file appears at ``out`` only when complete.
    """
    out = check_output_path(out, source, getattr(frames, "path", None))
    ext = _container(out)
    if source is not None:
        _open_source(source).close()
    fps = fps_to_fraction(plan.fps)
    messages: list[str] = []
    if source is not None:
        info = check_plan_source(plan, source, source_fps)
        if info.variable_frame_rate:
            messages.append(
                f"{source} has a variable frame rate: the plan and the frames must come from a reader that follows its "
                f"timestamps ({info.fps} fps, {info.frame_count} frames, as facedit reads it); a loader that takes "
                "its stored frames one by one puts the edit at the wrong times"
            )
    prepared = _prepare_audio(audio, sample_rate, plan.target_frames, fps)
    with atomic_output(out) as tmp:
        report = None
        src_ctx, colour = None, _BT709
        if source is not None:
            with _open_source(source) as container:
                if not container.streams.video:
                    raise ValueError(f"source: {source} has no video stream")
                src_ctx = container.streams.video[0].codec_context
                if int(src_ctx.colorspace or 2) != 2:
                    colour = _colour(src_ctx)
                if output.kind == "same":
                    analysed, why = _analyse(container, plan)
                    if analysed is not None and ext not in _SMART_CONTAINERS:
                        analysed, why = None, f"{ext} cannot hold the copied {analysed.codec} packets"
                    if analysed is not None and not _supported_pix_fmt(_SMART_CODECS[analysed.codec], src_ctx.pix_fmt):
                        analysed, why = None, f"the encoder here cannot write the source's {src_ctx.pix_fmt}"
                    if analysed is not None:
                        report = _smart(tmp, ext, container, analysed, plan, frames, prepared, output, progress)
                    else:
                        messages.append(f"smart render not possible, re-encoding the whole clip: {why}")
        if report is None:
            report = _full(tmp, ext, src_ctx, colour, fps, plan.target_frames, frames, prepared, output, progress)
    report = replace(report, path=out, messages=tuple(messages) + report.messages)
    for message in report.messages:
        log.warning(message)
    log.info("%s: %s", out, report.summary())
    return report

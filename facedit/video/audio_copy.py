"""The edited speech's AAC track for a smart render: the source's own packets wherever the speech is its sound.

A speech edit (:func:`facedit.tts.edit.edit_speech`) keeps the original samples outside the words it changes, and
the original is usually the video's own track, decoded. Encoding that speech again costs seconds of CPU for a long
clip (about 110x real time for 16 kHz mono here) and a second generation of coding loss; decoding the source's
track to compare costs a tenth of that, and the stretches that match are copied packet for packet.

An AAC packet at sample position ``q`` holds one transform over ``[q, q + 2N)`` (``N`` = 1024 samples) and decodes
to ``[q, q + N)`` by overlap-adding it with the packet before. A source packet is copied to target position ``t``
when the edited speech equals the decoded source over ``[t - N, t + 2N)`` (``q = t - shift``; the shift of the
copies after a length-changing edit must be a whole number of packets). The packets between copied runs are
encoded afresh on the same grid from the edited speech, starting two packets early so the encoder has settled;
those it makes outside the run are dropped. At a join the two overlapping transforms are two encodings of one
signal, so a join costs at most the coding noise of one packet, and every packet further from a join decodes
exactly as in the source.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = ["MATCH_TOLERANCE", "SourceAudio", "joined_audio_packets", "source_audio"]

MATCH_TOLERANCE = 2.0 / 32768
"""The edited speech 'is' the source's sound where it is this close to the decoded track: a 16-bit wav of it
reads back within 1.5 steps of 2**-15 (libsndfile writes with 32767 and reads with 32768)."""
_COPY_CONTAINERS = (".mp4", ".m4v")  # where the edited speech is written as AAC anyway (.mov / .mkv get PCM)


def _av():
    import av

    return av


@dataclass(frozen=True)
class SourceAudio:
    """The source's AAC track, of the kind the edited speech is encoded to: same rate, channels and config."""

    path: str
    index: int
    rate: int
    layout: str
    frame_size: int
    origin: Fraction
    """The source video's first timestamp (s): target sample 0."""


def _encoder(rate: int, layout: str):
    av = _av()
    ctx = av.CodecContext.create("aac", "w")
    ctx.sample_rate, ctx.layout, ctx.format = rate, layout, "fltp"
    ctx.time_base = Fraction(1, rate)
    ctx.open()
    return ctx


def source_audio(container, path: str, ext: str, rate: int, layout: str) -> tuple[SourceAudio | None, str]:
    """The source's first audio track if its packets can stand in for the edited speech's (mono or ``layout``
    audio at ``rate`` written as AAC into ``ext``), else None and why not. Reads no packet."""
    if ext not in _COPY_CONTAINERS:
        return None, f"{ext} gets PCM audio"
    if not container.streams.audio:
        return None, "the source has no audio track"
    stream = container.streams.audio[0]
    ctx = stream.codec_context
    if ctx.name != "aac" or (ctx.profile or "") != "LC":
        return None, f"the source's audio is {ctx.name} {ctx.profile or ''}, not AAC LC".replace("  ", " ")
    if int(ctx.sample_rate) != rate or ctx.layout.name != layout:
        return None, (f"the source's audio is {ctx.layout.name} at {ctx.sample_rate} Hz, the speech {layout} at "
                      f"{rate} Hz")  # fmt: skip
    encoder = _encoder(rate, layout)
    if bytes(ctx.extradata or b"") != bytes(encoder.extradata or b"") or encoder.frame_size != 1024:
        return None, "the source's AAC configuration differs from the encoder's here"
    video = container.streams.video[0]
    origin = Fraction(video.start_time or 0) * Fraction(video.time_base) if video.time_base else Fraction(0)
    return SourceAudio(path, stream.index, rate, layout, encoder.frame_size, origin), ""


def _source_packets(
    source: SourceAudio, wave: np.ndarray, shifts: list[int], stop: threading.Event | None
) -> tuple[dict[int, Any], dict[int, np.ndarray]]:
    """Source packets by target position (shift 0), and for each shift, per packet-sized block of ``wave``: is it
    the decoded source that much earlier. Nothing (``{}, {}``) when the packets are not on one grid of whole
    packets from target sample 0. The track is compared as it is decoded, never held."""
    av = _av()
    n, total = source.frame_size, wave.shape[1]
    packets: dict[int, Any] = {}
    with av.open(source.path) as container:
        stream = container.streams.audio[0]
        tb = Fraction(stream.time_base)
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if packet.pts is None:
                return {}, {}
            position = (packet.pts * tb - source.origin) * source.rate
            if position.denominator != 1 or int(position) % n or int(position) in packets:
                return {}, {}
            packets[int(position)] = packet
        blocks = -(-total // n)
        same = {shift: np.zeros(blocks, bool) for shift in shifts}
        decoder = stream.codec_context
        for position in sorted(packets):
            if stop is not None and stop.is_set():
                return {}, {}
            try:
                frames = decoder.decode(packets[position])
            except av.error.FFmpegError:
                continue  # a damaged packet is never copied: its block stays unmatched
            for frame in frames:
                at = (Fraction(frame.pts or 0) * Fraction(frame.time_base) - source.origin) * source.rate
                if frame.pts is None or at.denominator != 1 or int(at) % n:
                    continue
                samples = frame.to_ndarray().reshape(wave.shape[0], -1)
                for shift in shifts:
                    t = int(at) + shift
                    size = min(n, total - t)
                    if t >= 0 and 0 < size <= samples.shape[1]:
                        diff = np.abs(wave[:, t : t + size] - samples[:, :size]).max()
                        same[shift][t // n] = diff <= MATCH_TOLERANCE
    return packets, same


def _encoded_run(
    source: SourceAudio, wave: np.ndarray, first: int, stop: int | None, cancel: threading.Event | None = None
) -> list[Any]:
    """Packets at grid positions ``[first, stop)`` (None: to the end of the track, its last partial packet
    included) encoded from ``wave``, fed from two packets before ``first`` and two after ``stop``; nothing once
    ``cancel`` is set."""
    av = _av()
    n, total = source.frame_size, wave.shape[1]
    encoder = _encoder(source.rate, source.layout)
    start = max(0, first - 2 * n)
    end = total if stop is None else min(total, stop + 2 * n)
    out = []
    for x in range(start, end, n):
        if cancel is not None and cancel.is_set():
            return []
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[:, x : min(x + n, end)]), format="fltp",
                                           layout=source.layout)  # fmt: skip
        frame.sample_rate, frame.pts, frame.time_base = source.rate, x, Fraction(1, source.rate)
        out.extend(encoder.encode(frame))
    out.extend(encoder.encode(None))
    return [p for p in out if p.pts >= first and (stop is None or p.pts < stop)]


def joined_audio_packets(
    source: SourceAudio, wave: np.ndarray, shifts: Iterable[int] = (0,), stop: threading.Event | None = None
) -> tuple[list[Any], int]:
    """The AAC packets of the whole edited speech ``wave`` ([C, S] float32 at the source's rate, target sample 0 at
    the source's first video frame), in order, with pts in samples; and how many are copies of source packets.

    ``shifts``: target minus source sample positions worth trying for copies (the video copies' offsets); those
    that are not whole packets are skipped."""
    av = _av()
    n, total = source.frame_size, wave.shape[1]
    shifts = sorted({int(s) for s in shifts if int(s) % n == 0})
    packets, same = _source_packets(source, wave, shifts, stop)
    copies: dict[int, Any] = {}  # target position -> source packet
    if same:
        for shift in shifts:
            ok = np.concatenate([[True], same[shift], [True]])  # (beyond the track nothing is heard)
            for m in range(total // n):
                t = m * n
                source_packet = packets.get(t - shift)
                if t in copies or source_packet is None or source_packet.duration not in (None, n):
                    continue
                if ok[m] and ok[m + 1] and ok[m + 2]:  # blocks m - 1, m, m + 1: the samples [t - N, t + 2N)
                    copies[t] = source_packet
        priming = sorted(p for p in packets if p < 0)
        if 0 in copies and copies[0] is packets.get(0) and priming == list(range(-n * len(priming), 0, n)) and priming:
            copies.update({p: packets[p] for p in priming})
        else:
            copies.pop(0, None)  # packet 0 overlaps the priming before it: copied only with the source's priming
    positions = sorted(copies)
    out: list[Any] = []
    t = positions[0] if 0 in copies else -n  # else the track starts with the encoder's own priming packet
    while t < total:
        if stop is not None and stop.is_set():
            return [], 0
        if t in copies:
            packet = av.Packet(bytes(copies[t]))
            packet.pts = packet.dts = t
            packet.duration = n
            packet.time_base = Fraction(1, source.rate)
            out.append(packet)
            t += n
            continue
        at = bisect.bisect_right(positions, t)
        following = positions[at] if at < len(positions) else None
        out.extend(_encoded_run(source, wave, t, following, stop))
        if following is None:
            break
        t = following
    if stop is not None and stop.is_set():
        return [], 0
    return out, len(copies)

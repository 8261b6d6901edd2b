"""Reading and writing video files (frames, exact fps, audio) with PyAV.

Conventions:
- Frames are RGB ``[T, H, W, 3]`` float32 in 0..1 (ComfyUI IMAGE layout); uint8 is accepted on write.
- Frame ``i`` is the ``i``-th frame in presentation order and stands at time ``i / fps`` seconds, where
  time 0 is the first video frame's timestamp.
- fps is a :class:`fractions.Fraction`, so NTSC rates stay exact (29.97 is ``30000/1001``).
- Audio is float32 ``[C, S]`` in -1..1 with its sample rate; sample 0 sits at video time 0. Encoder
  priming is removed on read and trailing encoder padding is trimmed to the stream's packet durations,
  so a written waveform reads back with the same length.

Variable-frame-rate files (phones, screen recorders, dropped frames) are read by their frames' presentation
times at a constant rate: the rate they mostly run at, snapped to a standard one (or the ``fps`` asked for),
repeating or dropping stored frames as ffmpeg's ``fps`` filter does (see :mod:`facedit.video.timing`), with a
warning; the :class:`VideoInfo` says so (``retimed``). Constant-rate files (what cameras, ffmpeg and
:func:`write_video` produce) are read frame by frame, exactly.

Long videos: :func:`iter_frames` decodes one frame at a time and :func:`read_video` can read a frame
range, so nothing larger than what is asked for is held in memory. :func:`write_video` accepts any
iterable of frames for the same reason.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np

log = logging.getLogger("facedit.video")

SEEK_AHEAD = 250
"""A frame further ahead of a reader than this is reached by seeking to the keyframe before it, not by decoding
every frame between (a reader that steps back seeks too)."""

__all__ = [
    "VideoData",
    "VideoInfo",
    "audio_seconds",
    "fps_to_fraction",
    "iter_frames",
    "probe_video",
    "read_audio",
    "read_video",
    "write_video",
]


def _av():
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is a hard requirement of the pack
        raise ImportError("facedit.video_io needs PyAV: pip install av") from exc
    return av


def fps_to_fraction(fps: float | int | Fraction | str) -> Fraction:
    """An exact frame rate: integers stay integers, NTSC rates (29.97, 23.976, 59.94) become n*1000/1001.

    Strings such as ``"30000/1001"`` or ``"29.97"`` are accepted too.
    """
    if isinstance(fps, Fraction):
        rate = fps
    elif isinstance(fps, str):
        try:
            rate = Fraction(fps.strip())
        except ValueError as exc:
            raise ValueError(f"fps: expected a number or 'num/den', got {fps!r}") from exc
    elif isinstance(fps, (int, np.integer)):
        rate = Fraction(int(fps))
    elif isinstance(fps, (float, np.floating)):
        value = float(fps)
        if not math.isfinite(value):
            raise ValueError(f"fps: expected a finite positive number, got {fps!r}")
        if abs(value - round(value)) < 1e-6:
            rate = Fraction(round(value))
        elif abs(value * 1.001 - round(value * 1.001)) < 2e-3:
            rate = Fraction(round(value * 1.001) * 1000, 1001)
        else:
            rate = Fraction(value).limit_denominator(1001)
    else:
        raise ValueError(f"fps: expected a number, Fraction or 'num/den' string, got {type(fps).__name__}")
    if rate <= 0:
        raise ValueError(f"fps: expected a positive frame rate, got {fps!r}")
    return rate


@dataclass(frozen=True)
class VideoInfo:
    """What a container says about its first video stream (and first audio stream, if any)."""

    path: str
    width: int
    height: int
    fps: Fraction
    frame_count: int
    duration_s: float
    sample_rate: int | None
    audio_channels: int | None
    stored_frames: int | None = None
    """Frames stored in the file (``frame_count`` unless ``retimed``)."""
    variable_frame_rate: bool = False
    """The stored frames are not evenly spaced in time (each more than half a frame off ``i / fps``)."""
    retimed: bool = False
    """Frames are read at ``fps`` by their presentation times (some stored frames repeat or are dropped)."""
    note: str = ""
    """What retiming did, in words (empty when not retimed)."""
    truncated: bool = False
    """The file's index lists more video frames than the file holds (cut short; the last one may be partial)."""

    @property
    def has_audio(self) -> bool:
        return self.sample_rate is not None


class VideoData(NamedTuple):
    """Frames ``[T, H, W, 3]`` float32 0..1, exact fps, audio ``[C, S]`` float32 (or None) and its rate."""

    frames: np.ndarray
    fps: Fraction
    audio: np.ndarray | None
    sample_rate: int | None


def _accurate_flags(reading: bool = False):
    """swscale flags with exact rounding (the defaults shift colours by 1-2 levels per round trip)."""
    from av.video.reformatter import Interpolation

    if reading:  # as accurate as bicubic for chroma upsampling here, and about twice as fast
        return Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
    flags = Interpolation.BICUBIC | Interpolation.ACCURATE_RND
    return flags | Interpolation.FULL_CHR_H_INT | Interpolation.FULL_CHR_H_INP


def _frame_to_rgb(frame, flags) -> np.ndarray:
    """Decoded frame -> RGB uint8, using the stream's tagged colour matrix and range (BT.601 when untagged)."""
    rgb = frame.reformat(format="rgb24", interpolation=flags, src_color_range=frame.color_range or None)
    return rgb.to_ndarray()


def uint8_to_float(rgb: np.ndarray) -> np.ndarray:
    """A decoded uint8 frame as the float32 0..1 frame every reader here gives (one formula, so copies agree)."""
    return rgb.astype(np.float32) / 255.0


def _check_path(path: str | os.PathLike) -> str:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"video file not found: {path}")
    return path


def _open(path: str):
    av = _av()
    try:
        return av.open(path)
    except av.error.FFmpegError as exc:
        raise ValueError(f"{path}: not a readable video/audio file ({exc})") from exc


@contextlib.contextmanager
def _audio_track(path: str) -> Iterator[tuple[Any, Any | None]]:
    """The file at (checked) ``path`` opened, with its first audio stream, or None when it has none."""
    with _open(path) as container:
        yield container, container.streams.audio[0] if container.streams.audio else None


def _stream_fps(stream, path: str) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return fps_to_fraction(Fraction(rate))
    raise ValueError(f"{path}: the video stream has no frame rate")


def probe_video(path: str | os.PathLike, fps: float | Fraction | str | None = None) -> VideoInfo:
    """Size, exact fps, frame count and audio format, from the packets' timestamps (no frame is decoded).

    A variable-frame-rate stream is reported at the constant rate it is read at (``retimed``, with a warning);
    ``fps`` asks for a rate to read any file at (None: the file's own, or for a variable-rate file the rate its
    frames mostly run at, see :func:`facedit.video.timing.output_rate`). The scan is cached per file version, so
    readers may probe freely.
    The frame count is that of the video packets shown (an edit list may hide some that decoding needs).
    """
    return _scan(_check_path(path), None if fps is None else fps_to_fraction(fps))[0]


def _scan(path: str, requested: Fraction | None):
    stat = os.stat(path)
    return _scan_cached(path, stat.st_mtime_ns, stat.st_size, requested)


@functools.lru_cache(maxsize=32)
def _scan_cached(path: str, _mtime_ns: int, _size: int, requested: Fraction | None):
    """(VideoInfo, FrameTiming or None, SeekPoints or None): the info, the timing a retimed reader follows, and
    where a constant-rate reader may start decoding."""
    from .video.timing import output_count, output_rate, source_indices, stream_timing

    with _open(path) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        nominal = _stream_fps(stream, path)
        packets = [packet for packet in container.demux(stream) if packet.size > 0]
        pts = [packet.pts for packet in packets if not packet.is_discard]
        stored = len(pts)
        truncated = bool(stream.frames) and stream.frames > len(packets)
        if truncated:
            log.warning("%s: truncated: its index lists %d video frames but only %d are in the file (the last may be "
                        "cut short); reading those", path, stream.frames, len(packets))  # fmt: skip
        timing = None
        if stored and all(p is not None for p in pts) and stream.time_base:
            timing = stream_timing(pts, Fraction(stream.time_base))
        elif requested is not None and requested != nominal:
            raise ValueError(f"{path}: its video packets carry no timestamps, so it cannot be read at {requested} fps")
        variable = timing is not None and not timing.is_constant(nominal)
        if variable and timing.is_constant(output_rate(timing, nominal)):  # even, at another rate than declared
            nominal, variable = output_rate(timing, nominal), False
        fps = requested or (output_rate(timing, nominal) if variable else nominal)
        retimed = timing is not None and (variable or fps != nominal)
        note = ""
        if retimed:
            count = output_count(timing, fps)
            shown = np.unique(source_indices(timing, fps, count)).size
            gaps = np.diff(timing.ticks) * float(timing.time_base) * 1000
            kind = "variable frame rate" if variable else f"{nominal} fps"
            spread = f", gaps {gaps.min():.1f}-{gaps.max():.1f} ms" if gaps.size else ""
            note = (f"{path}: {kind} ({stored} stored frames over {float(timing.duration()):.3f} s{spread}); read "
                    f"by the frames' timestamps at a constant {fps} fps: {count} frames, {count - shown} repeated "
                    f"and {stored - shown} dropped stored frames")  # fmt: skip
            log.warning("%s", note)
        else:
            count = stored
        audio = container.streams.audio[0] if container.streams.audio else None
        info = VideoInfo(
            path=path,
            width=int(stream.codec_context.width),
            height=int(stream.codec_context.height),
            fps=fps,
            frame_count=count,
            duration_s=float(count / fps),
            sample_rate=int(audio.codec_context.sample_rate) if audio is not None else None,
            audio_channels=int(audio.codec_context.channels) if audio is not None else None,
            stored_frames=stored,
            variable_frame_rate=variable,
            retimed=retimed,
            note=note,
            truncated=truncated,
        )
        seek = None
        if timing is not None and not retimed and not truncated:
            keys = sorted((p.pts, p.dts) for p in packets if p.is_keyframe and not p.is_discard and p.dts is not None)
            seek = _SeekPoints(np.sort(np.asarray(pts, np.int64)), np.asarray(keys, np.int64).reshape(-1, 2))
        return info, timing if retimed else None, seek


@dataclass(frozen=True)
class _SeekPoints:
    """The shown frames' pts in presentation order, and the keyframes' (pts, dts) by pts."""

    pts: np.ndarray
    keys: np.ndarray


def _from_keyframe(container, stream, points: _SeekPoints, start: int) -> Iterator[tuple[int, Any]] | None:
    """(index, frame) from frame ``start`` on, decoding from the last keyframe at or before it instead of from the
    first frame; None where that keyframe is the first one, or when decoding from it does not give frame
    ``start`` (by its pts) as the first frame at or after its time.

    Frames after a keyframe in both decode and presentation order decode as they do from the start (an IDR picture
    or a CRA / recovery point clears what came before); the leading pictures that look past it come before it in
    presentation order and are dropped here, as is every frame before ``start``."""
    target = int(points.pts[start])
    at = int(np.searchsorted(points.keys[:, 0], target, side="right")) - 1
    if at < 0 or points.keys[at, 0] <= points.pts[0]:
        return None
    container.seek(int(points.keys[at, 1]), stream=stream, backward=True, any_frame=False)
    decoded = container.decode(stream)
    try:
        for frame in decoded:
            if frame.pts is None or frame.pts > target:
                return None
            if frame.pts == target:
                return itertools.chain([(start, frame)], enumerate(decoded, start + 1))
    except _av().error.FFmpegError:
        return None
    return None


def _retimed(decoded: Iterable[Any], timing, fps: Fraction, count: int, path: str) -> Iterator[tuple[int, Any]]:
    """(output index, decoded frame) at a constant ``fps``: each frame is held until the next one's time."""
    from .video.timing import too_late_for

    k, current = 0, None
    for frame in decoded:
        if frame.pts is None:
            raise ValueError(f"{path}: a decoded frame has no timestamp, so the variable frame rate cannot be followed")
        tick = int(frame.pts) - timing.start
        while current is not None and k < count and too_late_for(tick, k, timing, fps):
            yield k, current
            k += 1
        if k >= count:
            return
        current = frame
    while current is not None and k < count:
        yield k, current
        k += 1


def iter_frames(
    path: str | os.PathLike,
    start: int = 0,
    stop: int | None = None,
    dtype: str = "float32",
    fps: float | Fraction | str | None = None,
) -> Iterator[np.ndarray]:
    """Yield RGB frames ``[H, W, 3]`` with indices in ``[start, stop)``, one at a time.

    ``dtype`` is ``"float32"`` (0..1) or ``"uint8"``. Decoding starts at the last keyframe at or before ``start``
    (a constant-rate file with timestamps; else at the first frame), the frames before ``start`` are decoded and
    dropped; the frames are the same as when decoding from the first frame. Indices count frames at the
    rate :func:`probe_video` reports for the same ``fps`` (a variable-rate file is retimed).
    """
    if dtype not in ("float32", "uint8"):
        raise ValueError(f"dtype: expected 'float32' or 'uint8', got {dtype!r}")
    last, rgb = None, None
    for _, frame, flags, retimed in _decoded(path, start, stop, fps):
        if frame is not last:
            last, rgb = frame, _frame_to_rgb(frame, flags)
        if dtype == "float32":
            yield uint8_to_float(rgb)
        else:  # a retimed frame may repeat: each gets its own array
            yield rgb.copy() if retimed else rgb


def _decoded(
    path: str | os.PathLike, start: int = 0, stop: int | None = None, fps: float | Fraction | str | None = None
) -> Iterator[tuple[int, Any, Any, bool]]:
    """(index, PyAV frame, colour flags, retimed) for the indices in [start, stop) of :func:`iter_frames`, decoded
    but not converted, so a frame nobody looks at costs its decode only. A retimed (variable-rate) file may give
    one PyAV frame several indices."""
    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"frame range: expected 0 <= start <= stop, got start={start}, stop={stop}")
    path = _check_path(path)
    info, timing, seek = _scan(path, None if fps is None else fps_to_fraction(fps))
    with contextlib.ExitStack() as files:
        container, stream = _video_stream(files, path)
        flags = _accurate_flags(reading=True)
        indexed = None
        if timing is None and seek is not None and 0 < start < len(seek.pts):
            indexed = _from_keyframe(container, stream, seek, start)
            if indexed is None:  # decode from the start, in a file opened afresh
                container, stream = _video_stream(files, path)
        if indexed is None and timing is not None:
            indexed = _retimed(container.decode(stream), timing, info.fps, info.frame_count, path)
        elif indexed is None:
            indexed = enumerate(container.decode(stream))
        index = -1
        av = _av()
        try:
            for index, frame in indexed:
                if stop is not None and index >= stop:
                    return
                if index >= start:
                    yield index, frame, flags, timing is not None
        except av.error.FFmpegError as exc:
            raise ValueError(f"{path}: cannot decode frame {index + 1} of {info.frame_count} ({exc}); the file is "
                             "damaged or truncated") from exc  # fmt: skip
        if index + 1 < min(info.frame_count, stop if stop is not None else info.frame_count):
            raise ValueError(f"{path}: decoding ended after {index + 1} of its {info.frame_count} frames; the file is "
                             "damaged or truncated")  # fmt: skip


def _video_stream(files: contextlib.ExitStack, path: str):
    """(container, its first video stream) of ``path``, opened for decoding; closed with ``files``."""
    container = files.enter_context(_open(path))
    if not container.streams.video:
        raise ValueError(f"{path}: has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def _video_start(container) -> Fraction | None:
    """The first video frame's time (s), where :func:`read_audio` puts sample 0; None without a video stream."""
    if not container.streams.video or container.streams.video[0].start_time is None:
        return None
    stream = container.streams.video[0]
    return Fraction(stream.start_time) * stream.time_base


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int] | None:
    """The first audio stream as float32 ``[C, S]`` and its sample rate, or None when there is none.

    For a file with video, sample 0 is at the first video frame's timestamp (audio that starts later
    is preceded by silence, audio that starts earlier is cut). Encoder priming and end padding are removed.
    """
    av = _av()
    path = _check_path(path)
    with _audio_track(path) as (container, stream):
        if stream is None:
            return None
        rate = int(stream.codec_context.sample_rate)
        video_start = _video_start(container)
        resampler = None
        chunks: list[np.ndarray] = []
        first_time: Fraction | None = None
        end_time: Fraction | None = None
        pcm = stream.codec_context.name.startswith("pcm_")  # its index counts samples, not packets
        held = 0
        try:
            for packet in container.demux(stream):
                held += packet.size > 0 and not pcm
                if packet.pts is not None and packet.duration:
                    packet_end = Fraction(packet.pts + packet.duration) * packet.time_base
                    end_time = packet_end if end_time is None else max(end_time, packet_end)
                for frame in packet.decode():
                    held += frame.samples if pcm else 0
                    if first_time is None and frame.pts is not None:
                        first_time = Fraction(frame.pts) * frame.time_base
                    if resampler is None:
                        resampler = av.AudioResampler(format="fltp", layout=frame.layout, rate=rate)
                    for out in resampler.resample(frame):
                        chunks.append(out.to_ndarray())
        except av.error.FFmpegError as exc:
            done = sum(chunk.shape[1] for chunk in chunks) / rate
            raise ValueError(f"{path}: cannot decode the audio after {done:.2f} s ({exc}); the file is damaged or "
                             "truncated") from exc  # fmt: skip
        if stream.frames and stream.frames > held:
            unit = "samples" if pcm else "packets"
            raise ValueError(f"{path}: truncated: its index lists {stream.frames} audio {unit} but only {held} are in "
                             "the file; the file is damaged or truncated")  # fmt: skip
        if resampler is not None:
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
        if not chunks:
            return None
        audio = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
        first_time = first_time if first_time is not None else Fraction(0)
        if end_time is not None:
            keep = round((end_time - first_time) * rate)
            if 0 < keep < audio.shape[1]:
                audio = audio[:, :keep]
        if video_start is not None:
            shift = round((first_time - video_start) * rate)
            if shift > 0:
                audio = np.concatenate([np.zeros((audio.shape[0], shift), np.float32), audio], axis=1)
            elif shift < 0:
                audio = audio[:, -shift:]
        return np.ascontiguousarray(audio), rate


def audio_seconds(path: str | os.PathLike) -> float | None:
    """Seconds of the audio :func:`read_audio` gives (its samples / its rate), or None when there is no audio track.

    For AAC, read from the packets' timestamps and durations, decoding only the first packets (a 10 min track
    decodes in a quarter of a second; its packets are read in a quarter of that). The track is decoded in full
    for other codecs, and when the packets cannot say: packets without timestamps or durations, an index that lists
    more packets than the file holds, or durations that promise more samples than the packets decode to."""
    av = _av()
    path = _check_path(path)
    with _audio_track(path) as (container, stream):
        if stream is None:
            return None
        ctx = stream.codec_context
        rate, frame_size = int(ctx.sample_rate), int(ctx.frame_size or 0)
        exact = ctx.name == "aac" and frame_size > 0 and rate > 0 and stream.time_base is not None
        first_time = first_tick = end_tick = None
        held = shown = 0
        try:
            for packet in container.demux(stream) if exact else ():
                if packet.size == 0:
                    continue
                if packet.pts is None or not packet.duration:
                    exact = False
                    break
                held += 1
                end = packet.pts + packet.duration
                end_tick = end if end_tick is None else max(end_tick, end)
                if packet.is_discard:
                    continue
                shown += 1
                if first_tick is None:
                    first_tick = packet.pts
                if first_time is None:
                    frame = next((f for f in packet.decode() if f.pts is not None), None)
                    first_time = None if frame is None else Fraction(frame.pts) * frame.time_base
        except av.error.FFmpegError:
            exact = False
        if exact and not (stream.frames and stream.frames > held) and first_time is not None:
            tb = Fraction(stream.time_base)
            decodes = shown * frame_size - round((first_time - first_tick * tb) * rate)  # less what the decoder skips
            keep = round((end_tick * tb - first_time) * rate)
            if 0 < keep <= decodes:
                video_start = _video_start(container)
                shift = round((first_time - video_start) * rate) if video_start is not None else 0
                return max(0, keep + shift) / rate
    found = read_audio(path)
    return None if found is None else found[0].shape[-1] / found[1]


def read_video(
    path: str | os.PathLike,
    start_frame: int = 0,
    end_frame: int | None = None,
    with_audio: bool = True,
    fps: float | Fraction | str | None = None,
) -> VideoData:
    """Frames ``[start_frame, end_frame)`` as float32 0..1, the exact fps, and the file's whole audio track.

    The audio is not cut to the frame range: sample ``s`` stands at time ``s / sample_rate`` from frame 0.
    ``fps``: as in :func:`probe_video` (a variable-rate file is read at a constant rate by its timestamps).
    """
    path = _check_path(path)
    info = probe_video(path, fps)
    frames = list(iter_frames(path, start_frame, end_frame, fps=fps))
    if frames:
        video = np.stack(frames)
    else:
        video = np.zeros((0, info.height, info.width, 3), np.float32)
    audio = read_audio(path) if with_audio else None
    if audio is None:
        return VideoData(video, info.fps, None, None)
    return VideoData(video, info.fps, audio[0], audio[1])


def _to_numpy(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == object:
        raise ValueError(f"{name}: expected a numeric array, got an object array")
    return arr


def _frame_to_uint8(frame: Any, index: int, size: tuple[int, int] | None) -> np.ndarray:
    arr = _to_numpy(frame, f"frames[{index}]")
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"frames[{index}]: expected [H, W, 3] RGB, got shape {tuple(arr.shape)}")
    if size is not None and arr.shape[:2] != size:
        raise ValueError(f"frames[{index}]: size {arr.shape[:2]} differs from the first frame's {size}")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"frames[{index}]: expected float 0..1 or uint8, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"frames[{index}]: contains NaN or infinite values")
    low, high = float(arr.min()), float(arr.max())
    if low < -0.5 / 255 or high > 1 + 0.5 / 255:
        raise ValueError(f"frames[{index}]: float frames must lie in 0..1, got values in [{low:.4f}, {high:.4f}]")
    return np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)


def _iter_input_frames(frames: Any) -> Iterator[Any]:
    if hasattr(frames, "detach") or isinstance(frames, np.ndarray):
        arr = _to_numpy(frames, "frames")
        if arr.ndim != 4:
            raise ValueError(f"frames: expected [T, H, W, 3], got shape {tuple(arr.shape)}")
        yield from arr
    else:
        yield from frames


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float | Fraction | str,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
    crf: int = 18,
    preset: str = "medium",
    pix_fmt: str | None = None,
    progress: Callable[[int], None] | None = None,
    inputs: Iterable[str | os.PathLike] = (),
    keyframe_interval: int | None = None,
) -> str:
    """Write an H.264 file (.mp4 / .mov / .m4v / .mkv) with an exact frame rate; returns the path.

    ``frames``: ``[T, H, W, 3]`` float 0..1 or uint8 (numpy or torch), or any iterable of ``[H, W, 3]``
    frames so long videos stream. ``audio``: ``[C, S]`` or ``[S]`` float in -1..1 (1..8 channels, kept), written
    in full and starting with frame 0; trim it to ``T / fps`` seconds yourself if the lengths must match. Any
    sample rate: .mov / .mkv keep it (PCM), .mp4 gets AAC at the nearest AAC rate (resampled, with a log line).
    ``crf``: x264 quality (0 lossless luma, 18 visually lossless, 23 default). ``pix_fmt``: None picks yuv420p,
    or yuv444p when the width or height is odd; any pixel format libx264 writes is accepted.
    The file is written beside ``path`` under a temporary name and renamed when complete: an error, Ctrl-C or
    SIGTERM leaves a previous file at ``path`` untouched and no partial file. ``inputs``: files ``path`` must
    not be (refused before anything is written; a lazily read :class:`VideoFrames` counts as one).
    ``progress`` is called with the frame count. ``keyframe_interval``: the longest GOP in frames (None: x264's 250).
    """
    from .video.render import OutputFormat, write_frames

    output = OutputFormat(
        kind="h264", crf=int(crf), preset=preset, pix_fmt=pix_fmt, keyframe_interval=keyframe_interval
    )
    report = write_frames(path, frames, fps, audio=audio, sample_rate=sample_rate, output=output, inputs=inputs,
                          progress=None if progress is None else lambda count, _total: progress(count))  # fmt: skip
    return report.path


class VideoFrames:
    """A video file as a read-only sequence of float32 RGB frames at ``info.fps``, decoded on demand.

    Access is cheap in increasing order (one forward decoder); a step back beyond the small cache, or a jump of
    more than ``SEEK_AHEAD`` frames, reopens the file at the keyframe before the frame. The editing pipeline reads
    frames in time order, so a whole clip is never held in memory. The cache holds the last decoded frames, each
    converted to RGB uint8 only once asked for (a quarter of float32: 25 MB, not 100 MB, a 4K frame); each read
    converts its frame exactly as :func:`iter_frames` does, into a new array.
    """

    def __init__(self, path: str | os.PathLike, cache_frames: int = 16, fps: float | Fraction | str | None = None):
        self.info = probe_video(path, fps)
        self.path = os.fspath(path)
        self._fps = fps
        self._cache: dict[int, np.ndarray | tuple[Any, Any]] = {}  # converted, or (PyAV frame, flags) not yet
        self._cache_frames = max(1, int(cache_frames))
        self._reader: Iterator[tuple[int, Any, Any, bool]] | None = None
        self._next = 0

    def __len__(self) -> int:
        return self.info.frame_count

    def __getitem__(self, index: int) -> np.ndarray:
        return uint8_to_float(self.uint8(index))

    def uint8(self, index: int) -> np.ndarray:
        """Frame ``index`` as decoded, RGB uint8 (H, W, 3); ``frames[i]`` is this divided by 255 in float32.
        The array is the cache's own: do not write to it. Frames stepped over on the way are decoded but not
        converted (a writer that copies the untouched GOPs skips most of a long clip)."""
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} is outside {self.path}'s {len(self)} frames")
        if index not in self._cache:
            if self._reader is None or index < self._next or index >= self._next + SEEK_AHEAD:
                self._reader = _decoded(self.path, start=index, fps=self._fps)
                self._next = index
            while self._next <= index:
                try:
                    _, frame, flags, _ = next(self._reader)
                except StopIteration:
                    raise IndexError(f"{self.path} ended before frame {index} (probed {len(self)} frames)") from None
                self._cache[self._next] = (frame, flags)
                if len(self._cache) > self._cache_frames:
                    del self._cache[min(self._cache)]
                self._next += 1
        entry = self._cache[index]
        if isinstance(entry, tuple):
            entry = self._cache[index] = _frame_to_rgb(*entry)
        return entry

"""Frame timing: is a stream constant rate, and which stored frame is on screen at each tick of a constant rate.

A file's stored frames carry presentation times. A constant-rate file has frame ``i`` within half a frame of
``i / fps``, so reading its frames one after another is exact. A variable-rate file (phones, screen recorders,
dropped frames) does not, and reading it frame by frame puts every frame after the first change of rate at the
wrong time. Such a file is read at a constant rate instead: output frame ``k`` (at ``k / fps`` from the first
frame) shows the last stored frame whose time rounds to a tick at or before ``k``, as ffmpeg's ``fps`` filter does
(frames repeat where the file has fewer, and are dropped where it has more).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

__all__ = [
    "STANDARD_RATES",
    "FrameTiming",
    "output_count",
    "output_rate",
    "source_indices",
    "stream_timing",
    "too_late_for",
]

STANDARD_RATES = tuple(
    Fraction(r)
    for r in (
        "12",
        "12.5",
        "15",
        "24000/1001",
        "24",
        "25",
        "30000/1001",
        "30",
        "48",
        "50",
        "60000/1001",
        "60",
        "100",
        "120",
    )  # fmt: skip
)
_SNAP = 0.02  # an average within 2 % of a standard rate is that rate (a phone's "30 fps" averages 29.6-30.2)


@dataclass(frozen=True)
class FrameTiming:
    """Presentation times of a stream's stored frames: ``ticks`` (sorted, from the first frame) in ``time_base``."""

    ticks: np.ndarray  # (N,) int64, ticks[0] == 0
    time_base: Fraction
    start: int  # the first frame's pts

    @property
    def count(self) -> int:
        return len(self.ticks)

    def duration(self) -> Fraction:
        """First frame to the end of the last, the last lasting as long as the gap before it (a muxer's last
        duration is only the encoder's nominal rate)."""
        if self.count < 2:
            return Fraction(0)
        last = int(self.ticks[-1] - self.ticks[-2])
        return (int(self.ticks[-1]) + last) * self.time_base

    def is_constant(self, fps: Fraction) -> bool:
        """Every frame ``i`` lies within half a frame of ``i / fps`` (reading one by one is then exact)."""
        seconds = self.ticks.astype(np.float64) * float(self.time_base)
        return bool(np.all(np.abs(seconds * float(fps) - np.arange(self.count)) < 0.5))


def stream_timing(pts: list[int] | np.ndarray, time_base: Fraction) -> FrameTiming:
    """The timing of stored frames from their packets' pts (any order: decode order holds B-frames)."""
    ordered = np.sort(np.asarray(pts, dtype=np.int64))
    if ordered.size == 0:
        raise ValueError("a video stream without frames has no timing")
    return FrameTiming(ordered - ordered[0], Fraction(time_base), int(ordered[0]))


def output_rate(timing: FrameTiming, fallback: Fraction) -> Fraction:
    """The constant rate a variable-rate stream is read at: the rate its frames mostly run at (one over the median
    gap), snapped to a standard rate when within 2 % of one, else rounded to whole frames per second.

    Not the average: a 25 fps clip with one dropped frame averages 24.2 fps, and a clip that runs at 50 fps with
    slow stretches would lose half its frames there."""
    if timing.count < 2:
        return fallback
    typical = 1 / (float(np.median(np.diff(timing.ticks))) * float(timing.time_base))
    nearest = min(STANDARD_RATES, key=lambda r: abs(float(r) - typical))
    if abs(float(nearest) - typical) <= _SNAP * float(nearest):
        return nearest
    return Fraction(max(1, round(typical)))


def output_count(timing: FrameTiming, fps: Fraction) -> int:
    """Frames at ``fps`` that fill the stream's duration (at least one)."""
    return max(1, round(timing.duration() * fps))


def source_indices(timing: FrameTiming, fps: Fraction, count: int) -> np.ndarray:
    """For each output frame ``k < count``, the stored frame on screen at ``k / fps``: the last one whose time is
    before ``(k + 1/2) / fps`` (exact integer arithmetic)."""
    tb, rate = Fraction(timing.time_base), Fraction(fps)
    left = 2 * timing.ticks * (tb.numerator * rate.numerator)  # 2 t_i fps, scaled by tb.den * fps.den
    right = (2 * np.arange(count, dtype=np.int64) + 1) * (tb.denominator * rate.denominator)
    return np.maximum(np.searchsorted(left, right, side="left") - 1, 0)


def too_late_for(tick: int, k: int, timing: FrameTiming, fps: Fraction) -> bool:
    """Whether a stored frame at ``tick`` (from the first frame) comes too late to be output frame ``k``
    (the rule of :func:`source_indices`, for frames met one by one while decoding)."""
    tb, rate = timing.time_base, Fraction(fps)
    return 2 * tick * tb.numerator * rate.numerator >= (2 * k + 1) * tb.denominator * rate.denominator

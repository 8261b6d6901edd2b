"""Variable-frame-rate clips written with explicit presentation times, and a marker that says which stored frame
a decoded frame is."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction

import av
import numpy as np

# 50 fps for one second, then 12.5 fps for two: 75 stored frames over 3 s (an average of 25 fps).
TIMES = tuple([Fraction(i, 50) for i in range(50)] + [1 + Fraction(2 * i, 25) for i in range(25)])
MARK = 16  # the marker block's side, top-left


def marked(image: np.ndarray, i: int) -> np.ndarray:
    """``image`` (uint8) with stored frame ``i`` written into the top-left block as a grey level."""
    out = image.copy()
    out[:MARK, :MARK] = 10 + 3 * i  # 3 levels apart: RGB -> YUV -> RGB may move one
    return out


def marker(frame: np.ndarray) -> int:
    """The stored frame index of a decoded frame (uint8 or float 0..1)."""
    block = np.asarray(frame, dtype=np.float64)[2 : MARK - 2, 2 : MARK - 2]
    if block.max() <= 1.0:
        block = block * 255
    return int(round((block.mean() - 10) / 3))


def shown_at(t: float, times: Sequence[Fraction] = TIMES) -> int:
    """The stored frame on screen at ``t`` seconds: the last one whose time is not after ``t``."""
    return max(i for i, ti in enumerate(times) if ti <= Fraction(t).limit_denominator(10**6))


def write_vfr(path, times: Sequence[Fraction] = TIMES, image: Callable[[int], np.ndarray] | None = None,
              size: tuple[int, int] = (64, 48), time_base: Fraction = Fraction(1, 1000)):  # fmt: skip
    """An H.264 file whose stored frame ``i`` has presentation time ``times[i]`` and carries marker ``i``."""
    w, h = size
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=50)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast", "qp": "0", "g": "10", "bf": "0"}
        s.codec_context.time_base = time_base
        s.time_base = time_base
        for i, t in enumerate(times):
            base = image(i) if image is not None else np.full((h, w, 3), 128, np.uint8)
            f = av.VideoFrame.from_ndarray(marked(base, i), format="rgb24")
            f.pts, f.time_base = int(t / time_base), time_base
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return path

"""Speed of the evaluation building blocks on this machine's CPU: prints figures, asserts nothing.

python bench/bench_metrics.py [--sizes 512x512,1920x1080] [--frames 48]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from facedit.metrics import Boundary, DISFlow, motion_continuity, photometric_continuity, syncnet_mfcc  # noqa: E402
from facedit.video_io import read_video, write_video  # noqa: E402


def _video(t: int, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.random((h // 8 + 2, w // 8 + 2 + t, 3)).astype(np.float32)
    import cv2

    big = cv2.resize(base, ((w // 8 + 2 + t) * 8, (h // 8 + 2) * 8), interpolation=cv2.INTER_CUBIC)
    return np.stack([np.clip(big[:h, i * 2 : i * 2 + w], 0, 1) for i in range(t)])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="512x512,1920x1080")
    p.add_argument("--frames", type=int, default=48)
    args = p.parse_args()
    for size in args.sizes.split(","):
        w, h = (int(x) for x in size.split("x"))
        frames = _video(args.frames, h, w)
        bounds = [Boundary(10, 10), Boundary(20, 20)]
        t0 = time.perf_counter()
        photometric_continuity(frames, frames, bounds)
        t1 = time.perf_counter()
        motion_continuity(frames, frames, bounds, DISFlow())
        t2 = time.perf_counter()
        motion_continuity(frames, frames, bounds, DISFlow(), flow_max_side=512)
        t3 = time.perf_counter()
        print(
            f"{w}x{h}: P_continuity {1000 * (t1 - t0) / 2:.1f} ms/boundary, M_continuity (DIS) "
            f"{1000 * (t2 - t1) / 2:.1f} ms/boundary, with flow_max_side=512 {1000 * (t3 - t2) / 2:.1f} ms/boundary"
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "b.mp4")
            audio = np.zeros((1, int(args.frames / 25 * 16000)), np.float32)
            t0 = time.perf_counter()
            write_video(path, frames, 25, audio=audio, sample_rate=16000)
            t1 = time.perf_counter()
            read_video(path)
            t2 = time.perf_counter()
        print(
            f"{w}x{h}: write_video {args.frames / (t1 - t0):.1f} frames/s (x264 medium, crf 18), "
            f"read_video {args.frames / (t2 - t1):.1f} frames/s"
        )
    pcm = np.random.default_rng(0).standard_normal(16000 * 10) * 3000
    t0 = time.perf_counter()
    syncnet_mfcc(pcm)
    print(f"syncnet_mfcc: 10 s of audio in {1000 * (time.perf_counter() - t0):.1f} ms")


if __name__ == "__main__":
    main()

"""Milliseconds per synthesised frame of facedit.resample at 512x512 and 1920x1080, per DIS preset.

Two retimings of a synthetic clip (a textured background panning, a textured face-sized ellipse moving
the other way, its box given as the face region):
- interpolate: every target frame halfway between two source frames (flows for every frame; the
  worst case of a slow-down, where nothing is shared between target frames);
- compress 2x: every other source frame, each target frame a motion-aligned average of three.

Every target frame here is synthesised (none is a plain copy). Flow runs at a working scale whose longer
side is at most 960 (ResampleConfig.flow_max_side): 512x512 at full size, 1080p at half size.

Run: python bench/bench_resample.py [--frames 8] [--sizes 512x512 1920x1080] [--presets ...] [--repeat 2]
"""

import argparse
import os
import sys
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from facedit.resample import ResampleConfig, resample_frames  # noqa: E402


def synthetic_clip(n: int, h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.random((h + 64, w + 64, 3), np.float32), (0, 0), 2.0)
    big = (big - big.mean()) / big.std() * 0.15 + 0.5
    face_tex = cv2.GaussianBlur(rng.random((h, w, 3), np.float32), (0, 0), 3.0) * 0.3 + [0.6, 0.45, 0.35]
    rx, ry = 0.12 * min(h, w) * 1.6, 0.16 * min(h, w) * 1.6
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames, boxes = [], []
    for i in range(n):
        m = np.float32([[1, 0, -32 + 1.7 * i], [0, 1, -32 + 0.4 * i]])
        bg = cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        cx, cy = w / 2 - 1.2 * i, h / 2 + 0.3 * i
        alpha = np.clip(0.5 + (1 - np.hypot((xx - cx) / rx, (yy - cy) / ry)) * min(rx, ry), 0, 1)[..., None]
        frames.append(np.clip(alpha * face_tex + (1 - alpha) * bg, 0, 1).astype(np.float32))
        boxes.append([cx - rx, cy - ry, cx + rx, cy + ry])
    return np.stack(frames), np.array(boxes)


def bench(frames, boxes, times, preset, repeat) -> tuple[float, float]:
    """Best of ``repeat`` runs (the machine may be shared): wall and CPU (all threads) ms per target frame."""
    config = ResampleConfig(preset=preset)
    wall = cpu = float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        resample_frames(frames, times, boxes, config=config)
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall * 1000 / len(times), cpu * 1000 / len(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--sizes", nargs="+", default=["512x512", "1920x1080"])
    parser.add_argument("--presets", nargs="+", default=["ultrafast", "fast", "medium"])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(f"cv2 {cv2.__version__}, {cv2.getNumThreads()} OpenCV threads, {os.cpu_count()} CPUs")
    print(f"load average {os.getloadavg()[0]:.1f}; ms per synthesised frame, wall (CPU time of all threads)")
    print(f"{'size':>10} {'preset':>10} {'interpolate':>16} {'compress 2x':>16}")
    for size in args.sizes:
        w, h = (int(v) for v in size.split("x"))
        frames, boxes = synthetic_clip(args.frames, h, w)
        n = len(frames)
        halves = np.arange(n - 1) + 0.5
        evens = np.arange(0, n, 2, dtype=np.float64)
        for preset in args.presets:
            interp = bench(frames, boxes, halves, preset, args.repeat)
            compress = bench(frames, boxes, evens, preset, args.repeat)
            cells = [f"{wall:.0f} ({cpu:.0f})" for wall, cpu in (interp, compress)]
            print(f"{size:>10} {preset:>10} {cells[0]:>16} {cells[1]:>16}", flush=True)


if __name__ == "__main__":
    main()

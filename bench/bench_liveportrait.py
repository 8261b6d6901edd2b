"""Milliseconds per frame of the LivePortrait networks at official size (random weights), on this machine.

    python bench/bench_liveportrait.py [--batches 1 4 8] [--dtypes fp32 bf16] [--threads 2] [--iters 1]

Prints one line per (dtype, batch): motion extraction (M), appearance features (F) and warp + decode (W + G).
The numbers depend on the CPU (half precision has fast kernels only on CPUs with AVX-512 BF16 / AMX; elsewhere our
layers compute convolutions in float32) and on what else the machine is running.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facedit.liveportrait import LivePortrait, LivePortraitConfig, resolve_dtype  # noqa: E402
from facedit.liveportrait.layers import native_low_precision  # noqa: E402


def timed(fn, iters: int, warmup: bool) -> float:
    if warmup:
        fn()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - start) / iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is faster on a busy machine)")
    parser.add_argument("--iters", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu capability "
        f"{torch.backends.cpu.get_cpu_capability()}, native bf16 convs: {native_low_precision(torch.bfloat16)}"
    )
    print(f"{'dtype':6} {'batch':>5} {'M ms/frame':>11} {'F ms/frame':>11} {'W+G ms/frame':>13}")
    for name in args.dtypes:
        dtype = resolve_dtype(name)
        lp = LivePortrait.random(LivePortraitConfig(), dtype=dtype)
        for k, b in enumerate(args.batches):
            x = torch.rand(b, 3, 256, 256)
            kp_s = torch.rand(b, 21, 3) * 0.6 - 0.3
            kp_d = kp_s + 0.02 * torch.randn_like(kp_s)
            with torch.inference_mode():
                feats = lp.appearance(x)
                warm = k == 0  # the first batch of each dtype pays for one-off allocations
                t_m = timed(lambda m=lp, x=x: m.motion(x), args.iters, warm)
                t_f = timed(lambda m=lp, x=x: m.appearance(x), args.iters, warm)
                t_wg = timed(lambda m=lp, f=feats, s=kp_s, d=kp_d: m.warp_decode(f, s, d), args.iters, warm)
            print(f"{name:6} {b:5d} {1000 * t_m / b:11.0f} {1000 * t_f / b:11.0f} {1000 * t_wg / b:13.0f}", flush=True)


if __name__ == "__main__":
    main()

"""WavLM feature extraction speed and peak memory, whole clip vs chunked, at WavLM base-plus size.

Random weights of the base-plus architecture (no download); every configuration runs in its own process so
that peak memory (CPU: max RSS growth during encoding; CUDA: max allocated) is its own.

    python bench/bench_speech.py                       # 10 s and 60 s, CPU, float32
    python bench/bench_speech.py --seconds 30 600 --device cuda --dtype float16
    python bench/bench_speech.py --seconds 180 --modes chunked   # long audio: memory stays flat
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _worker(seconds: float, mode: str, device: str, dtype_name: str, chunk_s: float) -> dict:
    import numpy as np
    import torch
    from transformers import WavLMConfig, WavLMModel

    from facedit.speech import PRESETS, WavLM

    torch.manual_seed(0)
    dtype = getattr(torch, dtype_name)
    encoder = WavLM(WavLMModel(WavLMConfig(**PRESETS["base-plus"])).to(device, dtype), normalize=False)
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 16000)) / 16000
    wave = 0.3 * np.sin(2 * np.pi * 180 * t) * np.sin(2 * np.pi * 1.3 * t) + 0.02 * rng.standard_normal(t.shape)
    wave = wave.astype(np.float32)
    window = chunk_s if mode == "chunked" else seconds + 1.0
    encoder.encode(wave[:16000], 16000, chunk_s=window)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    feats = encoder.encode(wave, 16000, chunk_s=window)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    peak_mb = (
        (torch.cuda.max_memory_allocated() - base) / 2**20
        if device.startswith("cuda")
        else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    )
    return dict(seconds=seconds, mode=mode, frames=feats.num_frames, wall_s=elapsed, peak_mb=peak_mb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--chunk-s", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--modes", nargs="+", default=["whole", "chunked"], choices=["whole", "chunked"])
    parser.add_argument("--worker", nargs=2, metavar=("SECONDS", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        print(json.dumps(_worker(float(args.worker[0]), args.worker[1], args.device, args.dtype, args.chunk_s)))
        return
    import torch

    print(
        f"WavLM base-plus (random weights), {args.device}, {args.dtype}, chunk {args.chunk_s:g} s, "
        f"torch {torch.__version__}, threads {args.threads or torch.get_num_threads()}"
    )
    print(f"{'audio s':>8} {'mode':>8} {'frames':>7} {'wall s':>8} {'s per audio s':>14} {'peak MB':>9}")
    for seconds in args.seconds:
        for mode in args.modes:
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                str(seconds),
                mode,
                "--device",
                args.device,
                "--dtype",
                args.dtype,
                "--chunk-s",
                str(args.chunk_s),
                "--threads",
                str(args.threads),
            ]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{seconds:8.1f} {mode:>8} failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"{r['seconds']:8.1f} {r['mode']:>8} {r['frames']:7d} {r['wall_s']:8.2f} "
                f"{r['wall_s'] / r['seconds']:14.3f} {r['peak_mb']:9.0f}"
            )


if __name__ == "__main__":
    main()

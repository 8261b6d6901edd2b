"""LivePortrait at official size (random weights): fp32 and 'fast' side by side, ms/frame per stage, speed-up, PSNR.

    python bench/bench_liveportrait.py [--device cpu|cuda] [--batch 1] [--iters 1] [--threads N] [--profile]

Both modes get the same weights and inputs in one run. Stages: motion extraction (M), appearance features (F),
warping module (W), SPADE decoder (G). The whole-chain PSNR compares the 512x512 outputs of image -> features ->
motion -> warp -> decode, each mode computing its own features and motion, with the fp32 output as reference.

The fp32 path is our reimplementation of the networks, measured at parity in speed and output with the official
LivePortrait code (same CPU, threads, weights and inputs): its times stand in for "official fp32".
'fast' on a CPU needs native bf16 kernels (AVX-512 BF16 / AMX); without them it falls back to float32 and the
script says so. The figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facedit.liveportrait import LivePortrait, LivePortraitConfig  # noqa: E402
from facedit.liveportrait.layers import native_low_precision  # noqa: E402

STAGES = ("M", "F", "W", "G")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, iters: int, device: torch.device):
    fn()  # warm-up: one-off allocations, oneDNN primitive creation, cuDNN autotuning
    _sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        out = fn()
    _sync(device)
    return (time.perf_counter() - start) / iters, out


def run_stages(lp: LivePortrait, image: torch.Tensor, delta: torch.Tensor, iters: int) -> tuple[dict, torch.Tensor]:
    """Seconds per call of each stage, and the whole chain's output for image with driving = source + delta."""
    dev = lp.device
    times = {}
    times["M"], motion = timed(lambda: lp.motion(image), iters, dev)
    times["F"], feats = timed(lambda: lp.appearance(image), iters, dev)
    kp_s = motion["kp"]
    kp_d = kp_s + delta.to(kp_s.device)
    with lp._decode_context():
        times["W"], warped = timed(lambda: lp.warping_module(feats, kp_driving=kp_d, kp_source=kp_s), iters, dev)
        times["G"], _ = timed(lambda: lp.spade_generator(warped["out"]).float(), iters, dev)
    out = lp.warp_decode(feats, kp_s, kp_d)  # the public path, for the PSNR
    return times, out.float().cpu()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def profile_fast(lp: LivePortrait, image: torch.Tensor, delta: torch.Tensor, rows: int = 25) -> None:
    from torch.profiler import ProfilerActivity, profile

    feats = lp.appearance(image)
    kp_s = lp.motion(image)["kp"]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if lp.device.type == "cuda" else [])
    with profile(activities=activities, record_shapes=True) as prof:
        lp.warp_decode(feats, kp_s, kp_s + delta.to(kp_s.device))
    table = prof.key_averages(group_by_input_shape=True).table(
        sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=32, max_shapes_column_width=64
    )
    print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--batch", type=int, default=1, help="frames per call")
    parser.add_argument("--iters", type=int, default=1, help="timed calls per stage (after one warm-up call)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--profile", action="store_true", help="also print torch.profiler's top ops of fast W+G")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: this torch build sees no CUDA GPU")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ref = LivePortrait.random(LivePortraitConfig(), device=device)
    fast = copy.deepcopy(ref).prepare("fast", device=device)
    image = torch.rand(args.batch, 3, 256, 256, device=device)
    delta = 0.03 * torch.randn(args.batch, ref.cfg.num_kp, 3)

    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}, cpu capability {torch.backends.cpu.get_cpu_capability()}")
    if device.type == "cpu":
        print(f"native bf16 kernels (AVX-512 BF16 / AMX): {native_low_precision(torch.bfloat16)}")
    print(f"fast: {fast.fast_plan.reason}")
    if fast.fast_plan.falls_back:
        print("fast FALLS BACK to float32 here: expect ~fp32 speed (the folded layers still save a little)")
    print("fp32 is at parity with the official LivePortrait fp32 code: its times stand in for it")

    with torch.inference_mode():
        results = {}
        for name, lp in (("fp32", ref), ("fast", fast)):
            results[name] = run_stages(lp, image, delta, args.iters)
        b = args.batch
        header = " ".join(f"{s + ' ms/frame':>12}" for s in STAGES)
        print(f"{'mode':6} {'batch':>5} {header} {'W+G':>9} {'total':>9}")
        for name, (times, _) in results.items():
            cols = " ".join(f"{1000 * times[s] / b:12.0f}" for s in STAGES)
            wg, total = times["W"] + times["G"], sum(times.values())
            print(f"{name:6} {b:5d} {cols} {1000 * wg / b:9.0f} {1000 * total / b:9.0f}")
        t32, tfast = results["fp32"][0], results["fast"][0]
        wg_ratio = (t32["W"] + t32["G"]) / (tfast["W"] + tfast["G"])
        chain_ratio = sum(t32.values()) / sum(tfast.values())
        print(f"speed-up fast vs fp32: warp+decode {wg_ratio:.2f}x, whole chain {chain_ratio:.2f}x")
        out32, outfast = results["fp32"][1], results["fast"][1]
        print(
            f"whole-chain PSNR fast vs fp32: {psnr(outfast, out32):.1f} dB "
            f"(max abs diff {(outfast - out32).abs().max().item():.4f}; fp32 output std {out32.std().item():.3f})"
        )
        if args.profile:
            profile_fast(fast, image, delta)


if __name__ == "__main__":
    main()

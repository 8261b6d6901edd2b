"""Training throughput (motion frames per second) and peak memory of one training step, per model preset.

    python bench/bench_train.py [--presets tiny paper] [--device cpu|cuda] [--threads N]

Each preset runs in its own process (so peak memory is its own): the step train.py takes (CFM + TS loss on a
random infill mask, backward, gradient clipping, AdamW, EMA update) on synthetic batches of
``--batch-frames`` frames made of ``--clip-seconds`` clips with WavLM-sized (768-d, 50 Hz) speech. One
warm-up step, then ``--steps`` timed steps. Peak memory: the process's peak resident set on CPU, the peak
allocated CUDA memory on GPU. The "state" column is what training keeps besides activations: fp32
weights, gradients, two AdamW moments and the EMA copy (5 x 4 bytes per parameter).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULTS = {"tiny": {"batch_frames": 1000, "steps": 5}, "paper": {"batch_frames": 250, "steps": 1}}


def child(preset: str, batch_frames: int, clip_seconds: float, steps: int, device: str, precision: str) -> dict:
    import torch

    from facedit.config import FacEDiTConfig
    from facedit.flow import cfm_loss
    from facedit.model import FacEDiT, count_parameters
    from facedit.training.ema import update_ema

    torch.manual_seed(0)
    cfg = getattr(FacEDiTConfig, preset)(speech_dim=768)
    model = FacEDiT(cfg).to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    frames = min(batch_frames, round(clip_seconds * cfg.fps))
    batch = max(1, batch_frames // frames)
    speech_frames = round(frames / cfg.fps * 50) + 2 * 16  # + cross-attention context on both sides
    x1 = torch.randn(batch, frames, cfg.motion_dim, device=device)
    speech = torch.randn(batch, speech_frames, cfg.speech_dim, device=device)
    infill = torch.zeros(batch, frames, dtype=torch.bool, device=device)
    infill[:, frames // 4 : frames // 2] = True
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device.split(":")[0], enabled=dtype == torch.float16)

    def step() -> None:
        autocast = torch.autocast(device.split(":")[0], dtype=dtype) if dtype else contextlib.nullcontext()
        with autocast:
            losses = cfm_loss(model, x1, infill, None, speech, None, speech_offset_s=0.0125 - 16 / 50)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(losses["loss"]).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        update_ema(ema, model, 0.999)

    cuda = device.startswith("cuda")
    step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    params = count_parameters(model)
    return {
        "preset": preset, "params_m": params / 1e6, "batch": f"{batch} x {frames}", "step_s": seconds,
        "frames_per_s": batch * frames / seconds, "peak_gib": peak / 2**30, "state_gib": 5 * 4 * params / 2**30,
        "threads": torch.get_num_threads(), "device": device, "precision": precision,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "paper"], choices=["tiny", "paper"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--batch-frames", type=int, help="frames per batch (default: tiny 1000, paper 250 on CPU)")
    parser.add_argument("--clip-seconds", type=float, default=10.0)
    parser.add_argument("--steps", type=int, help="timed steps (default: tiny 5, paper 1)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        result = child(args.child, args.batch_frames, args.clip_seconds, args.steps, args.device, args.precision)
        print(json.dumps(result))
        return
    load = os.getloadavg()[0]
    print(f"bench_train: device {args.device}, {args.precision}, load average {load:.1f} on {os.cpu_count()} cores")
    print(f"{'preset':>6} {'params':>8} {'batch':>10} {'step s':>8} {'frames/s':>9} {'peak GiB':>9} {'state GiB':>9}")
    for preset in args.presets:
        batch_frames = args.batch_frames or DEFAULTS[preset]["batch_frames"]
        steps = args.steps or DEFAULTS[preset]["steps"]
        command = [sys.executable, __file__, "--child", preset, "--device", args.device, "--precision", args.precision,
                   "--batch-frames", str(batch_frames), "--clip-seconds", str(args.clip_seconds), "--steps", str(steps),
                   "--threads", str(args.threads)]  # fmt: skip
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        print(f"{r['preset']:>6} {r['params_m']:>7.2f}M {r['batch']:>10} {r['step_s']:>8.3f} {r['frames_per_s']:>9.0f} "
              f"{r['peak_gib']:>9.2f} {r['state_gib']:>9.2f}")  # fmt: skip


if __name__ == "__main__":
    main()

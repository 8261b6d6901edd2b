"""Ablation of the paper's seam devices (its Table 2, sec. 3.3-3.4) on the synthetic talking world.

    python bench/bench_seams.py [--steps 400] [--seeds 0 1] [--variants full no_ts ...] [--quick] [--json out.json]

For each variant the small preset (FacEDiTConfig.small) is trained from scratch on the synthetic world of
tests/test_learning.py (`facedit.training.synthetic`: a mouth that follows the speech, a smooth pose that
does not), then infills a one-second span of 8 held-out clips with the pack's sampler (16 steps). Variants:

    full        the model as shipped: local window bias on self- and cross-attention, L_TS (lambda 0.2)
    no_self     no window on self-attention (window = the clip length: every frame sees every frame)
    no_cross    no window on cross-attention (cross_window_s wider than the clip: every frame hears all speech)
    no_windows  neither window
    no_ts       both windows, but no temporal-smoothness loss on x1_hat (lambda_ts = 0)

A window at least as wide as the clip is exactly no bias (the mask allows every pair), so the switches are
the config's own `window` / `cross_window_s`. Figures (normalised units, lower is better, mean over seeds):
mouth and pose span MSE, with the speech-blind baselines (best of linear interpolation / hold / mean for the
mouth, linear interpolation of the boundary frames for the pose); the worst seam ratio (the result's
frame-to-frame change at a seam over the clip's median change, the worse of the two seams; 1 = as smooth as
the clip); and seam excess, | change at the seam - the true change there | (L1 over dims), the motion
analogue of the paper's M_continuity (`facedit.training.validate`'s boundary_excess). The world, the held-out
clips and the sampler seeds are fixed; a seed sets the model's initialisation and its training draws, and
seed 0 of "full" at 600 steps is exactly the model tests/test_learning.py trained before it got its own
quicker recipe (600 steps of 4 crops, lambda_ts 0.6).

Time (1 thread, this project's 2-core CPU): a run of 400 steps takes 2.5-5 min depending on the load, so the
defaults (5 variants, one seed) take 13-25 min; --quick takes seconds. Measured table: README.md ("Seam devices").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from facedit.config import FacEDiTConfig  # noqa: E402
from facedit.training import synthetic  # noqa: E402


@dataclass(frozen=True)
class Variant:
    name: str
    self_window: bool = True
    cross_window: bool = True
    ts_loss: bool = True

    def config(self, clip: int) -> FacEDiTConfig:
        cfg = FacEDiTConfig.small(speech_dim=synthetic.SPEECH_DIM)
        if not self.self_window:
            cfg = cfg.replace(window=clip)
        if not self.cross_window:  # speech of a clip spans at most its own length plus the speech offset
            cfg = cfg.replace(cross_window_s=2 * clip / cfg.fps)
        return cfg


VARIANTS = {
    v.name: v
    for v in (
        Variant("full"),
        Variant("no_self", self_window=False),
        Variant("no_cross", cross_window=False),
        Variant("no_windows", self_window=False, cross_window=False),
        Variant("no_ts", ts_loss=False),
    )
}
COLUMNS = ("mouth", "pose", "worst_seam", "seam_excess")


def run_variant(variant: Variant, seed: int, recipe: synthetic.Recipe, data, clips: int, ode_steps: int) -> dict:
    (motion, speech), held = data
    started = time.perf_counter()
    model = synthetic.make_model(variant.config(recipe.clip), motion, seed=seed)
    recipe = recipe if variant.ts_loss else dataclasses.replace(recipe, lambda_ts=0.0)
    losses = synthetic.train(model, motion, speech, recipe)
    scores = synthetic.span_scores(model, held, synthetic.pinned_sampler(ode_steps), clips=clips, clip=recipe.clip)
    return {
        "variant": variant.name,
        "seed": seed,
        "mouth": scores["model_mouth"],
        "pose": scores["model_pose"],
        "worst_seam": max(scores["seam_in"], scores["seam_out"]),
        "seam_excess": scores["seam_excess"],
        "blind_mouth": min(scores[f"{name}_mouth"] for name in synthetic.BLIND),
        "line_pose": scores["line_pose"],
        "final_loss": sum(losses[-20:]) / len(losses[-20:]),
        "seconds": time.perf_counter() - started,
        "scores": scores,
    }


def summarize(runs: list[dict]) -> list[dict]:
    """One row per variant (in run order): the mean of each figure over seeds and its spread (max - min)."""
    rows = []
    for name in dict.fromkeys(run["variant"] for run in runs):
        mine = [run for run in runs if run["variant"] == name]
        row = {"variant": name, "seeds": [run["seed"] for run in mine]}
        for key in COLUMNS + ("blind_mouth", "line_pose", "seconds"):
            values = [run[key] for run in mine]
            row[key] = statistics.fmean(values)
            row[f"{key}_spread"] = max(values) - min(values)
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    def cell(row: dict, key: str) -> str:
        spread = f" ±{row[f'{key}_spread'] / 2:.3f}" if len(row["seeds"]) > 1 else ""
        return f"{row[key]:.3f}{spread}"

    mark = lambda on: "✓" if on else "✗"  # noqa: E731
    lines = [
        "| variant | self-attn window | cross-attn window | L_TS | mouth error | pose error | worst seam ratio "
        "| seam excess |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        v = VARIANTS[row["variant"]]
        lines.append(
            f"| {v.name} | {mark(v.self_window)} | {mark(v.cross_window)} | {mark(v.ts_loss)} | "
            + " | ".join(cell(row, key) for key in COLUMNS)
            + " |"
        )
    first = rows[0]
    lines.append(
        f"| baselines (speech-blind) | | | | {first['blind_mouth']:.3f} (best blind) | "
        f"{first['line_pose']:.3f} (linear interp.) | | |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=400, help="training steps per variant and seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="model / training seeds")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--clips", type=int, default=8, help="held-out clips scored")
    parser.add_argument("--ode-steps", type=int, default=16, help="sampler steps")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 steps of batch 2, 1 clip, 2 ODE steps")
    parser.add_argument("--json", help="also write every run's figures here")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    if args.clips < 1 or args.ode_steps < 1 or args.threads < 1:
        parser.error("--clips, --ode-steps and --threads must be >= 1")
    recipe = synthetic.Recipe(steps=args.steps)
    clips, ode_steps = args.clips, args.ode_steps
    if args.quick:
        recipe, clips, ode_steps = synthetic.Recipe(steps=3, batch=2), 1, 2
    torch.set_num_threads(args.threads)

    world = synthetic.World()
    data = world.stream(400 if args.quick else 4000, seed=10), world.stream(200, seed=11)
    print(
        f"small preset, {recipe.steps} steps of {recipe.batch} x {recipe.clip} frames, seeds {args.seeds}, "
        f"{clips} held-out clips, {ode_steps} ODE steps, {args.threads} thread(s)",
        flush=True,
    )
    runs = []
    started = time.perf_counter()
    for seed in args.seeds:
        for name in args.variants:
            run = run_variant(VARIANTS[name], seed, recipe, data, clips, ode_steps)
            runs.append(run)
            print(
                f"  {name:<10} seed {seed}: mouth {run['mouth']:.3f} pose {run['pose']:.3f} "
                f"worst seam {run['worst_seam']:.2f} excess {run['seam_excess']:.3f} "
                f"(loss {run['final_loss']:.3f}, {run['seconds']:.0f} s)",
                flush=True,
            )
    rows = summarize(runs)
    print(format_table(rows))
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"recipe": dataclasses.asdict(recipe), "clips": clips, "ode_steps": ode_steps, "runs": runs},
                f,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""JoyVASA prior on this machine (random weights at the published sizes): ms per 100-frame window, and an
edit's motion cost next to its render cost.

    python bench/bench_joyvasa.py [--feature-dims 256 512] [--steps 50] [--threads 1] [--edit-frames 25]
                                  [--skip-render]

Per window JoyVASA runs HuBERT-base once on 4 s of audio (infilling needs a second pass for the previous
window's features unless windows chain) and its denoiser once per diffusion step (a batch of two with guidance).
The published checkpoint's width is read from its weights at load time; both candidate widths are timed.
The render figure is LivePortrait's warp + decode at official size for the frames an edit re-renders.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facedit.priors.joyvasa import JoyVASAConfig, JoyVASANet, denoise_window  # noqa: E402


def timed(fn, iters: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - start) / iters


def time_window(net: JoyVASANet, args: argparse.Namespace) -> float:
    """Print one width's figures; return the ms of one 100-frame infill window (2 HuBERT passes + sampling)."""
    cfg = net.cfg
    audio = torch.randn(1, cfg.window_samples) * 0.1
    x = torch.randn(2, cfg.n_motions, cfg.motion_feat_dim)
    prev = torch.randn(2, cfg.n_prev_motions, cfg.motion_feat_dim)
    prev_a = torch.randn(2, cfg.n_prev_motions, cfg.feature_dim)
    step = torch.full((2,), 10)
    known = torch.zeros(1, cfg.n_motions, cfg.motion_feat_dim)
    imposed = torch.zeros_like(known, dtype=torch.bool)
    imposed[:, :30] = True
    steps = list(range(args.steps, -1, -1))
    with torch.inference_mode():
        feats = net.audio_features(audio)
        t_audio = timed(lambda: net.audio_features(audio), args.iters)
        t_eval = timed(lambda: net.denoising_net(x, feats.expand(2, -1, -1), prev, prev_a, step), 5 * args.iters)
        t_window = timed(
            lambda: denoise_window(net, feats, prev[:1], prev_a[:1], known, imposed, timesteps=steps, guidance=1.8), 1
        )
    total = 2 * t_audio + t_window
    params = sum(p.numel() for n, p in net.named_parameters() if not n.startswith("audio_encoder."))
    print(
        f"feature_dim {cfg.feature_dim:4d} ({params / 1e6:.1f}M denoiser parameters): HuBERT on 4 s "
        f"{1000 * t_audio:6.0f} ms, denoiser evaluation (guidance batch of 2) {1000 * t_eval:6.1f} ms, "
        f"{args.steps}-step window {1000 * t_window:6.0f} ms; one 100-frame infill window {1000 * total:6.0f} ms",
        flush=True,
    )
    return 1000 * total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feature-dims", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--steps", type=int, default=50, help="denoising steps per window (JoyVASA's own: 50)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iters", type=int, default=2)
    parser.add_argument("--edit-frames", type=int, default=25, help="frames one edit re-renders (about 1 s)")
    parser.add_argument("--skip-render", action="store_true")
    args = parser.parse_args()
    from transformers import HubertConfig, HubertModel

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu {torch.backends.cpu.get_cpu_capability()}"
    )
    hubert = HubertModel(HubertConfig()).eval()  # chinese-hubert-base has HuBERT-base's sizes
    motion_ms = {}
    for dim in args.feature_dims:
        motion_ms[dim] = time_window(JoyVASANet(JoyVASAConfig(feature_dim=dim, n_diff_steps=max(50, args.steps)),
                                                hubert).eval(), args)  # fmt: skip
    if args.skip_render:
        return
    from facedit.liveportrait import LivePortrait, LivePortraitConfig

    lp = LivePortrait.random(LivePortraitConfig())
    with torch.inference_mode():
        feats = lp.appearance(torch.rand(1, 3, 256, 256))
        kp_s = torch.rand(1, 21, 3) * 0.6 - 0.3
        t_render = timed(lambda: lp.warp_decode(feats, kp_s, kp_s + 0.01), 1)
    render = args.edit_frames * t_render
    print(f"LivePortrait warp + decode: {1000 * t_render:.0f} ms per frame (fp32, official size)")
    for dim, ms in motion_ms.items():
        share = 100 * ms / 1000 / (ms / 1000 + render)
        print(
            f"an edit re-rendering {args.edit_frames} frames (one window): motion {ms / 1000:.1f} s "
            f"(feature_dim {dim}) vs render {render:.1f} s -> motion is {share:.0f}% of the total"
        )


if __name__ == "__main__":
    main()

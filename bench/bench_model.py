"""Speed of the FacEDiT backbone and sampler on this machine.

Prints the parameter count; this machine's dense-matmul throughput; and for each motion length and
dtype: FLOPs and milliseconds per network evaluation, alone and as a sampler step (whose speech side
is prepared once per sample); the achieved fraction of the matmul throughput; and milliseconds per
full N-step sample (measured, or with --quick extrapolated from the step time, which the sampler's
overhead barely exceeds). Next to each "% of matmul" stands the shape ceiling: the same fraction for the
network's linears alone at the shapes it runs, timed beside it (`ShapeCeiling`). Both are timed inside
`facedit.accel.fused.prepacked()`, on weights packed once for their row count, as `sample` runs them. --compile
adds the sampler step through torch.compile (`facedit.accel.compiling`).

    python bench/bench_model.py                       # paper preset, 10 s and 60 s, float32 and bfloat16
    python bench/bench_model.py --quick --evals 2     # cheaper: no full samples
    python bench/bench_model.py --seconds 600 --dtypes float32 --quick   # 10 minutes of motion
    python bench/bench_model.py --quick --threads 1 --compile            # eager and compiled side by side
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from facedit.accel import compiling, fused  # noqa: E402
from facedit.accel.fused import Linear  # noqa: E402
from facedit.config import FacEDiTConfig  # noqa: E402
from facedit.flow import sample  # noqa: E402
from facedit.liveportrait.layers import native_low_precision  # noqa: E402
from facedit.model import FacEDiT, count_parameters  # noqa: E402

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class Matmul:
    """One big F.linear, the op the model is made of, as the yardstick of this machine's throughput.

    (On CPUs without native bfloat16, `a @ b` in bfloat16 takes a path ~20x slower than F.linear's
    oneDNN kernel, so a plain matmul would understate what the model can reach.)
    """

    def __init__(self, dtype: torch.dtype, device: str, size: int = 2048):
        self.device, self.flops = device, 2 * size**3
        self.a = torch.randn(size, size, device=device).to(dtype)
        self.b = torch.randn(size, size, device=device).to(dtype)
        self.bias = torch.zeros(size, device=device).to(dtype)
        self.flops_per_second()

    def flops_per_second(self, repeats: int = 1) -> float:
        times = []
        for _ in range(repeats):
            _sync(self.device)
            start = time.perf_counter()
            F.linear(self.a, self.b, self.bias)
            _sync(self.device)
            times.append(time.perf_counter() - start)
        return self.flops / min(times)


class ShapeCeiling:
    """The network's own linears alone, at the shapes one evaluation runs (rows = batch x frames): the
    fraction of the matmul yardstick that the model's matmuls themselves reach, which bounds the whole
    network's figure (at 250 rows a bfloat16 matmul is far from the 2048^3 rate, at 1500 it is near)."""

    def __init__(self, config: FacEDiTConfig, rows: int, dtype: torch.dtype, device: str):
        dim, ffn = config.dim, config.ffn_dim
        # per block: self q, k, v, out and cross q, out (speech keys/values are prepared once), FFN in and out
        shapes = [(dim, dim, 6 * config.depth), (dim, ffn, config.depth), (ffn, dim, config.depth)]
        self.layers = [
            (Linear(i, o).to(device, dtype), torch.randn(1, rows, i).to(device, dtype), n) for i, o, n in shapes
        ]
        self.flops = sum(2 * rows * i * o * n for i, o, n in shapes)
        self.device = device
        self.seconds()

    def seconds(self) -> float:
        """Seconds for one evaluation's worth of these linears (each shape timed once, times its count)."""
        total = 0.0
        with torch.no_grad():
            for layer, x, n in self.layers:
                _sync(self.device)
                start = time.perf_counter()
                layer(x)
                _sync(self.device)
                total += (time.perf_counter() - start) * n
        return total


def network_flops(model: FacEDiT, inputs: tuple, kwargs: dict | None = None) -> int:
    """Matmul/conv FLOPs from torch's counter plus the attention FLOPs it cannot see on CPU."""
    attention = 0
    original = F.scaled_dot_product_attention

    def counted(q, k, v, *args, **kwargs):
        nonlocal attention
        attention += 4 * q[..., 0].numel() * k.shape[-2] * q.shape[-1]  # QK^T and AV as executed
        return original(q, k, v, *args, **kwargs)

    F.scaled_dot_product_attention = counted
    fused_available = fused._has_onednn_linear
    fused._has_onednn_linear = lambda: False  # the counter does not see oneDNN's fused linear: count F.linear's
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*inputs, **(kwargs or {}))
    finally:
        F.scaled_dot_product_attention = original
        fused._has_onednn_linear = fused_available
    return counter.get_total_flops() + attention


def _paired_time(
    fn, fn_args: tuple, fn_kwargs: dict, repeats: int, matmul: Matmul, flops: int, ceiling: ShapeCeiling
) -> tuple[float, float, float]:
    """Median seconds per call of fn, the median over calls of its FLOP rate as a fraction of the matmul
    rate measured just before it (on a shared machine the two then see the same load), and the median
    of the shape ceiling's rate as the same fraction, timed next to it too."""
    times, fractions, ceilings = [], [], []
    for _ in range(repeats):
        peak = matmul.flops_per_second()
        ceilings.append(ceiling.flops / ceiling.seconds() / peak)
        _sync(matmul.device)
        start = time.perf_counter()
        fn(*fn_args, **fn_kwargs)
        _sync(matmul.device)
        times.append(time.perf_counter() - start)
        fractions.append(flops / times[-1] / peak)
    return statistics.median(times), statistics.median(fractions), statistics.median(ceilings)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _compiled_step(args, model, inputs: tuple, cache, matmul: Matmul, flops: int, ceiling: ShapeCeiling) -> str:
    """The sampler step through `facedit.accel.compiling.compiled`: a clause of the setting's line ('' without
    --compile)."""
    if not args.compile:
        return ""
    reason = compiling.unavailable_reason(args.device)
    if reason is not None:
        return f"; compiled: unavailable ({reason})"
    network = compiling.compiled(model)
    start = time.perf_counter()
    network(*inputs, cache=cache)  # compiles
    first = time.perf_counter() - start
    if getattr(network, "fn", None) is None:
        return "; compiled: compilation failed, eager (see the log)"
    per_step, fraction, ceiling_fraction = _paired_time(
        network, inputs, {"cache": cache}, args.evals, matmul, flops, ceiling
    )
    return (
        f"; compiled {per_step * 1e3:.0f} ms/eval = {fraction:.0%} of matmul (shape ceiling {ceiling_fraction:.0%}; "
        f"first call {first:.0f} s with the compilation)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=("paper", "tiny"), default="paper")
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0], help="motion lengths")
    parser.add_argument("--dtypes", nargs="+", choices=sorted(DTYPES), default=["float32", "bfloat16"])
    parser.add_argument("--steps", type=int, default=32, help="sampler steps for the full-sample timing")
    parser.add_argument("--evals", type=int, default=3, help="timed network evaluations per setting")
    parser.add_argument("--quick", action="store_true", help="extrapolate full samples instead of running them")
    parser.add_argument("--full-max-seconds", type=float, default=10.0, help="longer motion is always extrapolated")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="also time the sampler step through torch.compile")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    config = getattr(FacEDiTConfig, args.preset)()
    torch.manual_seed(0)
    model = FacEDiT(config).eval()
    print(f"FacEDiT {args.preset}: {count_parameters(model):,} parameters ({count_parameters(model) / 1e6:.1f}M), "
          f"adaln={config.adaln}, depth={config.depth}, dim={config.dim}, ffn={config.ffn_dim}")  # fmt: skip
    print(f"device {args.device}, {torch.get_num_threads()} threads, torch {torch.__version__}")

    step_times: dict[tuple[str, float], float] = {}
    for name in args.dtypes:
        dtype = DTYPES[name]
        if args.device == "cpu" and dtype != torch.float32 and not native_low_precision(dtype):
            print(f"\n[{name}] this CPU has no native {name} kernels (AVX-512 BF16 / AMX class): {name} runs on "
                  "slow fallback kernels here, so float32 is the precision to use on it")  # fmt: skip
        matmul = Matmul(dtype, args.device)
        peak = matmul.flops_per_second(repeats=10)
        print(f"\n[{name}] dense matmul (F.linear 2048^3): {peak / 1e9:.1f} GFLOP/s (best of 10; the fractions "
              "below are against the matmul timed next to each evaluation)")  # fmt: skip
        model.to(args.device, dtype)
        for seconds in args.seconds:
            frames = round(seconds * config.fps)
            speech_frames = int(seconds * config.speech_frame_rate)
            g = torch.Generator().manual_seed(0)
            x = torch.randn(1, frames, config.motion_dim, generator=g).to(args.device)
            speech = torch.randn(1, speech_frames, config.speech_dim, generator=g).to(args.device)
            t = torch.full((1,), 0.5, device=args.device)
            inputs = (x, x, speech, t)
            flops = network_flops(model, inputs)  # this forward is also the warm-up
            with torch.no_grad():
                cache = model.prepare(speech, frames)  # what the sampler does once per sample
                step_flops = network_flops(model, (x, x, None, t), {"cache": cache})
            # as in `sample`: the weights packed once for this row count, by the calls before the timing
            with fused.prepacked(), torch.no_grad():
                ceiling = ShapeCeiling(config, frames, dtype, args.device)
                ceiling.seconds()
                for _ in range(2):
                    model(*inputs)
                    model(x, x, None, t, cache=cache)
                per_eval, fraction, eval_ceiling = _paired_time(model, inputs, {}, args.evals, matmul, flops, ceiling)
                per_step, step_fraction, step_ceiling = _paired_time(
                    model, (x, x, None, t), {"cache": cache}, args.evals, matmul, step_flops, ceiling
                )
                compiled_line = _compiled_step(args, model, (x, x, None, t), cache, matmul, step_flops, ceiling)
            step_times[name, seconds] = per_step
            path = "block-local" if frames > model.dense_max_frames else "dense"
            line = (
                f"  {seconds:g} s = {frames} frames ({path} attention): {flops / 1e9:.1f} GFLOP/eval, "
                f"{per_eval * 1e3:.0f} ms/eval, {flops / per_eval / 1e9:.1f} GFLOP/s = {fraction:.0%} of matmul "
                f"(shape ceiling {eval_ceiling:.0%}); with the speech prepared once (sampler steps) "
                f"{step_flops / 1e9:.1f} GFLOP, {per_step * 1e3:.0f} ms/eval = {step_fraction:.0%} of matmul "
                f"(shape ceiling {step_ceiling:.0%}){compiled_line}"
            )
            mask = torch.ones(1, frames, dtype=torch.bool)
            if args.quick or seconds > args.full_max_seconds:
                line += f"; {args.steps}-step sample ~{per_step * args.steps * 1e3:.0f} ms (extrapolated)"
            else:
                start = time.perf_counter()
                sample(model, x, mask, speech, steps=args.steps)
                _sync(args.device)
                line += f"; {args.steps}-step sample {(time.perf_counter() - start) * 1e3:.0f} ms (measured)"
            print(line, flush=True)
    if "float32" in args.dtypes and len(args.dtypes) > 1:
        print()
        for (name, seconds), per_step in step_times.items():
            if name != "float32":
                ratio = step_times["float32", seconds] / per_step
                print(f"{name} sampler step at {seconds:g} s: {ratio:.2f}x the speed of float32")


if __name__ == "__main__":
    main()

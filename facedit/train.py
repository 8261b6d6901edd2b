"""Train FacEDiT on a cache written by ``facedit/preprocess.py`` (paper sections 3.2 and 3.4).

    python facedit/train.py --preset paper|small|tiny --data CACHE --out RUN [options]
    python -m facedit.train ...                                   (the same)
    torchrun --nproc_per_node N facedit/train.py ...              (DistributedDataParallel; multi-node with
                                                                   torchrun's --nnodes/--rdzv-* options)
    python facedit/train.py --out RUN --resume [CHECKPOINT]       (continue exactly where it stopped)
    python facedit/train.py --export-from CHECKPOINT --export model.safetensors

Objective: CFM + lambda_TS temporal smoothness (``facedit.flow.cfm_loss``) on random infill masks
(``facedit.data.random_infill_mask``: editing-like inner spans and generation-like suffixes). AdamW with
warm-up then decay, gradient clipping, EMA of the weights, bf16 autocast on GPUs that have it (fp16 with a
gradient scaler otherwise), fp32 on CPU. Batches hold up to ``--batch-frames`` motion frames per process,
padding counted; padded frames are masked out of the network and the loss. Motion statistics come from the
training clips and travel in the model (and so in every checkpoint and the exported file).

Run folder: config.json, log.jsonl (one line per logged step), tensorboard/ (scalars), checkpoints/
(training state every --ckpt-every steps, see ``facedit.training.state``), val.jsonl, summary.json and
facedit.safetensors (the EMA weights in the format ``facedit.checkpoint.load_facedit`` reads).

Exactness of resume: every batch and mask is a function of (seed, epoch, index), the flow noise and times
of step k come from a generator seeded by (seed, k, rank), and the RNG states of torch (CPU and CUDA),
numpy and python of every rank are saved (they drive dropout). On CPU a resumed run repeats the
uninterrupted run's losses bit for bit (same thread count); on GPU up to the nondeterminism of its kernels.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: python facedit/train.py (also under torchrun)
    _here = Path(__file__).resolve().parent  # on sys.path for scripts; its modules must not shadow top-level names
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))
    __package__ = "facedit"  # noqa: A001

import argparse  # noqa: E402
import contextlib  # noqa: E402
import copy  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

from .checkpoint import save_facedit  # noqa: E402
from .cli import run_reporting  # noqa: E402
from .config import FacEDiTConfig  # noqa: E402
from .data import (  # noqa: E402
    FrameBudgetSampler,
    ManifestEntry,
    MaskConfig,
    ShardDataset,
    collate,
    read_manifest,
    read_shard,
)
from .flow import cfm_loss  # noqa: E402
from .model import FacEDiT, count_parameters  # noqa: E402
from .normalization import compute_motion_stats  # noqa: E402
from .training import distributed  # noqa: E402
from .training.config import FREE_ON_RESUME, TrainConfig  # noqa: E402
from .training.ema import ema_decay, update_ema  # noqa: E402
from .training.schedule import learning_rate  # noqa: E402
from .training.state import (  # noqa: E402
    capture_rng,
    checkpoint_path,
    latest_good_checkpoint,
    list_checkpoints,
    load_state,
    prune_checkpoints,
    remove_stale_temps,
    restore_rng,
    save_state,
)
from .training.validate import validate  # noqa: E402

log = logging.getLogger("facedit.train")


def derived_seed(*parts: int | str) -> int:
    """A 63-bit seed from the run seed and labels (step, rank, purpose)."""
    words = [int(p) if isinstance(p, int) else int.from_bytes(hashlib.sha1(p.encode()).digest()[:4], "little")
             for p in parts]  # fmt: skip
    return int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0] >> 1)


def split_clips(entries: Sequence[ManifestEntry], val_clips: int) -> tuple[list[ManifestEntry], list[ManifestEntry]]:
    """(train, validation): the validation clips are the first ``val_clips`` in the order of sha1(id), so the
    split depends only on the set of clip ids, not on the manifest's order."""
    if len(entries) < 2 and val_clips:
        raise ValueError(f"{len(entries)} clip(s) cannot be split into training and validation; use --val-clips 0")
    ranked = sorted(entries, key=lambda e: hashlib.sha1(e.id.encode()).hexdigest())
    held = {e.id for e in ranked[: min(val_clips, len(entries) - 1)]}
    return [e for e in entries if e.id not in held], [e for e in entries if e.id in held]


def weights_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices and conv kernels only (not on biases, norms or the adaLN offsets)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2 and p.shape[0] > 1]
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def _model_config(cfg: TrainConfig, dataset: ShardDataset) -> FacEDiTConfig:
    facts = {
        "speech_dim": dataset.speech_dim,
        "fps": float(dataset.fps),
        "speech_frame_rate": dataset.speech_frame_rate,
        "speech_offset_s": dataset.speech_offset_s,
    }
    clash = {k: (cfg.model[k], v) for k, v in facts.items() if k in cfg.model and cfg.model[k] != v}
    if clash:
        raise ValueError(f"model settings {clash} (given, data) contradict the cache {cfg.data}")
    return cfg.model_config(**facts)


def _write_jsonl(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _truncate_log(path: Path, step: int) -> None:
    """Drop lines of steps after ``step`` (written by a run that was stopped after its last checkpoint)."""
    if path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
        path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def train(cfg: TrainConfig, *, resume: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Run (or continue, from the checkpoint ``resume``) the training ``cfg`` describes; returns the summary
    that is also written to OUT/summary.json. Under torchrun every process calls this."""
    info = distributed.setup(cfg.device)
    try:
        return _train(cfg, info, resume, progress)
    finally:
        distributed.teardown(info)


def _train(cfg: TrainConfig, info: distributed.DistInfo, resume: str | Path | None, progress: bool) -> dict[str, Any]:
    out, device = Path(cfg.out), info.device
    state = load_state(resume) if resume is not None else None
    if state is None and list_checkpoints(out):
        raise ValueError(f"{out} already holds checkpoints; pass --resume to continue that run or choose another --out")

    entries = read_manifest(cfg.data)
    train_entries, val_entries = split_clips(entries, cfg.val_clips)
    context_s = cfg.model_config().cross_window_s
    dataset = ShardDataset(cfg.data, train_entries, context_s=context_s, mask=cfg.mask)
    val_set = ShardDataset(cfg.data, val_entries, context_s=context_s) if val_entries else None
    model_cfg = _model_config(cfg, dataset)
    if state is not None:
        saved = FacEDiTConfig.from_dict(json.loads(state["model_config"]))
        if saved != model_cfg:
            raise ValueError(f"{resume}: the checkpoint's model {saved} differs from this run's {model_cfg}")
    fps = float(dataset.fps)
    max_frames = max(2, round(cfg.max_seconds * fps))
    sampler = FrameBudgetSampler(
        dataset.lengths, batch_frames=cfg.batch_frames, max_frames=max_frames,
        min_frames=min(max_frames, max(2, round(cfg.min_seconds * fps))), seed=cfg.seed, rank=info.rank,
        world_size=info.world_size, start_multiple=dataset.start_multiple,
    )  # fmt: skip

    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    model = FacEDiT(model_cfg)
    if state is not None:
        model.load_state_dict(state["model"])
    else:
        stats = compute_motion_stats(read_shard(dataset.cache / e.shard)[0] for e in train_entries)
        model.set_motion_stats(*stats)
    model.to(device)
    ema = copy.deepcopy(model).eval().requires_grad_(False) if info.is_main else None
    if ema is not None and state is not None:
        ema.load_state_dict(state["ema"])
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas)
    amp_dtype = _amp_dtype(cfg.precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    loader_rng = torch.Generator().manual_seed(cfg.seed)
    step = 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        step = int(state["step"])
        sampler.set_position(state["sampler"]["epoch"], state["sampler"]["index"])
        if len(state["rng"]) == info.world_size:
            restore_rng(state["rng"][info.rank])
            loader_rng.set_state(state["rng"][info.rank]["loader"])
        else:
            log.warning("the checkpoint was written by %d processes, this run has %d: data order and dropout noise "
                        "continue differently from the original run", len(state["rng"]), info.world_size)  # fmt: skip
            state = {**state, "rng": []}
    if state is None or not state["rng"]:
        torch.manual_seed(derived_seed(cfg.seed, "torch", info.rank, step))
        np.random.seed(derived_seed(cfg.seed, "numpy", info.rank, step) % 2**32)
        random.seed(derived_seed(cfg.seed, "python", info.rank, step))

    net: torch.nn.Module = model
    if info.enabled:
        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=cfg.speech_drop_prob > 0,  # a batch whose speech is all dropped skips layers
        )  # fmt: skip
    # Its own generator: a loader draws a seed from torch's global RNG whenever it starts an iteration, which
    # would shift the dropout noise of a resumed run. Batches do not depend on it (see facedit.data).
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, collate_fn=collate, num_workers=cfg.workers,
        pin_memory=device.type == "cuda", generator=loader_rng,
    )  # fmt: skip

    writer = bar = None
    log_path, val_path = out / "log.jsonl", out / "val.jsonl"
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(
            json.dumps({"train": cfg.to_dict(), "model": model_cfg.to_dict()}, indent=2), encoding="utf-8"
        )
        _truncate_log(log_path, step)
        _truncate_log(val_path, step)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            raise ImportError("training logs TensorBoard scalars: pip install tensorboard") from error
        from tqdm import tqdm

        writer = SummaryWriter(str(out / "tensorboard"), purge_step=step if step else None)
        bar = tqdm(total=cfg.steps, initial=step, desc="train", unit="step", disable=not progress, dynamic_ncols=True)
        log.info(
            "FacEDiT %s: %.2fM parameters, %d training / %d validation clips, %d process(es) on %s, %s",
            cfg.preset, count_parameters(model) / 1e6, len(train_entries), len(val_entries), info.world_size,
            device, "fp32" if amp_dtype is None else str(amp_dtype).replace("torch.", ""),
        )  # fmt: skip

    def save_checkpoint() -> None:
        rng = distributed.all_gather_objects(info, {**capture_rng(), "loader": loader_rng.get_state()})
        if info.is_main:
            save_state(checkpoint_path(out, step), {
                "step": step, "world_size": info.world_size, "train_config": cfg.to_json(),
                "model_config": json.dumps(model_cfg.to_dict()), "model": model.state_dict(), "ema": ema.state_dict(),
                "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict() if scaler.is_enabled() else {},
                "sampler": {"epoch": sampler.epoch, "index": sampler.index}, "rng": rng,
            })  # fmt: skip
            prune_checkpoints(out, cfg.keep_checkpoints)

    def run_validation() -> None:
        if info.is_main and val_set is not None:
            scores = validate(ema, val_set, range(len(val_set)), max_frames=max_frames, ode_steps=cfg.val_ode_steps,
                              seed=cfg.seed)  # fmt: skip
            for name, value in scores.items():
                writer.add_scalar(f"val/{name}", value, step)
            _write_jsonl(val_path, {"step": step, **scores})
            bar.write(f"step {step} validation: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
        distributed.barrier(info)

    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, cfm, ts, real frames since the last log
    window_start, window_steps, last_saved = time.perf_counter(), 0, step
    while step < cfg.steps:
        for batch in loader:
            lr = learning_rate(step, peak=cfg.lr, warmup=cfg.warmup, total=cfg.steps, decay=cfg.decay,
                               min_ratio=cfg.min_lr_ratio)  # fmt: skip
            for group in optimizer.param_groups:
                group["lr"] = lr
            motion = batch["motion"].to(device, non_blocking=True)
            motion_mask = batch["motion_mask"].to(device, non_blocking=True)
            generator = torch.Generator().manual_seed(derived_seed(cfg.seed, "flow", info.rank, step))
            x1 = model.normalize(motion)
            autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
            with autocast:
                losses = cfm_loss(
                    net, x1, batch["infill_mask"].to(device), motion_mask, batch["speech"].to(device),
                    batch["speech_mask"].to(device), speech_frame_rate=batch["speech_frame_rate"],
                    speech_offset_s=batch["speech_offset_s"], lambda_ts=cfg.lambda_ts,
                    speech_drop_prob=cfg.speech_drop_prob, generator=generator,
                )  # fmt: skip
            if not torch.isfinite(losses["loss"]):
                raise FloatingPointError(
                    f"loss is {losses['loss'].item()} at step {step} on rank {info.rank}; lower --lr or use bf16/fp32"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(losses["loss"]).backward()
            scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            step += 1
            sampler.index += 1
            if ema is not None:
                update_ema(ema, model, ema_decay(step, cfg.ema_decay, cfg.ema_warmup))

            sums[:3] += torch.stack([losses["loss"], losses["cfm"], losses["ts"]]).detach().double()
            sums[3] += motion_mask.sum()
            window_steps += 1
            if step % cfg.log_every == 0 or step == cfg.steps:
                total = distributed.all_reduce_sum(info, sums)
                elapsed = time.perf_counter() - window_start
                if info.is_main:
                    mean = (total[:3] / (window_steps * info.world_size)).tolist()
                    frames = float(total[3])
                    record = {
                        "step": step, "loss": mean[0], "cfm": mean[1], "ts": mean[2], "lr": lr,
                        "grad_norm": float(grad_norm), "frames_per_s": frames / elapsed,
                        "steps_per_s": window_steps / elapsed,
                    }  # fmt: skip
                    _write_jsonl(log_path, record)
                    for name, value in record.items():
                        if name != "step":
                            writer.add_scalar(f"train/{name}", value, step)
                    bar.set_postfix(loss=f"{mean[0]:.4f}", lr=f"{lr:.2e}")
                sums.zero_()
                window_start, window_steps = time.perf_counter(), 0
            if bar is not None:
                bar.update(1)
            if step % cfg.ckpt_every == 0:
                save_checkpoint()
                last_saved = step
            if step % cfg.val_every == 0:
                run_validation()
            if step >= cfg.steps:
                break
        else:
            sampler.set_position(sampler.epoch + 1, 0)

    if last_saved != step:
        save_checkpoint()
    digests = distributed.all_gather_objects(info, weights_digest(model))
    summary: dict[str, Any] = {"step": step, "world_size": info.world_size, "weights_sha256_per_rank": digests}
    if info.is_main:
        export = Path(cfg.export) if cfg.export else out / "facedit.safetensors"
        export_model(model, ema.state_dict(), export, step=step, cfg=cfg)
        summary["export"] = str(export)
        (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        bar.close()
        writer.close()
        if len(set(digests)) != 1:
            raise RuntimeError(f"ranks ended with different weights: {digests}")
    return summary


def export_model(
    model: FacEDiT, ema_state: dict[str, torch.Tensor], path: Path, *, step: int, cfg: TrainConfig
) -> Path:
    """The EMA weights as the single .safetensors inference file (config + motion statistics in its metadata)."""
    metadata = {"step": str(step), "train_config": cfg.to_json(), "data": str(cfg.data)}
    return save_facedit(path, model, state_dict=ema_state, weights="ema", metadata=metadata)


def export_checkpoint(checkpoint: str | Path, path: str | Path) -> Path:
    """Write the EMA weights of a training checkpoint as the .safetensors inference file."""
    state = load_state(checkpoint)
    cfg = TrainConfig.from_dict(json.loads(state["train_config"]))
    with torch.device("meta"):
        model = FacEDiT(FacEDiTConfig.from_dict(json.loads(state["model_config"])))
    model.load_state_dict(state["ema"], assign=True)
    return export_model(model, state["ema"], Path(path), step=int(state["step"]), cfg=cfg)


# ------------------------------------------------------------------------------------------------------ CLI


def _pair(text: str) -> tuple[float, float]:
    low, high = (float(v) for v in text.split(","))
    return low, high


def _model_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--model expects KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


# CLI option -> TrainConfig field (options not listed map by replacing - with _)
_RENAMED = {"no_ema_warmup": "ema_warmup"}
_MASK_OPTIONS = ("generation_prob", "edit_fraction", "prompt_fraction", "max_edit_spans")


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig(data="", out="")
    p = argparse.ArgumentParser(
        prog="python facedit/train.py", description="Train FacEDiT on a preprocessed cache (see the module docstring).",
        argument_default=argparse.SUPPRESS,
    )  # fmt: skip
    p.add_argument("--preset", choices=("paper", "small", "tiny"), help=f"model size (default {d.preset})")
    p.add_argument("--data", help="cache folder written by facedit/preprocess.py")
    p.add_argument("--out", help="run folder (checkpoints, logs, exported model)")
    p.add_argument("--model", action="append", type=_model_override, metavar="KEY=VALUE",
                   help="override a FacEDiTConfig field of the preset, e.g. --model depth=12 (repeatable)")  # fmt: skip
    p.add_argument("--steps", type=int, help=f"optimiser steps in total (default {d.steps})")
    p.add_argument("--batch-frames", type=int, help=f"motion frames per batch and process (default {d.batch_frames})")
    p.add_argument("--max-seconds", type=float, help=f"longest crop (default {d.max_seconds})")
    p.add_argument("--min-seconds", type=float, help=f"shortest crop of longer clips (default {d.min_seconds})")
    p.add_argument("--lr", type=float, help=f"peak learning rate (default {d.lr})")
    p.add_argument("--warmup", type=int, help=f"linear warm-up steps (default {d.warmup})")
    p.add_argument("--decay", choices=("linear", "cosine", "constant"), help=f"after warm-up (default {d.decay})")
    p.add_argument("--min-lr-ratio", type=float, help="final lr as a share of the peak (default 0)")
    p.add_argument("--weight-decay", type=float, help=f"AdamW weight decay (default {d.weight_decay})")
    p.add_argument("--grad-clip", type=float, help=f"gradient norm clip (default {d.grad_clip})")
    p.add_argument("--ema-decay", type=float, help=f"(default {d.ema_decay})")
    p.add_argument("--no-ema-warmup", action="store_false", help="use the full EMA decay from the first step")
    p.add_argument("--lambda-ts", type=float, help=f"temporal smoothness weight (default {d.lambda_ts})")
    p.add_argument("--speech-drop-prob", type=float, help="speech dropout for classifier-free guidance (default 0)")
    p.add_argument("--generation-prob", type=float, help=f"share of suffix masks (default {d.mask.generation_prob})")
    p.add_argument("--edit-fraction", type=_pair, metavar="LOW,HIGH", help="masked share of inner-span masks")
    p.add_argument("--prompt-fraction", type=_pair, metavar="LOW,HIGH", help="known prefix share of suffix masks")
    p.add_argument(
        "--max-edit-spans", type=int, help=f"inner spans per mask, at most (default {d.mask.max_edit_spans})"
    )
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), help="auto: bf16/fp16 on GPU, fp32 on CPU")
    p.add_argument("--device", help="auto (default), cpu, cuda")
    p.add_argument("--seed", type=int, help="run seed (default 0)")
    p.add_argument("--workers", type=int, help=f"data loader processes per rank (default {d.workers})")
    p.add_argument("--log-every", type=int, help=f"steps between logged scalars (default {d.log_every})")
    p.add_argument("--ckpt-every", type=int, help=f"steps between checkpoints (default {d.ckpt_every})")
    p.add_argument("--val-every", type=int, help=f"steps between validations (default {d.val_every})")
    p.add_argument("--val-clips", type=int, help=f"held-out clips (default {d.val_clips}; 0 = no validation)")
    p.add_argument("--val-ode-steps", type=int, help=f"sampler steps in validation (default {d.val_ode_steps})")
    p.add_argument("--keep-checkpoints", type=int, help=f"newest checkpoints kept (default {d.keep_checkpoints})")
    p.add_argument("--export", help="final EMA .safetensors (default OUT/facedit.safetensors)")
    p.add_argument("--resume", nargs="?", const="latest",
                   help="continue from CHECKPOINT (default: the newest in OUT/checkpoints)")  # fmt: skip
    p.add_argument("--export-from", metavar="CHECKPOINT", help="only export a checkpoint's EMA weights to --export")
    p.add_argument("--threads", type=int, help="torch CPU threads per process")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="on an error, show the full traceback")
    return p


def config_from_args(args: argparse.Namespace, base: TrainConfig | None) -> TrainConfig:
    """The saved config of a resumed run (or the defaults) with the options given on the command line."""
    given = {_RENAMED.get(k, k): v for k, v in vars(args).items()
             if k not in ("resume", "export_from", "threads", "no_progress", "debug")}  # fmt: skip
    if "model" in given:
        given["model"] = {**(base.model if base else {}), **dict(given["model"])}
    mask = {k: given.pop(k) for k in _MASK_OPTIONS if k in given}
    if base is None:
        for name in ("data", "out"):
            if name not in given:
                raise SystemExit(f"train.py: --{name} is required (unless resuming)")
        base = TrainConfig(data=given["data"], out=given["out"], preset=given.get("preset", "paper"))
    if mask:
        import dataclasses

        given["mask"] = dataclasses.replace(base.mask, **mask) if base else MaskConfig(**mask)
    return base.replace(**given)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_reporting(lambda: _run(args), getattr(args, "debug", False), "train.py: error")


def _run(args: argparse.Namespace) -> int:
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    if getattr(args, "export_from", None):
        if not getattr(args, "export", None):
            raise SystemExit("train.py: --export-from needs --export PATH.safetensors")
        print(export_checkpoint(args.export_from, args.export))
        return 0
    resume = getattr(args, "resume", None)
    base = None
    if resume is not None:
        if resume == "latest":
            if not getattr(args, "out", None):
                raise SystemExit("train.py: --resume without a path needs --out RUN")
            remove_stale_temps(args.out)
            try:
                found = latest_good_checkpoint(args.out)
            except ValueError as error:
                raise SystemExit(f"train.py: {error}") from None
            if found is None:
                raise SystemExit(f"train.py: no checkpoint in {Path(args.out) / 'checkpoints'} to resume from")
            resume, state = found
        else:
            state = load_state(resume)
        base = TrainConfig.from_dict(json.loads(state["train_config"]))
        if not getattr(args, "out", None):
            args.out = str(Path(resume).resolve().parents[1])
    cfg = config_from_args(args, base)
    if base is not None:
        changed = sorted(k for k, v in cfg.to_dict().items() if k not in FREE_ON_RESUME and base.to_dict()[k] != v)
        if changed:
            log.warning("resuming with changed %s: the continuation will not repeat the original run", changed)
    train(cfg, resume=resume, progress=not getattr(args, "no_progress", False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

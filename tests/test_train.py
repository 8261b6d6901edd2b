"""Training: schedule, EMA, state files, config, a learning run, DDP on CPU via torchrun, kill-and-resume."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from _train_helpers import write_synthetic_cache
from safetensors import safe_open

from facedit.checkpoint import load_facedit, read_facedit_metadata
from facedit.data import ManifestEntry, read_manifest, read_shard
from facedit.normalization import compute_motion_stats
from facedit.train import build_parser, config_from_args, export_checkpoint, main, split_clips, train
from facedit.training.config import TrainConfig
from facedit.training.ema import ema_decay, update_ema
from facedit.training.schedule import learning_rate
from facedit.training.state import (
    capture_rng,
    checkpoint_path,
    list_checkpoints,
    load_state,
    prune_checkpoints,
    restore_rng,
    save_state,
)
from facedit.training.validate import task_mask

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cache")
    write_synthetic_cache(root, clips=8, frames=(60, 120), speech_dim=16)
    return root


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def _log(run: Path) -> dict[int, dict]:
    return {r["step"]: r for r in map(json.loads, (run / "log.jsonl").read_text().splitlines())}


# ------------------------------------------------------------------------------------------ pieces


def test_learning_rate_warms_up_then_decays():
    kw = dict(peak=1e-3, warmup=10, total=110)
    assert learning_rate(0, decay="linear", **kw) == pytest.approx(1e-4)
    assert learning_rate(9, decay="linear", **kw) == pytest.approx(1e-3)
    assert learning_rate(10, decay="linear", **kw) == pytest.approx(1e-3)
    assert learning_rate(60, decay="linear", **kw) == pytest.approx(5e-4)
    assert learning_rate(110, decay="linear", **kw) == pytest.approx(0.0)
    assert learning_rate(110, decay="linear", min_ratio=0.1, **kw) == pytest.approx(1e-4)
    assert learning_rate(60, decay="cosine", **kw) == pytest.approx(5e-4)
    assert learning_rate(35, decay="cosine", **kw) == pytest.approx(1e-3 * (0.5 + 0.5 * np.cos(np.pi / 4)))
    assert learning_rate(500, decay="constant", **kw) == pytest.approx(1e-3)


def test_ema_update_and_warmup():
    assert ema_decay(1, 0.999, True) == pytest.approx(2 / 11)
    assert ema_decay(10**6, 0.999, True) == 0.999 and ema_decay(1, 0.999, False) == 0.999
    model, ema = torch.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        model.weight.fill_(2.0)
        ema.weight.fill_(1.0)
        model.running_mean.fill_(5.0)
    update_ema(ema, model, 0.75)
    assert torch.allclose(ema.weight, torch.full((3,), 1.25)) and torch.equal(ema.running_mean, model.running_mean)


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    random.gauss(0, 1)  # leaves a cached gaussian in python's state
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    path = save_state(tmp_path / "checkpoints" / "step_00000007.pt",
                      {"rng": [capture_rng()], "optimizer": optimizer.state_dict(), "step": 7})  # fmt: skip
    draws = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)], random.gauss(0, 1))
    state = load_state(path)
    restore_rng(state["rng"][0])
    again = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)], random.gauss(0, 1))
    assert torch.equal(draws[0], again[0]) and np.array_equal(draws[1], again[1]) and draws[2:] == again[2:]
    fresh = torch.optim.AdamW(torch.nn.Linear(4, 3).parameters(), lr=1e-3)
    fresh.load_state_dict(state["optimizer"])
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])


def test_state_files_refuse_pickled_objects_and_foreign_files(tmp_path):
    from fractions import Fraction  # any class outside the weights_only allow-list stands for arbitrary code

    torch.save({"format": "facedit-train-state", "format_version": 1, "x": Fraction(1, 3)}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="not a readable"):
        load_state(tmp_path / "evil.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a FacEDiT training checkpoint"):
        load_state(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError):
        load_state(tmp_path / "missing.pt")


def test_checkpoint_listing_ignores_partial_writes_and_prunes(tmp_path):
    for step in (40, 8, 16, 32):
        save_state(checkpoint_path(tmp_path, step), {"step": step})
    (tmp_path / "checkpoints" / ".step_00000048.pt.123.tmp").write_bytes(b"partial")
    assert [p.name for p in list_checkpoints(tmp_path)] == [f"step_{s:08d}.pt" for s in (8, 16, 32, 40)]
    prune_checkpoints(tmp_path, 2)
    assert [load_state(p)["step"] for p in list_checkpoints(tmp_path)] == [32, 40]


def test_train_config_round_trip_and_validation():
    cfg = TrainConfig(data="d", out="o", preset="tiny", model={"depth": 3}, betas=(0.8, 0.9))
    assert TrainConfig.from_dict(json.loads(cfg.to_json())) == cfg
    assert cfg.model_config(speech_dim=16).depth == 3
    with pytest.raises(ValueError, match="unknown model settings"):
        TrainConfig(data="d", out="o", model={"layers": 3})
    with pytest.raises(ValueError, match="min_seconds"):
        TrainConfig(data="d", out="o", min_seconds=5, max_seconds=2)
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(data="d", out="o", precision="int8")


def test_cli_options_map_onto_the_config():
    args = build_parser().parse_args(
        ["--data", "d", "--out", "o", "--preset", "tiny", "--model", "depth=3", "--model", "adaln=per_block",
         "--edit-fraction", "0.2,0.4", "--no-ema-warmup", "--batch-frames", "300"]
    )  # fmt: skip
    cfg = config_from_args(args, None)
    assert cfg.model == {"depth": 3, "adaln": "per_block"} and cfg.mask.edit_fraction == (0.2, 0.4)
    assert cfg.ema_warmup is False and cfg.batch_frames == 300 and cfg.lr == 1e-4 and cfg.warmup == 20_000
    resumed = config_from_args(build_parser().parse_args(["--steps", "50"]), cfg)
    assert resumed == cfg.replace(steps=50)


def test_validation_split_is_stable():
    entries = [ManifestEntry(f"c{i}", 50, 2.0, 25.0, "s", f"shards/c{i}.safetensors", 99) for i in range(10)]
    train_a, val_a = split_clips(entries, 3)
    train_b, val_b = split_clips(entries[::-1], 3)
    assert {e.id for e in val_a} == {e.id for e in val_b} and len(val_a) == 3 and len(train_a) == 7
    assert {e.id for e in split_clips(entries, 4)[1]} > {e.id for e in val_a}
    with pytest.raises(ValueError, match="val-clips 0"):
        split_clips(entries[:1], 1)


def test_validation_masks():
    assert task_mask(20, (0.35, 0.65)).nonzero()[0].tolist() == list(range(7, 13))
    assert task_mask(20, (0.5, 1.0)).nonzero()[0].tolist() == list(range(10, 20))
    assert task_mask(2, (0.5, 1.0)).tolist() == [False, True]


# ----------------------------------------------------------------------------------------- training


def _cfg(cache: Path, out: Path, **changes) -> TrainConfig:
    base = dict(
        data=str(cache), out=str(out), preset="tiny", steps=240, batch_frames=200, max_seconds=2.0, min_seconds=2.0,
        lr=2e-3, warmup=20, workers=0, log_every=20, ckpt_every=120, val_every=120, val_clips=2, val_ode_steps=4,
        device="cpu",
    )  # fmt: skip
    return TrainConfig(**{**base, **changes})


def test_tiny_preset_learns_and_exports(cache, tmp_path, one_thread):
    """The designated learning test: a few hundred CPU steps on learnable synthetic data."""
    run = tmp_path / "run"
    summary = train(_cfg(cache, run), progress=False)
    log = _log(run)
    first, last = log[20]["loss"], np.mean([log[s]["loss"] for s in (220, 240)])
    print(f"loss {first:.3f} -> {last:.3f} (ratio {last / first:.2f})")
    assert last < 0.6 * first  # measured: about 2.05 -> 0.95
    assert all(np.isfinite(r["grad_norm"]) and r["frames_per_s"] > 0 for r in log.values())
    assert log[240]["lr"] == pytest.approx(2e-3 * 1 / 220)  # linear decay, last step

    val = [json.loads(line) for line in (run / "val.jsonl").read_text().splitlines()]
    assert [v["step"] for v in val] == [120, 240]
    assert val[1]["edit_l1"] < val[0]["edit_l1"] and val[1]["generate_l1"] < val[0]["generate_l1"]
    assert val[1]["edit_boundary_jump"] > 0 and val[1]["true_step"] > 0
    assert val[1]["edit_seam_ratio"] > 0 and np.isfinite(val[1]["generate_context_use"])

    model = load_facedit(summary["export"])  # what the loader node reads
    state = load_state(list_checkpoints(run)[-1])
    assert state["step"] == 240
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state["ema"][name]), name
    assert not torch.equal(state["ema"]["proj_out.weight"], state["model"]["proj_out.weight"])
    train_ids = {e.id for e in split_clips(read_manifest(cache), 2)[0]}
    mean, std = compute_motion_stats(read_shard(cache / e.shard)[0] for e in read_manifest(cache) if e.id in train_ids)
    np.testing.assert_array_equal(model.normalizer.mean.numpy(), mean)
    np.testing.assert_array_equal(model.normalizer.std.numpy(), std)
    meta = read_facedit_metadata(summary["export"])
    assert meta["weights"] == "ema" and meta["extra"]["step"] == "240" and meta["config"].speech_dim == 16
    assert json.loads(meta["extra"]["train_config"])["preset"] == "tiny"

    again = export_checkpoint(list_checkpoints(run)[-1], tmp_path / "again.safetensors")
    with safe_open(str(again), "pt") as a, safe_open(summary["export"], "pt") as b:
        assert all(torch.equal(a.get_tensor(k), b.get_tensor(k)) for k in b.keys())

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard")).Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/cfm", "train/ts", "train/lr", "train/grad_norm", "train/frames_per_s"} <= tags
    assert {"val/edit_l1", "val/generate_boundary_excess", "val/edit_seam_ratio", "val/edit_context_use"} <= tags
    assert [e.step for e in events.Scalars("train/loss")] == list(range(20, 241, 20))

    with pytest.raises(ValueError, match="already holds checkpoints"):
        train(_cfg(cache, run), progress=False)
    with pytest.raises(ValueError, match="differs from this run"):
        main(["--out", str(run), "--resume", "--model", "depth=3", "--no-progress", "--debug"])


def _resume_args(cache: Path, out: Path, steps: int) -> list[str]:
    return [
        "--preset", "tiny", "--model", "dropout=0.1", "--data", str(cache), "--out", str(out), "--steps", str(steps),
        "--warmup", "5", "--lr", "1e-3", "--decay", "constant", "--batch-frames", "100", "--max-seconds", "2",
        "--min-seconds", "1", "--workers", "0", "--log-every", "1", "--ckpt-every", "4", "--val-every", "1000",
        "--val-clips", "1", "--threads", "1", "--device", "cpu", "--no-progress",
    ]  # fmt: skip


def test_killed_run_resumes_exactly(cache, tmp_path, one_thread):
    """SIGKILL a run after a checkpoint, resume it: every logged loss and the final weights equal an
    uninterrupted run's bit for bit (CPU, one thread). Dropout is on, so the RNG states matter."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    main(_resume_args(cache, whole, 20))

    process = subprocess.Popen(
        [sys.executable, "-m", "facedit.train", *_resume_args(cache, killed, 10_000)], cwd=ROOT, env=_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not checkpoint_path(killed, 8).exists():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed_from = load_state(list_checkpoints(killed)[-1])["step"]
    assert 8 <= resumed_from < 20

    main(["--out", str(killed), "--resume", "--steps", "20", "--threads", "1", "--no-progress"])
    a, b = _log(whole), _log(killed)
    assert sorted(a) == sorted(b) == list(range(1, 21))
    for step in range(1, 21):
        for key in ("loss", "cfm", "ts", "grad_norm", "lr"):
            assert a[step][key] == b[step][key], (step, key)
    with (
        safe_open(str(whole / "facedit.safetensors"), "pt") as x,
        safe_open(str(killed / "facedit.safetensors"), "pt") as y,
    ):
        assert all(torch.equal(x.get_tensor(k), y.get_tensor(k)) for k in x.keys())


def test_two_process_ddp_on_cpu(cache, tmp_path):
    """torchrun with 2 processes (gloo): both ranks end with the same weights, the checkpoint holds both
    ranks' RNG states, and the run exports a loadable model."""
    run = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(ROOT / "facedit" / "train.py"), "--preset", "tiny", "--data", str(cache), "--out", str(run),
        "--steps", "6", "--warmup", "2", "--lr", "1e-3", "--batch-frames", "100", "--max-seconds", "2",
        "--min-seconds", "1", "--workers", "0", "--log-every", "1", "--ckpt-every", "3", "--val-every", "3",
        "--val-clips", "1", "--val-ode-steps", "2", "--threads", "1", "--device", "cpu", "--no-progress",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["step"] == 6
    digests = summary["weights_sha256_per_rank"]
    assert len(digests) == 2 and digests[0] == digests[1]
    state = load_state(list_checkpoints(run)[-1])
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])  # ranks draw different noise
    assert sorted(_log(run)) == list(range(1, 7))
    assert load_facedit(run / "facedit.safetensors").config.speech_dim == 16

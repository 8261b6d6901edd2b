"""Training-state checkpoints: everything an exact resume needs, loadable with torch.load(weights_only=True).

File ``OUT/checkpoints/step_XXXXXXXX.pt``, written to a temp file and renamed into place (a crash leaves
the previous checkpoints intact and at worst a stray temp file, which is ignored). Contents, plain types
and tensors only:

    format, format_version, step, world_size, train_config (JSON), model_config (JSON),
    model (online weights, motion statistics included), ema (EMA weights), optimizer, scaler,
    sampler {epoch, index}, rng [one dict per rank: torch, cuda, numpy, python]

The learning-rate schedule is a function of the step, so the step is its whole state.
"""

from __future__ import annotations

import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE_FORMAT = "facedit-train-state"
STATE_VERSION = 1
CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^step_(\d{8,})\.pt$")
_TEMP = re.compile(r"^\.step_\d{8,}\.pt\.(\d+)\.tmp$")
log = logging.getLogger("facedit.train")


def capture_rng() -> dict[str, Any]:
    """This process's RNG states (torch CPU and CUDA, numpy's global, python's) as tensors and plain types."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached),
        },
        "python": {"version": int(version), "internal": list(internal), "gauss_next": gauss_next},
    }  # fmt: skip


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))


def checkpoint_path(out: str | os.PathLike, step: int) -> Path:
    return Path(out) / CHECKPOINT_DIR / f"step_{step:08d}.pt"


def list_checkpoints(out: str | os.PathLike) -> list[Path]:
    """Complete checkpoints of a run folder, oldest first (temp files of interrupted writes are ignored)."""
    folder = Path(out) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save({"format": STATE_FORMAT, "format_version": STATE_VERSION, **state}, temp)
        os.replace(temp, path)
    finally:
        if temp.exists():
            temp.unlink()
    return path


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # noqa: BLE001 - truncated file, foreign pickle, wrong format: one message
        raise ValueError(f"{path}: not a readable FacEDiT training checkpoint ({error})") from error
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"{path}: not a FacEDiT training checkpoint (written by facedit/train.py)")
    if state.get("format_version") != STATE_VERSION:
        raise ValueError(f"{path}: training checkpoint version {state.get('format_version')} is not supported")
    return state


def latest_good_checkpoint(out: str | os.PathLike) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint of a run folder that loads, with its state; each newer one that does not (a write
    cut short by a full disk or a kill) is skipped with a warning naming it. None when the folder has none."""
    found = list_checkpoints(out)
    for path in reversed(found):
        try:
            return path, load_state(path)
        except ValueError as error:
            log.warning("skipping the damaged checkpoint %s (%s); trying the one before it", path, error)
    if found:
        raise ValueError(
            f"none of the {len(found)} checkpoint(s) in {Path(out) / CHECKPOINT_DIR} is readable "
            f"(newest: {found[-1].name}); expected at least one complete step_*.pt written by facedit/train.py"
        )
    return None


def remove_stale_temps(out: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of checkpoint writes that were killed before they finished (any process but
    this one); returns what was removed."""
    folder = Path(out) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        m = _TEMP.match(path.name)
        if m and int(m.group(1)) != os.getpid():
            path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        log.warning("removed %d partial checkpoint file(s) left by an interrupted write in %s", len(removed), folder)
    return removed


def prune_checkpoints(out: str | os.PathLike, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints, and partial files of interrupted writes."""
    remove_stale_temps(out)
    for path in list_checkpoints(out)[:-keep]:
        path.unlink(missing_ok=True)

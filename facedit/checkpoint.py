"""FacEDiT checkpoints: one .safetensors file per model, self-describing.

Metadata (all strings, as safetensors requires):
    format          "facedit"
    format_version  "1"
    config          FacEDiTConfig.to_dict() as JSON
    motion_mean     JSON list of D floats (also the tensor normalizer.mean in the file)
    motion_std      JSON list of D floats (also the tensor normalizer.std)
    weights         "ema" (the inference weights, paper 3.4) or "raw"
    plus any extra string entries the caller adds (training step, data set, ...).
Only safetensors is read: no pickle, so loading a file can never execute code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .config import FacEDiTConfig
from .model import FacEDiT

FORMAT = "facedit"
FORMAT_VERSION = 1
RESERVED_KEYS = ("format", "format_version", "config", "motion_mean", "motion_std", "weights")
EXPECTED = "a FacEDiT checkpoint (.safetensors with metadata format='facedit', written by save_facedit)"


def save_facedit(
    path: str | os.PathLike,
    model: FacEDiT,
    *,
    state_dict: dict[str, torch.Tensor] | None = None,
    weights: str = "ema",
    metadata: dict[str, str] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write `model` (or `state_dict`, e.g. the EMA weights, for model's architecture) atomically.

    weights labels what is stored ("ema" for inference weights, "raw" for the online training
    weights). dtype casts floating tensors (e.g. torch.float16 for a half-size file); the motion
    statistics always stay float32. Returns the path written.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"FacEDiT checkpoints are .safetensors files, got {path}")
    if weights not in ("ema", "raw"):
        raise ValueError(f"weights must be 'ema' or 'raw', got {weights!r}")
    extra = dict(metadata or {})
    clash = sorted(set(extra) & set(RESERVED_KEYS))
    if clash or not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        raise ValueError(
            f"metadata must map str to str and avoid the reserved keys {RESERVED_KEYS}; got {clash or extra}"
        )

    expected = model.state_dict()
    source = expected if state_dict is None else state_dict
    _check_state(source, expected, "state_dict given to save_facedit")
    tensors = {}
    for name, tensor in source.items():
        tensor = tensor.detach().to("cpu")
        if dtype is not None and tensor.is_floating_point() and not name.startswith("normalizer."):
            tensor = tensor.to(dtype)
        tensors[name] = tensor.contiguous().clone()
    mean, std = tensors["normalizer.mean"], tensors["normalizer.std"]
    info = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config": json.dumps(model.config.to_dict()),
        "motion_mean": json.dumps(mean.float().tolist()),
        "motion_std": json.dumps(std.float().tolist()),
        "weights": weights,
        **extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(temp), metadata=info)
        os.replace(temp, path)
    finally:
        if temp.exists():
            temp.unlink()
    return path


def read_facedit_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Parsed metadata: config (FacEDiTConfig), motion_mean/std (float32 arrays), weights, extra (dict)."""
    path = Path(path)
    raw = _open_metadata(path)
    try:
        config = FacEDiTConfig.from_dict(json.loads(raw["config"]))
        mean = np.asarray(json.loads(raw["motion_mean"]), dtype=np.float32)
        std = np.asarray(json.loads(raw["motion_std"]), dtype=np.float32)
    except (KeyError, ValueError, TypeError) as error:
        raise ValueError(f"{path}: FacEDiT metadata is damaged or from an incompatible version: {error}") from error
    extra = {k: v for k, v in raw.items() if k not in RESERVED_KEYS}
    return {"config": config, "motion_mean": mean, "motion_std": std, "weights": raw.get("weights", ""), "extra": extra}


def load_facedit(
    path: str | os.PathLike, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> FacEDiT:
    """Build the model its metadata describes and load its weights; returns it in eval mode.

    The network's parameters take `dtype`; the motion statistics stay float32.
    """
    path = Path(path)
    info = read_facedit_metadata(path)
    with torch.device("meta"):
        model = FacEDiT(info["config"])
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            state = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as error:  # safetensors raises its own error types for damaged data
        raise ValueError(f"{path}: cannot read the tensors of {EXPECTED}: {error}") from error
    _check_state(state, model.state_dict(), str(path))
    for name in ("normalizer.mean", "normalizer.std"):
        listed = info["motion_mean" if name.endswith("mean") else "motion_std"]
        if not np.array_equal(state[name].float().numpy(), listed):
            raise ValueError(
                f"{path}: tensor {name} disagrees with the statistics in the metadata; the file is damaged"
            )
    state = {
        name: tensor.to(dtype) if tensor.is_floating_point() and not name.startswith("normalizer.") else tensor
        for name, tensor in state.items()
    }
    model.load_state_dict(state, assign=True)
    return model.to(device).eval()


def _open_metadata(path: Path) -> dict[str, str]:
    if not path.exists():
        raise FileNotFoundError(f"FacEDiT checkpoint not found: {path}")
    if not path.is_file():
        raise ValueError(f"{path} is not a file; expected {EXPECTED}")
    if path.suffix != ".safetensors":
        raise ValueError(
            f"{path} is not a .safetensors file; expected {EXPECTED} (pickled .pth/.ckpt files are never loaded)"
        )
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            names = list(handle.keys())
    except Exception as error:
        raise ValueError(
            f"{path} is not a readable safetensors file (truncated or damaged?); expected {EXPECTED}: {error}"
        ) from error
    if metadata.get("format") != FORMAT:
        hint = f" Its tensors start with {names[:3]}" if names else " It holds no tensors."
        raise ValueError(f"{path} is not {EXPECTED}; its metadata has format={metadata.get('format')!r}.{hint}")
    if metadata.get("format_version") != str(FORMAT_VERSION):
        raise ValueError(
            f"{path}: FacEDiT checkpoint format_version {metadata.get('format_version')!r} is not supported "
            f"(this code reads {FORMAT_VERSION}); update ComfyUI-FacEDiT"
        )
    return metadata


def _check_state(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], source: str) -> None:
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{name} {tuple(state[name].shape)} != {tuple(expected[name].shape)}"
        for name in sorted(set(state) & set(expected))
        if tuple(state[name].shape) != tuple(expected[name].shape)
    ]
    if missing or unexpected or shapes:
        parts = [
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}" if missing else "",
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}" if unexpected else "",
            f"wrong shapes {shapes[:5]}" if shapes else "",
        ]
        detail = "; ".join(p for p in parts if p)
        raise ValueError(f"{source}: weights do not match the FacEDiT config they were saved with: {detail}")

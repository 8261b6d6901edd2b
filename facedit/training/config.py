"""TrainConfig: every setting of a training run, frozen, with a JSON form kept in the run folder and checkpoints."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from ..config import FacEDiTConfig
from ..data import MaskConfig

PRESETS = {"paper": FacEDiTConfig.paper, "small": FacEDiTConfig.small, "tiny": FacEDiTConfig.tiny}
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DECAYS = ("linear", "cosine", "constant")
# Settings a resumed run may change without breaking the exact continuation.
FREE_ON_RESUME = (
    "data",
    "out",
    "steps",
    "log_every",
    "ckpt_every",
    "val_every",
    "keep_checkpoints",
    "workers",
    "export",
)


@dataclass(frozen=True)
class TrainConfig:
    """Defaults follow the paper (section 3.4) where it gives a value.

    batch_frames: motion frames per batch and process, padding included (the paper's total batch of 8 clips
    on 2 GPUs is about 4 clips of 10 s per GPU: 1000 frames at 25 fps). Crops are max_seconds long at most,
    min_seconds at least (shorter clips whole). lr follows warm-up then decay to min_lr_ratio * lr at ``steps``;
    the schedule is a function of the step only. EMA decay ramps as min(ema_decay, (1 + k) / (10 + k)) over
    steps k when ema_warmup is on, so short runs have a usable EMA. speech_drop_prob > 0 trains for
    classifier-free guidance (off in the paper's setup).
    """

    data: str
    out: str
    preset: str = "paper"
    model: dict[str, Any] = field(default_factory=dict)  # FacEDiTConfig overrides, e.g. {"depth": 12}
    steps: int = 1_000_000
    batch_frames: int = 1000
    max_seconds: float = 10.0
    min_seconds: float = 2.0
    lr: float = 1e-4
    warmup: int = 20_000
    decay: str = "linear"
    min_lr_ratio: float = 0.0
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    ema_warmup: bool = True
    lambda_ts: float = 0.2
    speech_drop_prob: float = 0.0
    mask: MaskConfig = field(default_factory=MaskConfig)
    precision: str = "auto"
    device: str = "auto"
    seed: int = 0
    workers: int = 2
    log_every: int = 50
    ckpt_every: int = 5000
    val_every: int = 5000
    val_clips: int = 8
    val_ode_steps: int = 16
    keep_checkpoints: int = 3
    export: str = ""  # the final .safetensors; "" means OUT/facedit.safetensors

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.decay not in DECAYS:
            raise ValueError(f"decay must be one of {DECAYS}, got {self.decay!r}")
        positive = ("steps", "batch_frames", "log_every", "ckpt_every", "val_every", "val_ode_steps")
        for name in (*positive, "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup", "workers", "val_clips"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.min_seconds <= self.max_seconds:
            raise ValueError(f"need 0 < min_seconds ({self.min_seconds}) <= max_seconds ({self.max_seconds})")
        if not self.lr > 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"lr must be > 0 and min_lr_ratio in [0, 1], got {self.lr}, {self.min_lr_ratio}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0, got {self.grad_clip}")
        self.model_config()  # unknown or invalid overrides fail here, before any data is read

    def model_config(self, **facts: Any) -> FacEDiTConfig:
        """The preset with the overrides and the data's facts (speech_dim, fps, speech timing) applied."""
        unknown = sorted(set(self.model) - {f.name for f in dataclasses.fields(FacEDiTConfig)})
        if unknown:
            names = [f.name for f in dataclasses.fields(FacEDiTConfig)]
            raise ValueError(f"unknown model settings {unknown}; FacEDiTConfig has {names}")
        return PRESETS[self.preset](**{**self.model, **facts})

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["betas"] = list(self.betas)
        data["mask"] = {k: list(v) if isinstance(v, tuple) else v for k, v in data["mask"].items()}
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training settings {unknown}")
        if "mask" in data:
            mask = {k: tuple(v) if isinstance(v, list) else v for k, v in data["mask"].items()}
            data["mask"] = MaskConfig(**mask)
        if "betas" in data:
            data["betas"] = tuple(data["betas"])
        return cls(**data)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

"""torch.distributed setup for torchrun (single- and multi-node); a plain single process needs nothing."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto") -> DistInfo:
    """Read torchrun's RANK / LOCAL_RANK / WORLD_SIZE and join the process group when there are several
    processes: NCCL with one GPU per local rank, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and world > 1:
        device = f"cuda:{local}"
    chosen = torch.device(device)
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but CUDA is not available")
        torch.cuda.set_device(chosen)
    if world > 1 and not dist.is_initialized():
        if chosen.type == "cuda":
            dist.init_process_group(backend="nccl", device_id=chosen)
        else:
            dist.init_process_group(backend="gloo")
    return DistInfo(rank, local, world, chosen)


def teardown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_gather_objects(info: DistInfo, value: Any) -> list[Any]:
    """Every rank's ``value`` in rank order (just [value] for a single process)."""
    if not info.enabled:
        return [value]
    gathered: list[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def all_reduce_sum(info: DistInfo, values: torch.Tensor) -> torch.Tensor:
    if info.enabled:
        values = values.clone()
        dist.all_reduce(values)
    return values


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()

"""Opt-in `torch.compile` of the FacEDiT network, with a fallback to eager that says why.

Inductor fuses what eager runs as separate passes (RoPE, the adaLN LayerNorm, the gated residuals). It
costs a compilation on the first call (tens of seconds at the paper size on a CPU) and one more for
every new motion length (the attention plan's sizes are part of what is compiled), and it needs a C++
compiler on a CPU (none on a stock Windows install) or Triton on a GPU. Where that is missing, or the
compilation fails, `compiled` logs the reason once and the network runs eagerly: the same result, at
eager speed. It is not a gain everywhere: on a Xeon with AVX-512 BF16 + AMX (torch 2.13, one thread) a paper-size
sampler step ran at eager's speed in float32 and 1.3-2x slower in bfloat16, whose eager path already runs oneDNN's
fused linears (`facedit.accel.fused`); `bench/bench_model.py --compile` measures it.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable

import torch

log = logging.getLogger(__name__)
_reported: set[str] = set()  # the reasons `compiled` has logged


def unavailable_reason(device: torch.device | str) -> str | None:
    """Why inductor cannot compile for `device` here, or None when it can be tried."""
    kind = torch.device(device).type
    if kind == "cpu":
        if not (os.environ.get("CXX") or any(shutil.which(c) for c in ("g++", "c++", "clang++", "cl"))):
            return "no C++ compiler found (g++, clang++ or cl on PATH, or CXX) for inductor's CPU code"
    elif kind == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return "Triton is not installed (inductor's GPU code needs it)"
    elif kind != "meta":
        return f"torch.compile is not tried on {kind} devices"
    return None


class _Compiled:
    """model(...) through torch.compile, switching to eager for good if compilation fails."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.fn: Callable | None = torch.compile(model)

    def __call__(self, *args, **kwargs):
        if self.fn is not None:
            try:
                return self.fn(*args, **kwargs)
            except (torch._dynamo.exc.BackendCompilerFailed, torch._dynamo.exc.InternalTorchDynamoError) as error:
                log.warning("torch.compile failed, running the FacEDiT network eagerly: %s", str(error)[:500])
                self.fn = None
        return self.model(*args, **kwargs)


def compiled(model: torch.nn.Module) -> Callable:
    """A callable with model's signature: compiled where `unavailable_reason` allows, else model itself."""
    reason = unavailable_reason(next(model.parameters()).device)
    if reason is not None:
        if reason not in _reported:  # an edit samples once per window: say it once, not every time
            _reported.add(reason)
            log.warning("torch.compile unavailable, running the FacEDiT network eagerly: %s", reason)
        return model
    wrapper = model.__dict__.get("_facedit_compiled")
    if wrapper is None:  # kept on the model (not a submodule: no state dict entry), so compiled code is reused
        wrapper = model.__dict__["_facedit_compiled"] = _Compiled(model)
    return wrapper

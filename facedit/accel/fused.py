"""FacEDiT's linears in bfloat16 on CPUs with native bfloat16 (AVX-512 BF16 / AMX), for inference.

`F.linear` there runs as addmm: it first copies the broadcast bias into the output, then accumulates the
product into it, one more pass over every output; and tanh-GELU in bfloat16 is a separate pass ~5x slower
than the erf GELU (11 ms for the paper FFN's 1500 x 2048 activations at one thread, against 2 ms for the
matmul's own epilogue). oneDNN's linear primitive (`torch.ops.mkldnn._linear_pointwise`) adds the bias and
applies the GELU inside the matmul, on the float32 accumulator before rounding (so its result is, if
anything, closer to float32's). Elsewhere (float32, other devices, gradients, torch.compile, CPUs without
native bfloat16, builds without oneDNN) `linear` is `F.linear` followed by `F.gelu`.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from ..liveportrait.layers import native_low_precision


@functools.cache
def _has_onednn_linear() -> bool:
    try:
        return (
            torch.backends.mkldnn.is_available()
            and native_low_precision(torch.bfloat16)
            and bool(torch.ops.mkldnn._linear_pointwise.default)
        )
    except (AttributeError, RuntimeError):
        return False


def use_onednn(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether `linear` takes oneDNN's fused primitive for these operands."""
    return (
        x.dtype == torch.bfloat16
        and weight.dtype == torch.bfloat16
        and x.device.type == "cpu"
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
        and not torch.compiler.is_compiling()
        and _has_onednn_linear()
    )


def linear(x: torch.Tensor, layer: torch.nn.Linear, gelu_tanh: bool = False) -> torch.Tensor:
    """layer(x), then GELU (tanh approximation) if asked; fused where `use_onednn` says so."""
    if use_onednn(x, layer.weight):
        algorithm = ("gelu", "tanh") if gelu_tanh else ("none", "")
        return torch.ops.mkldnn._linear_pointwise(x, layer.weight, layer.bias, algorithm[0], [], algorithm[1])
    y = F.linear(x, layer.weight, layer.bias)
    return F.gelu(y, approximate="tanh") if gelu_tanh else y


class Linear(torch.nn.Linear):
    """nn.Linear (same parameters, same state dict) whose forward is `linear`, GELU fused on request."""

    def forward(self, x: torch.Tensor, gelu_tanh: bool = False) -> torch.Tensor:
        return linear(x, self, gelu_tanh)

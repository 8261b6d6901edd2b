"""FacEDiT's linears and position convolutions on CPUs, for inference: oneDNN's fast paths in bfloat16 on CPUs
with native bfloat16 (AVX-512 BF16 / AMX), weights packed once per sample (`prepacked`).

`F.linear` there runs as addmm: it first copies the broadcast bias into the output, then accumulates the
product into it, one more pass over every output; and tanh-GELU in bfloat16 is a separate pass ~5x slower
than the erf GELU (11 ms for the paper FFN's 1500 x 2048 activations at one thread, against 2 ms for the
matmul's own epilogue). oneDNN's linear primitive (`torch.ops.mkldnn._linear_pointwise`) adds the bias and
applies the GELU inside the matmul, on the float32 accumulator before rounding (so its result is, if
anything, closer to float32's). Elsewhere (float32, other devices, gradients, torch.compile, CPUs without
native bfloat16, builds without oneDNN) `linear` is `F.linear` followed by `F.gelu`.

Inside `prepacked()` (the sampler opens it for one sample) a layer evaluated again at the same row count runs
on a copy of its weight laid out once for that matmul (oneDNN's blocked bfloat16 layout, MKL's packed float32
GEMM): at the few hundred rows of 10 s of motion, reordering the weight on every call is a large part of a
matmul (bfloat16 linears ~1.3x faster packed, float32 ~1.1x). The copies cost memory while the scope lasts (the
packed layers' weights once more: ~0.5 GB in bfloat16, ~1 GB in float32 at the paper size), and are made only
up to `PACKED_MAX_ROWS` rows.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator
from dataclasses import dataclass

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


def _cpu_inference(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Eager CPU operands without gradients: where these oneDNN / MKL calls may replace torch's own ops."""
    return (
        x.device.type == "cpu"
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
        and not torch.compiler.is_compiling()
    )


def use_onednn(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether `linear` (and `conv1d`) take oneDNN's bfloat16 path for these operands."""
    return (
        x.dtype == torch.bfloat16
        and weight.dtype == torch.bfloat16
        and _cpu_inference(x, weight)
        and _has_onednn_linear()
    )


@functools.cache
def _has_mkl_packed_linear() -> bool:
    try:
        return torch.backends.mkl.is_available() and bool(torch.ops.mkl._mkl_linear.default)
    except (AttributeError, RuntimeError):
        return False


# Packing pays only for short matrices (a paper-size sampler step at 250 rows: bfloat16 1.15x, float32 1.09x faster);
# at 1500 rows it is the unpacked speed or slower, for a second copy of the weights in memory.
PACKED_MAX_ROWS = 1024


@dataclass
class _Packed:
    weight: torch.Tensor  # the parameter itself: held, so its id is not reused while the entry lives
    version: int
    data_ptr: int
    rows: int
    packed: torch.Tensor | None = None


_packs: contextvars.ContextVar[dict[int, _Packed] | None] = contextvars.ContextVar("facedit_prepacked", default=None)


@contextlib.contextmanager
def prepacked() -> Iterator[None]:
    """Within this scope `linear` keeps, per layer, its weight packed for the row count it runs at, from the
    layer's second call at that count on (a layer called once, like the speech projections prepared once per
    sample, is not copied). Nothing is kept after the scope; parameters are never modified; a weight changed in
    place or replaced, or a new row count, is packed again. Nested scopes share the outermost one's packs."""
    if _packs.get() is not None:
        yield
        return
    token = _packs.set({})
    try:
        yield
    finally:
        _packs.reset(token)


def _packed_kind(x: torch.Tensor, weight: torch.Tensor, rows: int) -> str | None:
    if not 0 < rows <= PACKED_MAX_ROWS:
        return None
    if use_onednn(x, weight):
        return "onednn"
    if x.dtype == weight.dtype == torch.float32 and _cpu_inference(x, weight) and _has_mkl_packed_linear():
        return "mkl"
    return None


def _packed_weight(packs: dict[int, _Packed], weight: torch.Tensor, rows: int, kind: str) -> torch.Tensor | None:
    """The packed copy of weight for `rows` rows, made on its second call with the same weight and row count."""
    entry = packs.get(id(weight))
    state = (_version(weight), weight.data_ptr(), rows)
    if entry is None or entry.weight is not weight or (entry.version, entry.data_ptr, entry.rows) != state:
        packs[id(weight)] = _Packed(weight, *state)
        return None
    if entry.packed is None:
        entry.packed = _PACKERS[kind](weight.detach(), rows)
    return entry.packed


def _version(weight: torch.Tensor) -> int:
    """The in-place version counter; weights made under torch.inference_mode (ComfyUI loads models so) have none:
    there the parameter's identity and storage are what is checked."""
    return -1 if weight.is_inference() else weight._version


def _conv_weight_2d(weight: torch.Tensor, rows: int = 0) -> torch.Tensor:
    return weight[:, :, None, :].contiguous(memory_format=torch.channels_last)


_PACKERS = {
    "onednn": lambda w, rows: torch.ops.mkldnn._reorder_linear_weight(w, rows),
    "mkl": lambda w, rows: torch.ops.mkl._mkl_reorder_linear_weight(w, rows),
    "conv": _conv_weight_2d,
}


def linear(x: torch.Tensor, layer: torch.nn.Linear, gelu_tanh: bool = False) -> torch.Tensor:
    """layer(x), then GELU (tanh approximation) if asked; fused where `use_onednn` says so, on a packed weight
    inside `prepacked()`."""
    weight, bias = layer.weight, layer.bias
    packs = None if torch.compiler.is_compiling() else _packs.get()  # dynamo cannot trace ContextVar.get
    packed = None
    if packs is not None:
        rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
        kind = _packed_kind(x, weight, rows)
        if kind is not None:
            packed = _packed_weight(packs, weight, rows, kind)
    if packed is not None and x.dtype == torch.float32:
        y = torch.ops.mkl._mkl_linear(x.contiguous(), packed, weight.detach(), _detached(bias), rows)
        return F.gelu(y, approximate="tanh") if gelu_tanh else y
    if packed is not None or use_onednn(x, weight):
        algorithm = ("gelu", "tanh") if gelu_tanh else ("none", "")
        w = weight if packed is None else packed
        return torch.ops.mkldnn._linear_pointwise(x, w, bias, algorithm[0], [], algorithm[1])
    y = F.linear(x, weight, bias)
    return F.gelu(y, approximate="tanh") if gelu_tanh else y


def _detached(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach()


class Linear(torch.nn.Linear):
    """nn.Linear (same parameters, same state dict) whose forward is `linear`, GELU fused on request."""

    def forward(self, x: torch.Tensor, gelu_tanh: bool = False) -> torch.Tensor:
        return linear(x, self, gelu_tanh)


def conv1d(x: torch.Tensor, conv: torch.nn.Conv1d) -> torch.Tensor:
    """conv(x) for x (B, C, T). In bfloat16 on CPUs with native bfloat16 it runs as a channels-last conv2d over
    (B, C, 1, T), the same values (bit for bit on the AMX Xeon measured; another CPU's kernel for that layout may
    sum in another order, one bfloat16 rounding apart): oneDNN's 1-D grouped convolution in bfloat16 is 4-6x
    slower than that (the paper's 31-tap, 16-group position convolution: 5.0 vs 1.3 ms at 250 frames, 30 vs
    5.3 ms at 1500, one thread). A channels-last input is x transposed from token-major (B, T, C), with no copy;
    the result is laid out the same way, so transposing it back is free too. Inside `prepacked()` the weight is laid
    out once."""
    weight = conv.weight
    if not (use_onednn(x, weight) and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)):
        return conv(x)
    packs = _packs.get()
    packed = None if packs is None else _packed_weight(packs, weight, 0, "conv")
    weight_2d = _conv_weight_2d(weight) if packed is None else packed
    y = F.conv2d(
        x[:, :, None, :],
        weight_2d,
        conv.bias,
        stride=(1, conv.stride[0]),
        padding=(0, conv.padding[0]),
        dilation=(1, conv.dilation[0]),
        groups=conv.groups,
    )
    return y[:, :, 0]

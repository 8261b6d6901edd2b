"""Precision modes of the LivePortrait networks and the one-time preparation of the warping module and decoder.

- ``fp32``: the published numerics, untouched networks.
- ``bf16`` / ``fp16``: appearance extractor, warping module and decoder in that dtype (half the memory); the
  motion extractor and the stitching MLP stay float32, because keypoints and head pose are precision
  sensitive (in bf16 the keypoints err by 5e-3 and yaw by 0.65 degrees, which costs the whole chain ~20 dB).
- ``fast``: both extractors in float32 (they are cheap), warp + decode in bfloat16 on a CPU with native bf16
  kernels (AVX-512 BF16 / AMX), under float16 autocast on CUDA; float32 elsewhere (see :func:`fast_plan`).

Preparing the warping module and decoder (every mode but fp32) folds what the official code recomputes on each
forward into the convolution weights once, in float32, before any rounding: BatchNorm after a convolution
(eval statistics) and the SPADE decoder's spectral normalisation. Each convolution then becomes a
:class:`FastConv`: channels-last layout, channel counts padded to a multiple of 16 (oneDNN's bf16 kernels fall
back to a reference path otherwise: the warping module's 142 -> 22 channel 7x7x7 mask convolution takes 12x
longer unpadded) and the input cast fused into the layout change, so float32 tensors flow in without a separate
cast. The SPADE layers normalise without leaving channels-last (``spade.instance_norm_channels_last``) and
modulate in one ``addcmul``, the 1 of ``1 + gamma`` folded into mlp_gamma's bias (``bench/bench_liveportrait.py
--profile`` shows where the time goes). The prepared modules compute the same function; their state_dict no
longer has the published layout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import (
    DownBlock2d,
    DownBlock3d,
    HourglassDecoder,
    SameBlock2d,
    SpectralConv2d,
    UpBlock3d,
    native_low_precision,
)

log = logging.getLogger("facedit")

PRECISIONS = ("fp32", "fp16", "bf16", "fast")
_ALIASES = {
    "fp32": "fp32",
    "float32": "fp32",
    "fp16": "fp16",
    "float16": "fp16",
    "half": "fp16",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "fast": "fast",
}
_BY_DTYPE = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
DTYPE_OF = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
CHANNEL_MULTIPLE = 16


def resolve_precision(precision: str | torch.dtype) -> str:
    """'fp32' | 'fp16' | 'bf16' | 'fast' from a name (float32, half, bfloat16, ... accepted) or a torch dtype."""
    if isinstance(precision, torch.dtype):
        if precision not in _BY_DTYPE:
            raise ValueError(f"dtype must be float32, float16 or bfloat16, got {precision}")
        return _BY_DTYPE[precision]
    if isinstance(precision, str) and precision.lower() in _ALIASES:
        return _ALIASES[precision.lower()]
    raise ValueError(f"precision must be one of {list(PRECISIONS)} (or a torch float dtype), got {precision!r}")


@dataclass(frozen=True)
class FastPlan:
    """How 'fast' runs warp + decode on one device: weight dtype, autocast dtype (CUDA) and why."""

    weight_dtype: torch.dtype
    autocast_dtype: torch.dtype | None
    reason: str

    @property
    def falls_back(self) -> bool:
        return self.weight_dtype == torch.float32 and self.autocast_dtype is None


def fast_plan(device: torch.device | str) -> FastPlan:
    device = torch.device(device)
    if device.type == "cuda":
        return FastPlan(torch.float32, torch.float16, "warp + decode under float16 autocast (TF32 allowed)")
    if device.type == "cpu":
        if native_low_precision(torch.bfloat16):
            return FastPlan(torch.bfloat16, None, "warp + decode in bfloat16 (this CPU has native bf16 kernels)")
        return FastPlan(
            torch.float32,
            None,
            "this CPU has no native bf16 kernels (AVX-512 BF16 / AMX): bf16 would be slower than float32, so "
            "warp + decode stay float32 (with the folded, padded layers)",
        )
    return FastPlan(torch.float32, None, f"no half-precision fast path on {device.type}: warp + decode in float32")


class FastConv(nn.Module):
    """A 2D/3D convolution (groups 1) with folded weights, channels padded to a multiple of 16, channels-last.

    The input may have the unpadded channel count and any float dtype: it is cast to the weight dtype (unless
    autocast is on) in the same copy that pads and lays it out. The output has the original channel count.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, stride, padding, dtype: torch.dtype):
        super().__init__()
        out_c, in_c = weight.shape[:2]
        self.in_channels, self.out_channels = in_c, out_c
        self.stride, self.padding = stride, padding
        pad_in, pad_out = (-in_c) % CHANNEL_MULTIPLE, (-out_c) % CHANNEL_MULTIPLE
        w = weight.detach().float()
        w = torch.cat([w, w.new_zeros(out_c, pad_in, *w.shape[2:])], 1) if pad_in else w
        w = torch.cat([w, w.new_zeros(pad_out, *w.shape[1:])], 0) if pad_out else w
        b = bias.detach().float() if bias is not None else w.new_zeros(out_c)
        b = torch.cat([b, b.new_zeros(pad_out)]) if pad_out else b
        self.memory_format = torch.channels_last_3d if w.ndim == 5 else torch.channels_last
        self.weight = nn.Parameter(w.to(dtype).contiguous(memory_format=self.memory_format), requires_grad=False)
        self.bias = nn.Parameter(b.to(dtype), requires_grad=False)

    def _layout(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        padded = self.weight.shape[1]
        if x.shape[1] == padded:
            return x.to(dtype=dtype, memory_format=self.memory_format)
        out = torch.empty((x.shape[0], padded, *x.shape[2:]), dtype=dtype, device=x.device)
        out = out.contiguous(memory_format=self.memory_format)
        out[:, : x.shape[1]] = x
        out[:, x.shape[1] :] = 0
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.in_channels:
            raise ValueError(f"FastConv expects {self.in_channels} input channels, got {x.shape[1]}")
        w, b = self.weight, self.bias
        autocast = torch.is_autocast_enabled(x.device.type) if x.device.type == "cuda" else False
        x = self._layout(x, x.dtype if autocast else w.dtype)
        conv = F.conv3d if w.ndim == 5 else F.conv2d
        if x.device.type == "cpu" and w.dtype != torch.float32 and not native_low_precision(w.dtype):
            y = conv(x.float(), w.float(), b.float(), self.stride, self.padding).to(w.dtype)
        else:
            y = conv(x, w, b, self.stride, self.padding)
        return y[:, : self.out_channels] if y.shape[1] != self.out_channels else y

    def extra_repr(self) -> str:
        return f"{self.in_channels}->{self.out_channels}, kernel {tuple(self.weight.shape[2:])}, {self.weight.dtype}"


def folded_batchnorm(
    weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.modules.batchnorm._BatchNorm
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of conv followed by ``bn`` in eval mode, as one convolution (float32)."""
    scale = bn.weight.float() / torch.sqrt(bn.running_var.float() + bn.eps)
    w = weight.float() * scale.reshape(-1, *([1] * (weight.ndim - 1)))
    b = bias.float() if bias is not None else torch.zeros_like(scale)
    return w, (b - bn.running_mean.float()) * scale + bn.bias.float()


def spectral_weight(conv: SpectralConv2d) -> torch.Tensor:
    """The weight SpectralConv2d uses in its forward (weight_orig / sigma), computed once in float32."""
    w = conv.weight_orig.float()
    sigma = torch.dot(conv.weight_u.float(), w.reshape(w.shape[0], -1) @ conv.weight_v.float())
    return w / sigma


_CONV_THEN_NORM = {
    SameBlock2d: ("conv", "norm"),
    DownBlock2d: ("conv", "norm"),
    DownBlock3d: ("conv", "norm"),
    UpBlock3d: ("conv", "norm"),
    HourglassDecoder: ("conv", "norm"),
}


def _fast_conv(conv: nn.Module, dtype: torch.dtype, bn: nn.Module | None = None, bias_offset: float = 0.0) -> FastConv:
    if isinstance(conv, SpectralConv2d):
        weight, bias, stride, padding = spectral_weight(conv), conv.bias, 1, conv.padding
    elif isinstance(conv, (nn.Conv2d, nn.Conv3d)):
        if conv.groups != 1 or conv.padding_mode != "zeros" or any(d != 1 for d in conv.dilation):
            raise ValueError(f"cannot prepare {conv}: only plain convolutions (groups 1, zero padding) fold")
        weight, bias, stride, padding = conv.weight, conv.bias, conv.stride, conv.padding
    else:
        raise TypeError(f"not a convolution: {type(conv).__name__}")
    if bn is not None:
        weight, bias = folded_batchnorm(weight, bias, bn)
    if bias_offset:
        bias = bias.float() + bias_offset
    return FastConv(weight, bias, stride, padding, dtype).to(weight.device)


@torch.no_grad()
def prepare_fast(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Fold and replace every convolution (and the BatchNorm after it) of ``module`` in place; returns it."""
    from .spade import SPADE
    from .warping import DenseMotionNetwork

    module.eval()
    for sub in list(module.modules()):
        if isinstance(sub, SPADE) and not sub.folded:
            sub.mlp_gamma = _fast_conv(sub.mlp_gamma, dtype, bias_offset=1.0)
            sub.folded = True
        pairs = [_CONV_THEN_NORM[type(sub)]] if type(sub) in _CONV_THEN_NORM else []
        if isinstance(sub, DenseMotionNetwork):
            pairs.append(("compress", "norm"))
        for conv_name, norm_name in pairs:
            setattr(sub, conv_name, _fast_conv(getattr(sub, conv_name), dtype, getattr(sub, norm_name)))
            setattr(sub, norm_name, nn.Identity())
    for sub in list(module.modules()):
        for name, child in list(sub.named_children()):
            if isinstance(child, (SpectralConv2d, nn.Conv2d, nn.Conv3d)):
                setattr(sub, name, _fast_conv(child, dtype))
            elif isinstance(child, nn.modules.batchnorm._BatchNorm):
                raise ValueError(f"{name} ({type(child).__name__}) does not follow a convolution; it cannot fold")
    return module.requires_grad_(False)

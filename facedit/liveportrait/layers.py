"""Building blocks shared by the LivePortrait networks.

Attribute names follow the official modules so that ``state_dict`` keys match the published weight files.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn


@functools.cache
def native_low_precision(dtype: torch.dtype) -> bool:
    """Whether this CPU has fast (oneDNN) kernels for convolutions in ``dtype`` (AVX-512 BF16 / AMX class)."""
    try:
        if dtype == torch.bfloat16:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        if dtype == torch.float16:
            return bool(torch.ops.mkldnn._is_mkldnn_fp16_supported())
    except (AttributeError, RuntimeError):
        return False
    return True


def upcast_on_cpu(x: torch.Tensor) -> bool:
    """Half/bfloat16 on a CPU without native kernels: compute convolutions and matmuls in float32 instead (the
    fallback kernels are 10x (conv2d) to several hundred times (conv3d) slower than float32 there)."""
    return x.device.type == "cpu" and x.dtype in (torch.bfloat16, torch.float16) and not native_low_precision(x.dtype)


def _f32(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.float()


class Conv2d(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if upcast_on_cpu(x):
            return self._conv_forward(x.float(), self.weight.float(), _f32(self.bias)).to(x.dtype)
        return super().forward(x)


class Conv3d(nn.Conv3d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if upcast_on_cpu(x):
            return self._conv_forward(x.float(), self.weight.float(), _f32(self.bias)).to(x.dtype)
        return super().forward(x)


class Linear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if upcast_on_cpu(x):
            return F.linear(x.float(), self.weight.float(), _f32(self.bias)).to(x.dtype)
        return super().forward(x)


def avg_pool_hw(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling over H and W of a 5D volume (B, C, D, H, W).

    Same result as ``avg_pool3d(kernel=(1, 2, 2))``, computed as a 2D pool because CPU has no half/bfloat16
    kernel for ``avg_pool3d``.
    """
    b, c, d, h, w = x.shape
    return F.avg_pool2d(x.reshape(b, c * d, h, w), 2).reshape(b, c, d, h // 2, w // 2)


class SameBlock2d(nn.Module):
    def __init__(self, in_features: int, out_features: int, lrelu: bool = False):
        super().__init__()
        self.conv = Conv2d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(out_features, affine=True)
        self.lrelu = lrelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x))
        return F.leaky_relu(x) if self.lrelu else F.relu(x)


class DownBlock2d(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.conv = Conv2d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.relu(self.norm(self.conv(x))), 2)


class DownBlock3d(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.conv = Conv3d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return avg_pool_hw(F.relu(self.norm(self.conv(x))))


class UpBlock3d(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.conv = Conv3d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=(1, 2, 2))
        return F.relu(self.norm(self.conv(x)))


class ResBlock3d(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.conv1 = Conv3d(features, features, kernel_size=3, padding=1)
        self.conv2 = Conv3d(features, features, kernel_size=3, padding=1)
        self.norm1 = nn.BatchNorm3d(features, affine=True)
        self.norm2 = nn.BatchNorm3d(features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class HourglassEncoder(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int):
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DownBlock3d(
                in_features if i == 0 else min(max_features, block_expansion * 2**i),
                min(max_features, block_expansion * 2 ** (i + 1)),
            )
            for i in range(num_blocks)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class HourglassDecoder(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int):
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            in_filters = (1 if i == num_blocks - 1 else 2) * min(max_features, block_expansion * 2 ** (i + 1))
            blocks.append(UpBlock3d(in_filters, min(max_features, block_expansion * 2**i)))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features
        self.conv = Conv3d(self.out_filters, self.out_filters, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(self.out_filters, affine=True)

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        skips = list(skips)
        out = skips.pop()
        for block in self.up_blocks:
            out = torch.cat([block(out), skips.pop()], dim=1)
        return F.relu(self.norm(self.conv(out)))


class Hourglass(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int):
        super().__init__()
        self.encoder = HourglassEncoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = HourglassDecoder(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class SpectralConv2d(nn.Module):
    """Conv2d whose weight is divided by its spectral norm, stored the way ``torch.nn.utils.spectral_norm`` does.

    Keys: ``weight_orig``, ``bias`` (when used), and the singular-vector estimates ``weight_u`` [out] and
    ``weight_v`` [in * kh * kw]. Inference only: sigma = u . (W v) with the stored vectors, which is what torch
    computes in eval mode. Sigma is computed in float32 whatever the weight dtype.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0, bias: bool = True):
        super().__init__()
        self.padding = padding
        self.weight_orig = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.register_buffer("weight_u", torch.empty(out_channels))
        self.register_buffer("weight_v", torch.empty(in_channels * kernel_size * kernel_size))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight_orig, a=5**0.5)
        if self.bias is not None:
            bound = 1.0 / (self.weight_orig[0].numel() ** 0.5)
            nn.init.uniform_(self.bias, -bound, bound)
        if self.weight_orig.is_meta:
            return
        matrix = self.weight_orig.reshape(self.weight_orig.shape[0], -1)
        u = F.normalize(torch.randn(matrix.shape[0]), dim=0)
        v = F.normalize(torch.randn(matrix.shape[1]), dim=0)
        for _ in range(15):
            v = F.normalize(matrix.t() @ u, dim=0)
            u = F.normalize(matrix @ v, dim=0)
        self.weight_u.copy_(u)
        self.weight_v.copy_(v)

    def normalized_weight(self) -> torch.Tensor:
        w = self.weight_orig
        sigma = torch.dot(self.weight_u.float(), w.reshape(w.shape[0], -1).float() @ self.weight_v.float())
        return (w.float() / sigma).to(w.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if upcast_on_cpu(x):
            w = self.weight_orig.float()
            sigma = torch.dot(self.weight_u.float(), w.reshape(w.shape[0], -1) @ self.weight_v.float())
            return F.conv2d(x.float(), w / sigma, _f32(self.bias), padding=self.padding).to(x.dtype)
        return F.conv2d(x, self.normalized_weight(), self.bias, padding=self.padding)


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over dim 1 of (B, C, H, W), as in ConvNeXt."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class GRN(nn.Module):
    """Global response normalisation of ConvNeXt-V2, channels last (B, H, W, C)."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx = torch.linalg.vector_norm(x, ord=2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x

"""SPADE decoder G: warped features (B, 256, 64, 64) -> image (B, 3, 512, 512) in [0, 1]."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import SpadeConfig
from .layers import Conv2d, SpectralConv2d


def instance_norm_channels_last(x: torch.Tensor) -> torch.Tensor:
    """instance_norm (no affine) that keeps a channels-last layout: each item's batch-norm statistics.

    On a CPU, instance_norm of a channels-last tensor takes a slow path (5x at 256 channels of 256x256) and returns
    a contiguous tensor; group_norm with one group per channel is fast but its channels-last kernel loses precision
    when a channel's mean is large against its spread. batch_norm's statistics over one item are exact and fast.
    """
    items = [F.batch_norm(x[i : i + 1], None, None, training=True, eps=1e-5) for i in range(x.shape[0])]
    return items[0] if len(items) == 1 else torch.cat(items)


class SPADE(nn.Module):
    def __init__(self, norm_nc: int, label_nc: int, hidden: int):
        super().__init__()
        self.mlp_shared = nn.Sequential(Conv2d(label_nc, hidden, kernel_size=3, padding=1), nn.ReLU())
        self.mlp_gamma = Conv2d(hidden, norm_nc, kernel_size=3, padding=1)
        self.mlp_beta = Conv2d(hidden, norm_nc, kernel_size=3, padding=1)
        self.folded = False
        """Set by ``fast.prepare_fast``: mlp_gamma's bias then holds the 1 of ``1 + gamma``."""

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        if segmap.shape[2:] != x.shape[2:]:
            segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        if self.folded:
            return torch.addcmul(self.mlp_beta(actv), instance_norm_channels_last(x), self.mlp_gamma(actv))
        return F.instance_norm(x) * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    def __init__(self, fin: int, fout: int, label_nc: int, hidden: int):
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        self.conv_0 = SpectralConv2d(fin, fmiddle, kernel_size=3, padding=1)
        self.conv_1 = SpectralConv2d(fmiddle, fout, kernel_size=3, padding=1)
        if self.learned_shortcut:
            self.conv_s = SpectralConv2d(fin, fout, kernel_size=1, bias=False)
        self.norm_0 = SPADE(fin, label_nc, hidden)
        self.norm_1 = SPADE(fmiddle, label_nc, hidden)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, label_nc, hidden)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        if seg.shape[2:] != x.shape[2:]:  # once for the two or three SPADE layers, not in each
            seg = F.interpolate(seg, size=x.shape[2:], mode="nearest")
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return x_s + dx


class SPADEDecoder(nn.Module):
    def __init__(self, cfg: SpadeConfig):
        super().__init__()
        self.cfg = cfg
        c, hidden = cfg.input_channels, cfg.spade_hidden
        self.fc = Conv2d(c, 2 * c, kernel_size=3, padding=1)
        for i in range(6):
            self.add_module(f"G_middle_{i}", SPADEResnetBlock(2 * c, 2 * c, c, hidden))
        self.up_0 = SPADEResnetBlock(2 * c, c, c, hidden)
        self.up_1 = SPADEResnetBlock(c, cfg.out_channels, c, hidden)
        if cfg.upscale <= 1:
            self.conv_img = Conv2d(cfg.out_channels, 3, kernel_size=3, padding=1)
        else:
            self.conv_img = nn.Sequential(
                Conv2d(cfg.out_channels, 3 * 4, kernel_size=3, padding=1), nn.PixelShuffle(upscale_factor=2)
            )

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        seg = feature  # (B, 256, 64, 64)
        x = self.fc(feature)  # (B, 512, 64, 64)
        for i in range(6):
            x = getattr(self, f"G_middle_{i}")(x, seg)
        x = self.up_0(F.interpolate(x, scale_factor=2), seg)  # (B, 256, 128, 128)
        x = self.up_1(F.interpolate(x, scale_factor=2), seg)  # (B, 64, 256, 256)
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 0.2)))  # (B, 3, 512, 512)

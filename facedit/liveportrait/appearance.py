"""Appearance feature extractor F: a 256x256 RGB crop -> a 3D feature volume (B, 32, 16, 64, 64)."""

from __future__ import annotations

import torch
from torch import nn

from .config import AppearanceConfig
from .layers import Conv2d, DownBlock2d, ResBlock3d, SameBlock2d


class AppearanceFeatureExtractor(nn.Module):
    def __init__(self, cfg: AppearanceConfig):
        super().__init__()
        self.cfg = cfg
        self.first = SameBlock2d(cfg.image_channel, cfg.block_expansion)
        blocks = []
        out_features = cfg.block_expansion
        for i in range(cfg.num_down_blocks):
            in_features = min(cfg.max_features, cfg.block_expansion * 2**i)
            out_features = min(cfg.max_features, cfg.block_expansion * 2 ** (i + 1))
            blocks.append(DownBlock2d(in_features, out_features))
        self.down_blocks = nn.ModuleList(blocks)
        self.second = Conv2d(out_features, cfg.max_features, kernel_size=1)
        self.resblocks_3d = nn.Sequential()
        for i in range(cfg.num_resblocks):
            self.resblocks_3d.add_module(f"3dr{i}", ResBlock3d(cfg.reshape_channel))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.first(image)  # (B, 64, 256, 256)
        for block in self.down_blocks:
            x = block(x)
        x = self.second(x)  # (B, 512, 64, 64)
        b, _, h, w = x.shape
        x = x.view(b, self.cfg.reshape_channel, self.cfg.reshape_depth, h, w)  # (B, 32, 16, 64, 64)
        return self.resblocks_3d(x)

"""Motion extractor M: ConvNeXt-V2 backbone with heads for canonical keypoints, head pose bins, translation,
expression deformation and scale."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import MotionExtractorConfig
from .layers import GRN, ChannelsFirstLayerNorm, Conv2d, Linear


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = Linear(dim, 4 * dim)
        self.grn = GRN(4 * dim)
        self.pwconv2 = Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)  # (B, H, W, C)
        y = self.pwconv2(self.grn(F.gelu(self.pwconv1(self.norm(y)))))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtV2(nn.Module):
    def __init__(self, cfg: MotionExtractorConfig, in_chans: int = 3):
        super().__init__()
        dims = cfg.dims
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(Conv2d(in_chans, dims[0], kernel_size=4, stride=4), ChannelsFirstLayerNorm(dims[0]))]
        )
        for i in range(3):
            self.downsample_layers.append(
                nn.Sequential(ChannelsFirstLayerNorm(dims[i]), Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2))
            )
        self.stages = nn.ModuleList(
            nn.Sequential(*[ConvNeXtBlock(dims[i]) for _ in range(cfg.depths[i])]) for i in range(4)
        )
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        d = dims[-1]
        self.fc_kp = Linear(d, 3 * cfg.num_kp)
        self.fc_scale = Linear(d, 1)
        self.fc_pitch = Linear(d, cfg.num_bins)
        self.fc_yaw = Linear(d, cfg.num_bins)
        self.fc_roll = Linear(d, cfg.num_bins)
        self.fc_t = Linear(d, 3)
        self.fc_exp = Linear(d, 3 * cfg.num_kp)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        for down, stage in zip(self.downsample_layers, self.stages, strict=True):
            x = stage(down(x))
        x = self.norm(x.mean(dim=(-2, -1)))  # (B, 768)
        return {
            "pitch": self.fc_pitch(x),
            "yaw": self.fc_yaw(x),
            "roll": self.fc_roll(x),
            "t": self.fc_t(x),
            "exp": self.fc_exp(x),
            "scale": self.fc_scale(x),
            "kp": self.fc_kp(x),
        }


class MotionExtractor(nn.Module):
    """Raw head outputs; ``extract.py`` turns them into degrees, rotation matrices and keypoints."""

    def __init__(self, cfg: MotionExtractorConfig):
        super().__init__()
        self.cfg = cfg
        self.detector = ConvNeXtV2(cfg)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.detector(image)

"""Warping module W: dense motion from sparse keypoint motion, then the warped feature volume projected to 2D.

Keypoint-dependent quantities (grids, heatmaps, the softmax mask, the deformation field) and the grid sampling
are computed in float32 whatever the network dtype; the convolutions run in the network dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import AppearanceConfig, WarpingConfig
from .keypoints import keypoint_gaussians, make_coordinate_grid
from .layers import Conv2d, Conv3d, Hourglass, SameBlock2d


class DenseMotionNetwork(nn.Module):
    def __init__(self, cfg: WarpingConfig, feature_channel: int, reshape_depth: int):
        super().__init__()
        dm = cfg.dense_motion
        self.num_kp = cfg.num_kp
        in_features = (cfg.num_kp + 1) * (dm.compress + 1)
        self.hourglass = Hourglass(dm.block_expansion, in_features, dm.num_blocks, dm.max_features)
        self.mask = Conv3d(self.hourglass.out_filters, cfg.num_kp + 1, kernel_size=7, padding=3)
        self.compress = Conv3d(feature_channel, dm.compress, kernel_size=1)
        self.norm = nn.BatchNorm3d(dm.compress, affine=True)
        if cfg.estimate_occlusion_map:
            self.occlusion = Conv2d(self.hourglass.out_filters * reshape_depth, 1, kernel_size=7, padding=3)
        else:
            self.occlusion = None

    def sparse_motions(self, spatial: tuple[int, int, int], kp_driving: torch.Tensor, kp_source: torch.Tensor):
        """(B, 1 + K, D, H, W, 3): identity for the background, then grid - kp_driving + kp_source per keypoint."""
        b = kp_source.shape[0]
        identity = make_coordinate_grid(spatial, device=kp_source.device)[None, None]  # (1, 1, D, H, W, 3)
        shift = (kp_source - kp_driving).float()[:, :, None, None, None, :]
        return torch.cat([identity.expand(b, 1, *identity.shape[2:]), identity + shift], dim=1)

    def forward(self, feature: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor) -> dict:
        b, _, d, h, w = feature.shape
        k1 = self.num_kp + 1
        feature = F.relu(self.norm(self.compress(feature)))  # (B, 4, D, H, W)
        c = feature.shape[1]

        sparse = self.sparse_motions((d, h, w), kp_driving, kp_source)  # (B, K+1, D, H, W, 3) float32
        repeated = feature.float().unsqueeze(1).expand(b, k1, c, d, h, w).reshape(b * k1, c, d, h, w)
        deformed = F.grid_sample(repeated, sparse.reshape(b * k1, d, h, w, 3), align_corners=False)
        deformed = deformed.view(b, k1, c, d, h, w)

        heat = keypoint_gaussians(kp_driving.float(), (d, h, w)) - keypoint_gaussians(kp_source.float(), (d, h, w))
        heat = torch.cat([torch.zeros_like(heat[:, :1]), heat], dim=1).unsqueeze(2)  # (B, K+1, 1, D, H, W)

        inp = torch.cat([heat, deformed], dim=2).view(b, -1, d, h, w).to(feature.dtype)  # (B, (K+1)*5, D, H, W)
        prediction = self.hourglass(inp)

        mask = F.softmax(self.mask(prediction).float(), dim=1)  # (B, K+1, D, H, W)
        deformation = (sparse * mask.unsqueeze(-1)).sum(dim=1)  # (B, D, H, W, 3)
        out = {"mask": mask, "deformation": deformation, "sparse_motion": sparse, "heatmap": heat}
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion(prediction.reshape(b, -1, h, w)))  # (B, 1, H, W)
        return out


class WarpingNetwork(nn.Module):
    def __init__(self, cfg: WarpingConfig, appearance: AppearanceConfig):
        super().__init__()
        self.cfg = cfg
        self.dense_motion_network = DenseMotionNetwork(cfg, appearance.reshape_channel, appearance.reshape_depth)
        channels = cfg.block_expansion * 2**cfg.num_down_blocks
        self.third = SameBlock2d(appearance.reshape_channel * appearance.reshape_depth, channels, lrelu=True)
        self.fourth = Conv2d(channels, channels, kernel_size=1)

    def forward(self, feature_3d: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor) -> dict:
        dense = self.dense_motion_network(feature_3d, kp_driving=kp_driving, kp_source=kp_source)
        warped = F.grid_sample(feature_3d.float(), dense["deformation"], align_corners=False)  # (B, 32, 16, 64, 64)
        b, c, d, h, w = warped.shape
        out = self.fourth(self.third(warped.view(b, c * d, h, w).to(feature_3d.dtype)))  # (B, 256, 64, 64)
        occlusion = dense.get("occlusion_map")
        if occlusion is not None:
            out = out * occlusion
        return {"out": out, "deformation": dense["deformation"], "occlusion_map": occlusion, "dense": dense}

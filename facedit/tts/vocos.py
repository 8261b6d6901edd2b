"""The Vocos mel vocoder (charactr/vocos-mel-24khz): ConvNeXt backbone + ISTFT head, decoding with torch.istft.

Parameter names follow the published ``pytorch_model.bin``; the architecture comes from its ``config.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .mel import MelConfig


@dataclass(frozen=True)
class VocosConfig:
    """charactr/vocos-mel-24khz: 100 mels in, width 512, 1536 hidden, 8 layers, n_fft 1024, hop 256, centred."""

    input_channels: int = 100
    dim: int = 512
    intermediate_dim: int = 1536
    num_layers: int = 8
    n_fft: int = 1024
    hop_length: int = 256
    padding: str = "center"
    layer_scale: float | None = None
    mel: MelConfig = MelConfig()

    def __post_init__(self) -> None:
        if self.padding not in ("center", "same"):
            raise ValueError(f"VocosConfig.padding must be 'center' or 'same', got {self.padding!r}")


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, hidden: int, layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, hidden)
        self.pwconv2 = nn.Linear(hidden, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale)) if layer_scale > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, D, T)
        h = self.dwconv(x).transpose(1, 2)
        h = self.pwconv2(F.gelu(self.pwconv1(self.norm(h))))
        if self.gamma is not None:
            h = self.gamma * h
        return x + h.transpose(1, 2)


class VocosBackbone(nn.Module):
    def __init__(self, config: VocosConfig):
        super().__init__()
        scale = config.layer_scale if config.layer_scale is not None else 1 / config.num_layers
        self.embed = nn.Conv1d(config.input_channels, config.dim, kernel_size=7, padding=3)
        self.norm = nn.LayerNorm(config.dim, eps=1e-6)
        self.convnext = nn.ModuleList(
            [ConvNeXtBlock(config.dim, config.intermediate_dim, scale) for _ in range(config.num_layers)]
        )
        self.final_layer_norm = nn.LayerNorm(config.dim, eps=1e-6)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:  # (B, mels, T) -> (B, T, D)
        x = self.norm(self.embed(mel).transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x)
        return self.final_layer_norm(x.transpose(1, 2))


def _istft_same(spec: torch.Tensor, window: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Inverse STFT with 'same' padding: overlap-add of windowed frames, trimmed by (n_fft - hop) / 2 each side."""
    frames = torch.fft.irfft(spec, n_fft, dim=1) * window[None, :, None]  # (B, n_fft, T)
    count = frames.shape[-1]
    length = (count - 1) * hop + n_fft
    fold = dict(output_size=(1, length), kernel_size=(1, n_fft), stride=(1, hop))
    wave = F.fold(frames, **fold)[:, 0, 0]
    envelope = F.fold(window.square()[None, :, None].expand(1, n_fft, count), **fold)[0, 0, 0]
    trim = (n_fft - hop) // 2
    return wave[:, trim:-trim] / envelope[trim:-trim]


class ISTFTHead(nn.Module):
    def __init__(self, config: VocosConfig):
        super().__init__()
        self.config = config
        self.out = nn.Linear(config.dim, config.n_fft + 2)
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, samples)
        log_mag, phase = self.out(x).transpose(1, 2).float().chunk(2, dim=1)
        mag = torch.clamp(torch.exp(log_mag), max=1e2)
        spec = torch.polar(mag, phase)
        c = self.config
        if c.padding == "center":
            return torch.istft(spec, c.n_fft, c.hop_length, c.n_fft, self.window, center=True)
        return _istft_same(spec, self.window, c.n_fft, c.hop_length)


class Vocos(nn.Module):
    """Log-mel (B, 100, T) -> waveform (B, (T - 1) * hop) at 24 kHz."""

    def __init__(self, config: VocosConfig = VocosConfig()):
        super().__init__()
        self.config = config
        self.backbone = VocosBackbone(config)
        self.head = ISTFTHead(config)

    @property
    def sample_rate(self) -> int:
        return self.config.mel.sample_rate

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.ndim != 3 or mel.shape[1] != self.config.input_channels:
            raise ValueError(f"mel must be (B, {self.config.input_channels}, T), got {tuple(mel.shape)}")
        return self.head(self.backbone(mel))

"""F5-TTS's text-conditioned DiT (the F5TTS_v1 architecture), written to load the published weights strictly.

Parameter names follow the published checkpoint (``transformer.*`` under the ``ema_model.`` prefix), so a
state dict loads without renaming. The flow-matching sampler that drives it lives in ``facedit/tts/sampler.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

TEXT_POSITIONS = 8192
"""Sinusoidal text positions F5-TTS precomputes; a clip of more mel frames (~87 s at 24 kHz) cannot be edited."""


@dataclass(frozen=True)
class F5Config:
    """F5TTS_v1_Base: dim 1024, depth 22, heads 16, ff_mult 2, text_dim 512, conv_layers 4, 100 mels."""

    dim: int = 1024
    depth: int = 22
    heads: int = 16
    dim_head: int = 64
    ff_mult: int = 2
    text_dim: int = 512
    conv_layers: int = 4
    mel_dim: int = 100
    text_num_embeds: int = 2545
    qk_norm: bool = False
    long_skip: bool = False

    def __post_init__(self) -> None:
        for name in ("dim", "depth", "heads", "dim_head", "ff_mult", "text_dim", "mel_dim", "text_num_embeds"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"F5Config.{name} must be a positive int, got {value!r}")


def sinusoidal_table(dim: int, length: int) -> torch.Tensor:
    """(length, dim) table [cos | sin] of position x frequency, frequencies 10000^(-2i/dim)."""
    freqs = 1.0 / (10000.0 ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
    angles = torch.outer(torch.arange(length).float(), freqs)
    return torch.cat((angles.cos(), angles.sin()), dim=-1)


class GRN(nn.Module):
    """Global response normalisation over the time axis of (B, N, D)."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.linalg.vector_norm(x, dim=1, keepdim=True)  # (B, 1, D)
        n = g / (g.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * n) + self.beta + x


class ConvNeXtV2Block(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, hidden)
        self.grn = GRN(hidden)
        self.pwconv2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, D)
        h = self.dwconv(x.transpose(1, 2)).transpose(1, 2)
        h = self.grn(F.gelu(self.pwconv1(self.norm(h))))
        return x + self.pwconv2(h)


class TextEmbedding(nn.Module):
    """Character ids (-1 = padding) -> (B, N, text_dim), padded or cut to the N mel frames."""

    def __init__(self, num_embeds: int, dim: int, conv_layers: int):
        super().__init__()
        self.text_embed = nn.Embedding(num_embeds + 1, dim)  # id 0 is the filler
        self.register_buffer("positions", sinusoidal_table(dim, TEXT_POSITIONS), persistent=False)
        self.text_blocks = nn.Sequential(*[ConvNeXtV2Block(dim, dim * 2) for _ in range(conv_layers)])

    def forward(self, text: torch.Tensor, frames: int, drop_text: bool = False) -> torch.Tensor:
        if frames > TEXT_POSITIONS:
            raise ValueError(f"F5-TTS handles at most {TEXT_POSITIONS} mel frames, got {frames}")
        ids = text[:, :frames] + 1
        ids = F.pad(ids, (0, frames - ids.shape[1]), value=0)
        filler = (ids == 0)[..., None]  # (B, N, 1)
        if drop_text:
            ids = torch.zeros_like(ids)
        x = self.text_embed(ids) + self.positions[:frames]
        x = x.masked_fill(filler, 0.0)
        for block in self.text_blocks:
            x = block(x).masked_fill(filler, 0.0)
        return x


class ConvPositionEmbedding(nn.Module):
    def __init__(self, dim: int, kernel: int = 31, groups: int = 16):
        super().__init__()
        self.conv1d = nn.Sequential(
            nn.Conv1d(dim, dim, kernel, groups=groups, padding=kernel // 2),
            nn.Mish(),
            nn.Conv1d(dim, dim, kernel, groups=groups, padding=kernel // 2),
            nn.Mish(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, D)
        return self.conv1d(x.transpose(1, 2)).transpose(1, 2)


class InputEmbedding(nn.Module):
    def __init__(self, mel_dim: int, text_dim: int, dim: int):
        super().__init__()
        self.proj = nn.Linear(mel_dim * 2 + text_dim, dim)
        self.conv_pos_embed = ConvPositionEmbedding(dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        h = self.proj(torch.cat((x, cond, text), dim=-1))
        return self.conv_pos_embed(h) + h


class TimestepEmbedding(nn.Module):
    def __init__(self, dim: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.time_mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:  # (B,) -> (B, dim)
        half = self.freq_dim // 2
        freqs = torch.exp(torch.arange(half, device=t.device).float() * -(math.log(10000) / (half - 1)))
        angles = 1000.0 * t.float()[:, None] * freqs[None]
        return self.time_mlp(torch.cat((angles.sin(), angles.cos()), dim=-1).to(t.dtype))


class RotaryEmbedding(nn.Module):
    """RoPE frequencies 10000^(-2i/dim_head); the checkpoint carries them as ``rotary_embed.inv_freq``."""

    def __init__(self, dim_head: int):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (10000.0 ** (torch.arange(0, dim_head, 2).float() / dim_head)))

    def forward(self, frames: int) -> torch.Tensor:
        """(N, dim_head) angles, each frequency repeated for its (even, odd) channel pair."""
        inv = self.inv_freq.float()
        angles = torch.outer(torch.arange(frames, device=inv.device).float(), inv)
        return angles.repeat_interleave(2, dim=-1)


def apply_rotary(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent channel pairs (x0, x1) of (B, H, N, Dh) by the angles."""
    pairs = x.unflatten(-1, (-1, 2))
    rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
    return x * angles.cos().to(x.dtype) + rotated * angles.sin().to(x.dtype)


class AdaLayerNorm(nn.Module):
    def __init__(self, dim: int, chunks: int):
        super().__init__()
        self.linear = nn.Linear(dim, dim * chunks)
        self.chunks = chunks

    def forward(self, t: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.linear(F.silu(t)).chunk(self.chunks, dim=1)


class RMSNorm(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, eps=1e-6)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int, qk_norm: bool):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(dim, inner)
        self.to_v = nn.Linear(dim, inner)
        self.q_norm = RMSNorm(dim_head) if qk_norm else None
        self.k_norm = RMSNorm(dim_head) if qk_norm else None
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Identity()])

    def forward(self, x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = (proj(x).view(b, n, self.heads, -1).transpose(1, 2) for proj in (self.to_q, self.to_k, self.to_v))
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = apply_rotary(q, angles), apply_rotary(k, angles)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, H, N, Dh)
        return self.to_out[0](out.transpose(1, 2).reshape(b, n, -1))


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int):
        super().__init__()
        self.ff = nn.Sequential(
            nn.Sequential(nn.Linear(dim, dim * mult), nn.GELU(approximate="tanh")),
            nn.Identity(),
            nn.Linear(dim * mult, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff(x)


class DiTBlock(nn.Module):
    def __init__(self, config: F5Config):
        super().__init__()
        self.attn_norm = AdaLayerNorm(config.dim, 6)
        self.attn = Attention(config.dim, config.heads, config.dim_head, config.qk_norm)
        self.ff = FeedForward(config.dim, config.ff_mult)

    def forward(self, x: torch.Tensor, t: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        shift_a, scale_a, gate_a, shift_f, scale_f, gate_f = self.attn_norm(t)
        h = F.layer_norm(x, (x.shape[-1],), eps=1e-6) * (1 + scale_a[:, None]) + shift_a[:, None]
        x = x + gate_a[:, None] * self.attn(h, angles)
        h = F.layer_norm(x, (x.shape[-1],), eps=1e-6) * (1 + scale_f[:, None]) + shift_f[:, None]
        return x + gate_f[:, None] * self.ff(h)


class F5DiT(nn.Module):
    """Velocity of the mel flow: (noisy mel x, known mel cond, text ids, time) -> (B, N, mel_dim)."""

    def __init__(self, config: F5Config = F5Config()):
        super().__init__()
        self.config = config
        self.time_embed = TimestepEmbedding(config.dim)
        self.text_embed = TextEmbedding(config.text_num_embeds, config.text_dim, config.conv_layers)
        self.input_embed = InputEmbedding(config.mel_dim, config.text_dim, config.dim)
        self.rotary_embed = RotaryEmbedding(config.dim_head)
        self.transformer_blocks = nn.ModuleList([DiTBlock(config) for _ in range(config.depth)])
        self.long_skip_connection = nn.Linear(config.dim * 2, config.dim, bias=False) if config.long_skip else None
        self.norm_out = AdaLayerNorm(config.dim, 2)
        self.proj_out = nn.Linear(config.dim, config.mel_dim)

    def embed_text(self, text: torch.Tensor, frames: int, drop_text: bool = False) -> torch.Tensor:
        return self.text_embed(text, frames, drop_text)

    def forward(
        self,
        x: torch.Tensor,  # (B, N, mel) noisy mel
        cond: torch.Tensor,  # (B, N, mel) known mel, zero where generated
        text_embed: torch.Tensor,  # (B, N, text_dim) from embed_text
        time: torch.Tensor,  # (B,) or ()
    ) -> torch.Tensor:
        b, n, _ = x.shape
        if time.ndim == 0:
            time = time.repeat(b)
        t = self.time_embed(time)
        h = self.input_embed(x, cond, text_embed)
        angles = self.rotary_embed(n)
        residual = h
        for block in self.transformer_blocks:
            h = block(h, t, angles)
        if self.long_skip_connection is not None:
            h = self.long_skip_connection(torch.cat((h, residual), dim=-1))
        scale, shift = self.norm_out(t)
        h = F.layer_norm(h, (h.shape[-1],), eps=1e-6) * (1 + scale[:, None]) + shift[:, None]
        return self.proj_out(h)

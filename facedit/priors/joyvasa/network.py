"""JoyVASA's motion generator (jdh-algo/JoyVASA, ``DitTalkingHead``) in our own code, with its parameter names.

A transformer decoder denoises 100 frames of normalised motion (70 numbers: expression 63, scale 1, translation 3,
pitch/yaw/roll 3) given the 10 frames before them; self-attention runs over the 110 motion frames, and frame i
cross-attends only to audio frame i (HuBERT features at the motion's fps). The network predicts the clean sample
(``target='sample'``) of a cosine-schedule DDPM. The key names match the published checkpoint so that it loads
strictly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

AUDIO_UNIT = 320
"""Samples per HuBERT frame (50 Hz at 16 kHz)."""


@dataclass(frozen=True)
class JoyVASAConfig:
    """What the checkpoint's ``args`` (and its tensor shapes) say about the network."""

    motion_feat_dim: int = 70
    n_motions: int = 100
    n_prev_motions: int = 10
    feature_dim: int = 512
    n_heads: int = 8
    n_layers: int = 8
    mlp_ratio: int = 4
    n_diff_steps: int = 50
    fps: float = 25.0
    audio_dim: int = 768
    sample_rate: int = 16000

    @property
    def window_samples(self) -> int:
        return round(self.sample_rate * self.n_motions / self.fps)


def sinusoid_table(length: int, dim: int) -> torch.Tensor:
    """(1, length, dim): sin on even channels, cos on odd ones, wavelengths up to 10000 (the vanilla encoding)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table[None]


class CosineSchedule(nn.Module):
    """DDPM noise schedule with the cosine alpha-bar (s = 0.008); index 0 is the clean sample (beta_0 = 0)."""

    def __init__(self, num_steps: int, s: float = 0.008) -> None:
        super().__init__()
        x = torch.linspace(0, num_steps, num_steps + 1)
        bars = torch.cos(((x / num_steps) + s) / (1 + s) * torch.pi * 0.5) ** 2
        bars = bars / bars[0]
        betas = torch.cat([torch.zeros(1), torch.clip(1 - bars[1:] / bars[:-1], 0.0001, 0.999)])
        alphas = 1 - betas
        alpha_bars = torch.cumsum(torch.log(alphas), 0).exp()
        self.num_steps = num_steps
        self.register_buffer("betas", betas, persistent=False)
        self.register_buffer("alphas", alphas, persistent=False)
        self.register_buffer("alpha_bars", alpha_bars, persistent=False)


class PositionTable(nn.Module):
    def __init__(self, length: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoid_table(length, dim), persistent=False)


class DenoisingNetwork(nn.Module):
    def __init__(self, cfg: JoyVASAConfig) -> None:
        super().__init__()
        d, length = cfg.feature_dim, cfg.n_prev_motions + cfg.n_motions
        self.n_motions = cfg.n_motions
        self.TE = PositionTable(cfg.n_diff_steps + 1, d)
        self.diff_step_map = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))
        self.PE = PositionTable(600, d)
        self.feature_proj = nn.Linear(cfg.motion_feat_dim, d)
        layer = nn.TransformerDecoderLayer(
            d_model=d, nhead=cfg.n_heads, dim_feedforward=cfg.mlp_ratio * d, activation="gelu", batch_first=True
        )
        self.transformer = nn.TransformerDecoder(layer, num_layers=cfg.n_layers)
        self.register_buffer("alignment_mask", ~torch.eye(length, dtype=torch.bool), persistent=False)
        self.motion_dec = nn.Sequential(nn.Linear(d, d // 2), nn.GELU(), nn.Linear(d // 2, cfg.motion_feat_dim))

    def forward(
        self, motion: torch.Tensor, audio: torch.Tensor, prev_motion: torch.Tensor, prev_audio: torch.Tensor,
        step: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        """motion (N, L, d_m) noisy; audio (N, L, D); prev_* (N, L_p, .); step (N,) -> x0 (N, L_p + L, d_m)."""
        step_emb = self.diff_step_map(self.TE.pe[0, step])[:, None]  # (N, 1, D)
        x = self.feature_proj(torch.cat([prev_motion, motion], dim=1))  # (N, L_p + L, D)
        x = x + self.PE.pe[:, : x.shape[1]] + step_emb
        memory = torch.cat([prev_audio, audio], dim=1)  # (N, L_p + L, D)
        return self.motion_dec(self.transformer(x, memory, memory_mask=self.alignment_mask))


class JoyVASANet(nn.Module):
    """The whole generator: HuBERT, the audio projection, learned start/null tokens, the denoiser, the schedule."""

    def __init__(self, cfg: JoyVASAConfig, audio_encoder: nn.Module) -> None:
        super().__init__()
        self.cfg = cfg
        self.audio_encoder = audio_encoder
        self.audio_feature_map = nn.Linear(cfg.audio_dim, cfg.feature_dim)
        self.start_audio_feat = nn.Parameter(torch.zeros(1, cfg.n_prev_motions, cfg.feature_dim))
        self.start_motion_feat = nn.Parameter(torch.zeros(1, cfg.n_prev_motions, cfg.motion_feat_dim))
        self.null_audio_feat = nn.Parameter(torch.zeros(1, 1, cfg.feature_dim))
        self.denoising_net = DenoisingNetwork(cfg)
        self.diffusion_sched = CosineSchedule(cfg.n_diff_steps)

    @property
    def device(self) -> torch.device:
        return self.audio_feature_map.weight.device

    def audio_features(self, audio: torch.Tensor) -> torch.Tensor:
        """16 kHz audio (N, S) of n_motions frames -> (N, n_motions, feature_dim).

        As JoyVASA: reflect-pad so the conv stack yields exactly 2 frames per motion frame, run HuBERT at 50 Hz,
        then resample linearly to the motion's fps.
        """
        frames = self.cfg.n_motions
        hubert = self.audio_encoder
        conv = hubert.feature_extractor(pad_audio(audio))  # (N, C, ~2L)
        conv = conv[:, :, : round(2 * frames * 50 / self.cfg.fps)]
        conv = F.interpolate(conv, size=2 * frames, mode="linear", align_corners=False)
        hidden = hubert.feature_projection(conv.transpose(1, 2))
        hidden = hubert.encoder(hidden).last_hidden_state  # (N, 2L, 768)
        hidden = F.interpolate(hidden.transpose(1, 2), size=frames, mode="linear", align_corners=False)
        return self.audio_feature_map(hidden.transpose(1, 2))


def pad_audio(audio: torch.Tensor, unit: int = AUDIO_UNIT, slack: int = 80) -> torch.Tensor:
    """Reflect-pad (N, S) by about ``slack`` samples in all, so the conv stack's frame count is S // unit."""
    n_units = audio.shape[1] // unit
    side = math.ceil((unit * n_units + slack - audio.shape[1]) / 2)
    if side < 0:
        return audio
    reflect, replicate = side // 2, side % 2
    if reflect > 0:
        audio = F.pad(audio, (reflect, reflect), mode="reflect")
        audio = F.pad(audio, (reflect, reflect), mode="reflect")
    if replicate > 0:
        audio = F.pad(audio, (1, 1), mode="replicate")
    return audio

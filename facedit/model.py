"""FacEDiT backbone: a speech-conditional Diffusion Transformer that predicts flow velocity for motion.

Paper section 3.2, with F5-TTS's DiT as the template it names:
    concat(x_t, masked motion) -> linear -> + convolutional positional embedding      # (B, T, dim)
    speech features -> LayerNorm -> linear                                              # (B, N, dim)
    depth x block:  adaLN-Zero( self-attention, RoPE, local window in frames )
                    adaLN-Zero( cross-attention to speech, RoPE in seconds, window in seconds )
                    adaLN-Zero( feed-forward )
    adaptive LayerNorm -> linear -> velocity                                            # (B, T, 75)

Positions. Motion frame i stands at i / fps seconds, speech frame j at offset + j / rate seconds. RoPE
positions are those times multiplied by fps, so a motion frame's position is its frame index and a
speech frame that happens at the same instant gets the same (fractional) position.

adaLN layout (a decision the paper leaves open). DiT's faithful layout gives each block its own
Linear(dim, 9 * dim) for the shift/scale/gate of its three sub-layers: 9.4M parameters per block,
207.7M of the 493.4M total at the paper size. The timestep is one scalar, so those projections are
heavily redundant, and they would double the weights every sampling step streams from memory. The
default "shared" layout (PixArt-alpha's adaLN-single) computes the 9 x dim modulation once per
forward from the timestep embedding and adds a learned per-block table of 9 x dim offsets (9,216
parameters per block). The paper preset then has 295.2M parameters, 9.6M of them block modulation.
Zero-initialising the shared projection and the tables keeps adaLN-Zero's property that every block
starts as the identity. `FacEDiTConfig(adaln="per_block")` builds the faithful DiT layout instead.

Other choices: RoPE on every head (F5-TTS); no qk-norm; a LayerNorm on the raw speech features before
the projection, because WavLM hidden states carry a few large-magnitude channels; classifier-free
guidance drops speech by removing the cross-attention's contribution for the dropped samples, which
needs no learned null token. Padding never leaks: padded motion is zeroed before and after the
convolution, padded motion and speech are masked as keys, and padded rows are zeroed after every block.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .attention import AttentionPlan, all_true, apply_rope, attend, plan_attention, rope_cos_sin
from .config import FacEDiTConfig
from .normalization import MotionNormalizer

ATTENTION_MODES = ("auto", "dense", "local")


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return torch.addcmul(shift[:, None], x, 1 + scale[:, None])


class TimestepEmbedding(nn.Module):
    """Flow time t in [0, 1] -> sinusoidal features of 1000 t -> MLP -> (B, dim)."""

    def __init__(self, freq_dim: int, dim: int):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        args = 1000.0 * t.float()[:, None] * freqs[None]
        features = torch.cat((args.cos(), args.sin()), dim=-1)
        return self.mlp(features.to(self.mlp[0].weight.dtype))


class ConvPositionEmbedding(nn.Module):
    """Two grouped 1-D convolutions with Mish (F5-TTS). Padding is zeroed before each convolution, so a
    clip's result does not depend on how much padding its batch adds (F5-TTS masks only in and out)."""

    def __init__(self, dim: int, kernel: int, groups: int):
        super().__init__()
        self.conv1 = nn.Conv1d(dim, dim, kernel, groups=groups, padding=kernel // 2)
        self.conv2 = nn.Conv1d(dim, dim, kernel, groups=groups, padding=kernel // 2)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        pad = ~valid[:, None, :]
        h = x.transpose(1, 2).masked_fill(pad, 0.0)  # (B, dim, T)
        h = F.mish(self.conv1(h)).masked_fill(pad, 0.0)
        h = F.mish(self.conv2(h)).masked_fill(pad, 0.0)
        return h.transpose(1, 2)


class Attention(nn.Module):
    """Multi-head attention with RoPE and the local window bias; queries from x, keys/values from context."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.to_out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, context, q_rope, k_rope, plan: AttentionPlan) -> torch.Tensor:
        batch = x.shape[0]

        def split(h: torch.Tensor) -> torch.Tensor:
            return h.view(batch, h.shape[1], self.heads, h.shape[-1] // self.heads).transpose(1, 2)  # (B, H, L, d)

        q = apply_rope(split(self.to_q(x)), *q_rope)
        k = apply_rope(split(self.to_k(context)), *k_rope)
        v = split(self.to_v(context))
        out = attend(q, k, v, plan)
        out = out.transpose(1, 2).reshape(batch, x.shape[1], -1)
        return self.dropout(self.to_out(out))


class FeedForward(nn.Sequential):
    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__(
            nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )


class FacEDiTBlock(nn.Module):
    """Self-attention, cross-attention to speech and FFN, each with adaLN-Zero shift/scale/gate."""

    def __init__(self, cfg: FacEDiTConfig):
        super().__init__()
        dim = cfg.dim
        self.norm_self = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.self_attn = Attention(dim, cfg.heads, cfg.dropout)
        self.norm_cross = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.cross_attn = Attention(dim, cfg.heads, cfg.dropout)
        self.norm_ffn = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ffn = FeedForward(dim, cfg.ffn_dim, cfg.dropout)
        if cfg.adaln == "per_block":
            self.adaln = nn.Linear(dim, 9 * dim)
        else:
            self.adaln_offset = nn.Parameter(torch.zeros(9, dim))

    def modulation(self, t_emb: torch.Tensor, shared: torch.Tensor | None) -> torch.Tensor:
        """(B, 9, dim) shift/scale/gate for self-attention, cross-attention, FFN."""
        if shared is None:
            return self.adaln(F.silu(t_emb)).view(t_emb.shape[0], 9, -1)
        return shared + self.adaln_offset

    def forward(self, x, mod, motion: dict, speech: dict | None, keep_speech, padding) -> torch.Tensor:
        """x (B, T, dim); mod (B, 9, dim); motion/speech: rope tables, tokens and attention plans;
        keep_speech (B,) or None; padding (B, T, 1) True on padded frames, or None."""
        shift, scale, gate = mod[:, 0], mod[:, 1], mod[:, 2]
        h = _modulate(self.norm_self(x), shift, scale)
        x = torch.addcmul(x, gate[:, None], self.self_attn(h, h, motion["rope"], motion["rope"], motion["plan"]))

        if speech is not None:
            shift, scale, gate = mod[:, 3], mod[:, 4], mod[:, 5]
            h = _modulate(self.norm_cross(x), shift, scale)
            attended = self.cross_attn(h, speech["tokens"], motion["rope"], speech["rope"], speech["plan"])
            if keep_speech is not None:
                attended = attended * keep_speech[:, None, None]
            x = torch.addcmul(x, gate[:, None], attended)

        shift, scale, gate = mod[:, 6], mod[:, 7], mod[:, 8]
        x = torch.addcmul(x, gate[:, None], self.ffn(_modulate(self.norm_ffn(x), shift, scale)))
        return x if padding is None else x.masked_fill(padding, 0.0)


class FacEDiT(nn.Module):
    """Velocity network v_theta(x_t, t; speech, masked motion). See the module docstring."""

    dense_max_frames = 512  # above this many motion frames the block-local attention path is used
    chunk_frames = 128  # query block size of the block-local path

    def __init__(self, config: FacEDiTConfig):
        super().__init__()
        if not isinstance(config, FacEDiTConfig):
            raise TypeError(f"FacEDiT expects a FacEDiTConfig, got {type(config).__name__}")
        self.config = cfg = config
        self.normalizer = MotionNormalizer(cfg.motion_dim)
        self.time_embed = TimestepEmbedding(cfg.time_freq_dim, cfg.dim)
        self.input_proj = nn.Linear(2 * cfg.motion_dim, cfg.dim)
        self.conv_pos = ConvPositionEmbedding(cfg.dim, cfg.conv_pos_kernel, cfg.conv_pos_groups)
        self.speech_norm = nn.LayerNorm(cfg.speech_dim)
        self.speech_proj = nn.Linear(cfg.speech_dim, cfg.dim)
        self.adaln_shared = nn.Linear(cfg.dim, 9 * cfg.dim) if cfg.adaln == "shared" else None
        self.blocks = nn.ModuleList(FacEDiTBlock(cfg) for _ in range(cfg.depth))
        self.norm_out = nn.LayerNorm(cfg.dim, elementwise_affine=False, eps=1e-6)
        self.adaln_out = nn.Linear(cfg.dim, 2 * cfg.dim)
        self.proj_out = nn.Linear(cfg.dim, cfg.motion_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """DiT initialisation: xavier linears, N(0, 0.02) timestep MLP, zero modulation and output."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        for layer in (self.time_embed.mlp[0], self.time_embed.mlp[2]):
            nn.init.normal_(layer.weight, std=0.02)
        zero = [self.adaln_out, self.proj_out]
        zero += [self.adaln_shared] if self.adaln_shared is not None else [block.adaln for block in self.blocks]
        for layer in zero:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        for block in self.blocks:
            if hasattr(block, "adaln_offset"):
                nn.init.zeros_(block.adaln_offset)

    @property
    def device(self) -> torch.device:
        return self.proj_out.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.proj_out.weight.dtype

    def normalize(self, motion: torch.Tensor) -> torch.Tensor:
        return self.normalizer.normalize(motion)

    def denormalize(self, motion: torch.Tensor) -> torch.Tensor:
        return self.normalizer.denormalize(motion)

    def set_motion_stats(self, mean, std) -> None:
        self.normalizer.set_stats(mean, std)

    def forward(
        self,
        x_t: torch.Tensor,
        cond: torch.Tensor,
        speech: torch.Tensor,
        t: torch.Tensor | float,
        *,
        motion_mask: torch.Tensor | None = None,
        speech_mask: torch.Tensor | None = None,
        speech_frame_rate: float | None = None,
        speech_offset_s: float | None = None,
        drop_speech: bool | torch.Tensor = False,
        attention: str = "auto",
    ) -> torch.Tensor:
        """Predict the flow velocity (B, T, motion_dim), zero on padded frames.

        x_t, cond: (B, T, motion_dim) noisy and masked (zeros where generated) normalised motion.
        speech: (B, N, speech_dim); t: (B,) or a scalar flow time in [0, 1].
        motion_mask (B, T), speech_mask (B, N): True for real frames (None: all real).
        speech_frame_rate / speech_offset_s: where speech frame j stands, offset + j / rate seconds
        (None: the config's values). drop_speech: bool or (B,) bool, samples that ignore speech (CFG).
        attention: "dense", "local" (block-local, memory linear in T) or "auto" (local above
        `dense_max_frames`); both give the same result.
        """
        cfg = self.config
        batch, frames, _ = self._check_inputs(x_t, cond, speech, motion_mask, speech_mask)
        device, dtype = x_t.device, self.dtype
        if attention not in ATTENTION_MODES:
            raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {attention!r}")
        rate = cfg.speech_frame_rate if speech_frame_rate is None else float(speech_frame_rate)
        offset = cfg.speech_offset_s if speech_offset_s is None else float(speech_offset_s)
        if not rate > 0:
            raise ValueError(f"speech_frame_rate must be > 0, got {rate}")
        chunk = (
            self.chunk_frames
            if attention == "local" or (attention == "auto" and frames > self.dense_max_frames)
            else None
        )

        t = torch.as_tensor(t, device=device, dtype=torch.float32)
        if t.ndim == 0:
            t = t.expand(batch)
        if t.shape != (batch,):
            raise ValueError(f"t must be a scalar or shape ({batch},), got {tuple(t.shape)}")
        motion_valid = (
            torch.ones(batch, frames, dtype=torch.bool, device=device)
            if motion_mask is None
            else motion_mask.to(device, torch.bool)
        )
        speech_valid = (
            torch.ones(batch, speech.shape[1], dtype=torch.bool, device=device)
            if speech_mask is None
            else speech_mask.to(device, torch.bool)
        )

        keep_speech = None
        if isinstance(drop_speech, torch.Tensor):
            if drop_speech.shape != (batch,):
                raise ValueError(f"drop_speech must be a bool or shape ({batch},), got {tuple(drop_speech.shape)}")
            keep_speech = (~drop_speech.to(device, torch.bool)).to(dtype)
            use_speech = bool(keep_speech.any())
        else:
            use_speech = not drop_speech
        use_speech = use_speech and speech.shape[1] > 0  # no speech frames: cross-attention adds nothing

        # Times in seconds and RoPE positions (= seconds * fps) for motion and speech frames; the
        # attention masks are the same in every layer, so they are planned once here.
        frame_index = torch.arange(frames, device=device)
        motion_time = frame_index.to(torch.float64) / cfg.fps
        motion = dict(
            rope=rope_cos_sin(frame_index.to(torch.float64), cfg.head_dim, cfg.rope_theta, dtype),
            plan=plan_attention(frame_index, frame_index, cfg.window, motion_valid, chunk),
        )
        padding = None if all_true(motion_valid) else ~motion_valid[..., None]

        x = torch.cat((x_t, cond), dim=-1).to(dtype).masked_fill(~motion_valid[..., None], 0.0)
        x = self.input_proj(x)  # (B, T, dim)
        x = x + self.conv_pos(x, motion_valid)

        speech_ctx = None
        if use_speech:
            speech_time = offset + torch.arange(speech.shape[1], device=device, dtype=torch.float64) / rate
            speech = speech.to(dtype).masked_fill(~speech_valid[..., None], 0.0)
            tokens = self.speech_proj(self.speech_norm(speech))  # (B, N, dim)
            speech_ctx = dict(
                tokens=tokens,
                rope=rope_cos_sin(speech_time * cfg.fps, cfg.head_dim, cfg.rope_theta, dtype),
                plan=plan_attention(motion_time, speech_time, cfg.cross_window_s, speech_valid, chunk),
            )

        t_emb = self.time_embed(t)  # (B, dim)
        shared = None
        if self.adaln_shared is not None:
            shared = self.adaln_shared(F.silu(t_emb)).view(batch, 9, cfg.dim)
        for block in self.blocks:
            x = block(x, block.modulation(t_emb, shared), motion, speech_ctx, keep_speech, padding)

        shift, scale = self.adaln_out(F.silu(t_emb)).chunk(2, dim=-1)
        out = self.proj_out(_modulate(self.norm_out(x), shift, scale))
        return out.masked_fill(~motion_valid[..., None], 0.0)

    def _check_inputs(self, x_t, cond, speech, motion_mask, speech_mask) -> tuple[int, int, int]:
        cfg = self.config
        if x_t.ndim != 3 or x_t.shape[-1] != cfg.motion_dim:
            raise ValueError(f"x_t must be (B, T, {cfg.motion_dim}), got {tuple(x_t.shape)}")
        if cond.shape != x_t.shape:
            raise ValueError(f"cond must match x_t's shape {tuple(x_t.shape)}, got {tuple(cond.shape)}")
        batch, frames, _ = x_t.shape
        if speech.ndim != 3 or speech.shape[0] != batch or speech.shape[-1] != cfg.speech_dim:
            raise ValueError(f"speech must be ({batch}, N, {cfg.speech_dim}), got {tuple(speech.shape)}")
        if motion_mask is not None and motion_mask.shape != (batch, frames):
            raise ValueError(f"motion_mask must be ({batch}, {frames}), got {tuple(motion_mask.shape)}")
        if speech_mask is not None and speech_mask.shape != speech.shape[:2]:
            raise ValueError(f"speech_mask must be {tuple(speech.shape[:2])}, got {tuple(speech_mask.shape)}")
        return batch, frames, speech.shape[1]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

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

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .accel import fused
from .accel.fused import Linear
from .attention import (
    AttentionPlan,
    all_true,
    attend_buffers,
    key_buffers,
    plan_attention,
    query_buffer,
    rope_cos_sin,
)
from .config import FacEDiTConfig
from .normalization import MotionNormalizer

ATTENTION_MODES = ("auto", "dense", "local")
_SCALE_ONES = torch.tensor([0.0, 1.0, 0.0] * 3)[:, None]  # added to the 9 modulation rows: 1 + scale


def _norm_modulate(x: torch.Tensor, shift: torch.Tensor, scale1: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """adaLN: LayerNorm(x) * (1 + scale) + shift, with scale1 = 1 + scale (B, dim); one fused op for B = 1."""
    if x.shape[0] == 1:
        return F.layer_norm(x, x.shape[-1:], scale1[0], shift[0], eps)
    return torch.addcmul(shift[:, None], F.layer_norm(x, x.shape[-1:], eps=eps), scale1[:, None])


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

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None) -> torch.Tensor:
        """x (B, T, dim); padding (B, T, 1) True on padded frames, or None."""
        pad = None if padding is None else padding.transpose(1, 2)
        h = x.transpose(1, 2)  # (B, dim, T)
        h = h if pad is None else h.masked_fill(pad, 0.0)
        for conv in (self.conv1, self.conv2):
            h = F.mish(fused.conv1d(h, conv))
            h = h if pad is None else h.masked_fill(pad, 0.0)
        return h.transpose(1, 2)


class Attention(nn.Module):
    """Multi-head attention with RoPE and the local window bias; queries from x, keys/values from context."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.to_q = Linear(dim, dim)
        self.to_k = Linear(dim, dim)
        self.to_v = Linear(dim, dim)
        self.to_out = Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def _split(self, h: torch.Tensor) -> torch.Tensor:
        return h.view(h.shape[0], h.shape[1], self.heads, h.shape[-1] // self.heads)  # token-major (B, L, H, d)

    def project_kv(self, context, k_rope, plan: AttentionPlan) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys (with RoPE) and values of context as `key_buffers` lays them out, padding keys zeroed."""
        return key_buffers(self._split(self.to_k(context)), self._split(self.to_v(context)), plan, k_rope)

    def forward(self, x, context, q_rope, k_rope, plan: AttentionPlan, kv=None) -> torch.Tensor:
        """kv: `project_kv(context, k_rope, plan)` computed beforehand (context is then not used).

        RoPE writes the queries and keys straight into the head-major buffers SDPA reads; on the
        block-local path each query chunk reads its keys as a strided window of those buffers."""
        q = query_buffer(self._split(self.to_q(x)), plan, q_rope)
        k, v = self.project_kv(context, k_rope, plan) if kv is None else kv
        return self.dropout(self.to_out(attend_buffers(q, k, v, plan)))


class FeedForward(nn.Sequential):
    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__(Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Dropout(dropout), Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self[2].p > 0:
            return super().forward(x)
        return self[3](self[0](x, gelu_tanh=True))  # the GELU fused where `fused.linear` can


class FacEDiTBlock(nn.Module):
    """Self-attention, cross-attention to speech and FFN, each with adaLN-Zero shift/scale/gate."""

    def __init__(self, cfg: FacEDiTConfig):
        super().__init__()
        dim = cfg.dim
        self.self_attn = Attention(dim, cfg.heads, cfg.dropout)
        self.cross_attn = Attention(dim, cfg.heads, cfg.dropout)
        self.ffn = FeedForward(dim, cfg.ffn_dim, cfg.dropout)
        if cfg.adaln == "per_block":
            self.adaln = nn.Linear(dim, 9 * dim)
        else:
            self.adaln_offset = nn.Parameter(torch.zeros(9, dim))

    def modulation(self, t_emb: torch.Tensor, shared: torch.Tensor | None) -> torch.Tensor:
        """(B, 9, dim) shift / 1 + scale / gate for self-attention, cross-attention, FFN.

        shared: the shared layout's projection of t_emb with 1 already added to its scale rows
        (`FacEDiT.forward`), so that no block adds it again."""
        if shared is None:
            mod = self.adaln(F.silu(t_emb)).view(t_emb.shape[0], 9, -1)
            return mod + _SCALE_ONES.to(mod)
        return shared + self.adaln_offset

    def forward(self, x, mod, motion: dict, speech: dict | None, keep_speech, padding, speech_kv=None) -> torch.Tensor:
        """x (B, T, dim); mod (B, 9, dim); motion/speech: rope tables, tokens and attention plans;
        keep_speech (B,) or None; padding (B, T, 1) True on padded frames, or None; speech_kv: this
        block's cross-attention keys/values from `FacEDiT.prepare` (None: projected from the tokens)."""
        shift, scale1, gate = mod[:, 0], mod[:, 1], mod[:, 2]
        h = _norm_modulate(x, shift, scale1)
        x = torch.addcmul(x, gate[:, None], self.self_attn(h, h, motion["rope"], motion["rope"], motion["plan"]))

        if speech is not None:
            shift, scale1, gate = mod[:, 3], mod[:, 4], mod[:, 5]
            h = _norm_modulate(x, shift, scale1)
            attended = self.cross_attn(h, speech["tokens"], motion["rope"], speech["rope"], speech["plan"], speech_kv)
            if keep_speech is not None:
                attended = attended * keep_speech[:, None, None]
            x = torch.addcmul(x, gate[:, None], attended)

        shift, scale1, gate = mod[:, 6], mod[:, 7], mod[:, 8]
        x = torch.addcmul(x, gate[:, None], self.ffn(_norm_modulate(x, shift, scale1)))
        return x if padding is None else x.masked_fill(padding, 0.0)


class FacEDiT(nn.Module):
    """Velocity network v_theta(x_t, t; speech, masked motion). See the module docstring."""

    # Above dense_max_frames motion frames the block-local attention path is used, in query blocks of
    # chunk_frames. Measured at the paper size on an AVX-512/AMX CPU (bench/bench_model.py's shapes, one
    # thread, loaded machine, each setting timed next to the others): the block-local path beats the dense
    # one at 10 s of motion by ~5% in float32 and ~15% in bfloat16, and 32-frame blocks beat 64-frame ones
    # by 2-6% at 10 s and ~10% at 60 s in bfloat16 (SDPA's fused kernel pays per block, but a block's keys
    # reach little beyond its window, so less masked-out work is done).
    dense_max_frames = 128
    chunk_frames = 32

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
        speech: torch.Tensor | None,
        t: torch.Tensor | float,
        *,
        motion_mask: torch.Tensor | None = None,
        speech_mask: torch.Tensor | None = None,
        speech_frame_rate: float | None = None,
        speech_offset_s: float | None = None,
        drop_speech: bool | torch.Tensor = False,
        attention: str = "auto",
        cache: ConditionCache | None = None,
    ) -> torch.Tensor:
        """Predict the flow velocity (B, T, motion_dim), zero on padded frames.

        x_t, cond: (B, T, motion_dim) noisy and masked (zeros where generated) normalised motion.
        speech: (B, N, speech_dim); t: (B,) or a scalar flow time in [0, 1].
        motion_mask (B, T), speech_mask (B, N): True for real frames (None: all real).
        speech_frame_rate / speech_offset_s: where speech frame j stands, offset + j / rate seconds
        (None: the config's values). drop_speech: bool or (B,) bool, samples that ignore speech (CFG).
        attention: "dense", "local" (block-local, memory linear in T) or "auto" (local above
        `dense_max_frames`); both give the same result.
        cache: `prepare(...)`'s result, which already holds speech and every other argument after t
        (pass speech=None and leave them unset); the velocity is the same as without it.
        """
        cfg = self.config
        if x_t.ndim != 3 or x_t.shape[-1] != cfg.motion_dim:
            raise ValueError(f"x_t must be (B, T, {cfg.motion_dim}), got {tuple(x_t.shape)}")
        if cond.shape != x_t.shape:
            raise ValueError(f"cond must match x_t's shape {tuple(x_t.shape)}, got {tuple(cond.shape)}")
        batch, frames, _ = x_t.shape
        if cache is None:
            if not isinstance(speech, torch.Tensor) or speech.ndim != 3 or speech.shape[0] != batch:
                shape = tuple(speech.shape) if isinstance(speech, torch.Tensor) else speech
                raise ValueError(f"speech must be ({batch}, N, {cfg.speech_dim}), got {shape}")
            cache = self._condition(
                speech, frames, motion_mask=motion_mask, speech_mask=speech_mask, speech_frame_rate=speech_frame_rate,
                speech_offset_s=speech_offset_s, drop_speech=drop_speech, attention=attention, device=x_t.device,
            )  # fmt: skip
        else:
            self._check_cache(cache, batch, frames, speech, motion_mask, speech_mask, speech_frame_rate,
                              speech_offset_s, drop_speech, attention)  # fmt: skip
        device, dtype = x_t.device, self.dtype

        t = torch.as_tensor(t, device=device, dtype=torch.float32)
        if t.ndim == 0:
            t = t.expand(batch)
        if t.shape != (batch,):
            raise ValueError(f"t must be a scalar or shape ({batch},), got {tuple(t.shape)}")

        x = torch.cat((x_t, cond), dim=-1).to(dtype)
        if cache.padding is not None:
            x = x.masked_fill(cache.padding, 0.0)
        x = self.input_proj(x)  # (B, T, dim)
        x = x + self.conv_pos(x, cache.padding)

        t_emb = self.time_embed(t)  # (B, dim)
        shared = None
        if self.adaln_shared is not None:
            shared = self.adaln_shared(F.silu(t_emb)).view(batch, 9, cfg.dim) + _SCALE_ONES.to(t_emb)
        speech_kv = cache.speech_kv or (None,) * len(self.blocks)
        for block, kv in zip(self.blocks, speech_kv, strict=True):
            mod = block.modulation(t_emb, shared)
            x = block(x, mod, cache.motion, cache.speech, cache.keep_speech, cache.padding, kv)

        shift, scale = self.adaln_out(F.silu(t_emb)).chunk(2, dim=-1)
        out = self.proj_out(_norm_modulate(x, shift, 1 + scale))
        return out if cache.padding is None else out.masked_fill(cache.padding, 0.0)

    def prepare(
        self,
        speech: torch.Tensor,
        frames: int,
        *,
        motion_mask: torch.Tensor | None = None,
        speech_mask: torch.Tensor | None = None,
        speech_frame_rate: float | None = None,
        speech_offset_s: float | None = None,
        drop_speech: bool | torch.Tensor = False,
        attention: str = "auto",
        cache_speech: bool = True,
    ) -> ConditionCache:
        """Everything `forward` computes from neither x_t, cond nor t, for `forward(..., cache=...)`:
        RoPE tables, attention masks and every block's cross-attention keys/values of the speech.

        Arguments as `forward`'s, for motion of `frames` frames. The sampler calls the network with the
        same speech at every ODE step, so it prepares once per sample. The cache holds
        2 * depth * B * N * dim values of the model's dtype (the speech keys and values of all blocks:
        ~540 MB for 60 s of speech at the paper size in float32, twice that with guidance).
        cache_speech=False keeps only the projected speech tokens (B * N * dim values) and projects
        every block's keys/values again in each call: the same velocity, bit for bit, for the memory
        of one block's keys instead of all of them, at the cost of those projections in every step.
        """
        cache = self._condition(
            speech, frames, motion_mask=motion_mask, speech_mask=speech_mask, speech_frame_rate=speech_frame_rate,
            speech_offset_s=speech_offset_s, drop_speech=drop_speech, attention=attention, device=self.device,
        )  # fmt: skip
        if cache.speech is None or not cache_speech:
            return cache
        ctx = cache.speech
        kv = tuple(block.cross_attn.project_kv(ctx["tokens"], ctx["rope"], ctx["plan"]) for block in self.blocks)
        return dataclasses.replace(cache, speech=dict(ctx, tokens=None), speech_kv=kv)

    def _condition(
        self, speech, frames, *, motion_mask, speech_mask, speech_frame_rate, speech_offset_s, drop_speech,
        attention, device,
    ) -> ConditionCache:  # fmt: skip
        cfg = self.config
        if not isinstance(frames, int) or isinstance(frames, bool) or frames < 0:
            raise ValueError(f"frames must be an int >= 0, got {frames!r}")
        batch = self._check_speech(speech, frames, motion_mask, speech_mask)
        dtype = self.dtype
        if attention not in ATTENTION_MODES:
            raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {attention!r}")
        rate = cfg.speech_frame_rate if speech_frame_rate is None else float(speech_frame_rate)
        offset = cfg.speech_offset_s if speech_offset_s is None else float(speech_offset_s)
        if not rate > 0:
            raise ValueError(f"speech_frame_rate must be > 0, got {rate}")
        long = frames > self.dense_max_frames and torch.device(device).type != "meta"  # meta: shapes only
        chunk = self.chunk_frames if attention == "local" or (attention == "auto" and long) else None
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
            rope=self._rope(frame_index.to(torch.float64)),
            plan=plan_attention(frame_index, frame_index, cfg.window, motion_valid, chunk, dtype),
        )
        padding = None if all_true(motion_valid) else ~motion_valid[..., None]

        speech_ctx = None
        if use_speech:
            speech_time = offset + torch.arange(speech.shape[1], device=device, dtype=torch.float64) / rate
            speech = speech.to(device, dtype).masked_fill(~speech_valid[..., None], 0.0)
            tokens = self.speech_proj(self.speech_norm(speech))  # (B, N, dim)
            speech_ctx = dict(
                tokens=tokens,
                rope=self._rope(speech_time * cfg.fps),
                plan=plan_attention(motion_time, speech_time, cfg.cross_window_s, speech_valid, chunk, dtype),
            )
        return ConditionCache(batch, frames, dtype, motion_valid, padding, motion, speech_ctx, keep_speech)

    def _rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return rope_cos_sin(positions, self.config.head_dim, self.config.rope_theta, self.dtype)

    def _check_speech(self, speech, frames, motion_mask, speech_mask) -> int:
        cfg = self.config
        if not isinstance(speech, torch.Tensor) or speech.ndim != 3 or speech.shape[-1] != cfg.speech_dim:
            shape = tuple(speech.shape) if isinstance(speech, torch.Tensor) else type(speech).__name__
            raise ValueError(f"speech must be (B, N, {cfg.speech_dim}), got {shape}")
        batch = speech.shape[0]
        if motion_mask is not None and motion_mask.shape != (batch, frames):
            raise ValueError(f"motion_mask must be ({batch}, {frames}), got {tuple(motion_mask.shape)}")
        if speech_mask is not None and speech_mask.shape != speech.shape[:2]:
            raise ValueError(f"speech_mask must be {tuple(speech.shape[:2])}, got {tuple(speech_mask.shape)}")
        return batch

    def _check_cache(self, cache, batch, frames, speech, *given) -> None:
        if not isinstance(cache, ConditionCache):
            raise TypeError(f"cache must be a ConditionCache from FacEDiT.prepare, got {type(cache).__name__}")
        if (cache.batch, cache.frames) != (batch, frames):
            raise ValueError(
                f"cache was prepared for batch {cache.batch} and {cache.frames} frames, x_t has {batch} and {frames}"
            )
        if cache.dtype != self.dtype:
            raise ValueError(f"cache was prepared in {cache.dtype}, the model now runs in {self.dtype}")
        motion_mask, speech_mask, rate, offset, drop_speech, attention = given
        unset = all(g is None for g in (speech, motion_mask, speech_mask, rate, offset))
        if not (unset and drop_speech is False and attention == "auto"):
            raise ValueError(
                "with a cache, pass speech=None and no speech/mask/timing/drop_speech/attention arguments: "
                "the cache was prepared with them (FacEDiT.prepare)"
            )


@dataclass(frozen=True)
class ConditionCache:
    """What `FacEDiT.forward` derives from the speech, the masks and the timing, none of which change
    between the sampler's ODE steps. Built by `FacEDiT.prepare`.

    motion / speech: RoPE tables and attention plans (speech tokens None once projected);
    speech_kv: per block, the cross-attention keys/values (None: no speech is attended).
    """

    batch: int
    frames: int
    dtype: torch.dtype
    motion_valid: torch.Tensor
    padding: torch.Tensor | None
    motion: dict
    speech: dict | None
    keep_speech: torch.Tensor | None
    speech_kv: tuple[tuple[torch.Tensor, torch.Tensor], ...] | None = None


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

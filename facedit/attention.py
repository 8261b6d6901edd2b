"""Rotary position embedding and local-window attention for FacEDiT.

Both attentions of a FacEDiT block use the paper's bias B: query i may attend key j only when
    q_coord[i] - width <= k_coord[j] < q_coord[i] + width,
in motion frames for self-attention (exact integer coordinates) and in seconds for cross-attention
to speech. Because every query sees only a bounded stretch of keys, the attention can be evaluated
block by block: queries in chunks of C, each against the keys its window can reach. That "local"
path gives the dense masked result (up to float summation order) with memory linear in the length,
which is what lets the sampler run on minutes of motion.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def rope_cos_sin(
    positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotation tables [L, head_dim] for (possibly fractional) positions [L]: (cos, cos) and (-sin, sin).

    Angles are formed in float64 so that position 15000 rotates as precisely as position 1.
    """
    half = head_dim // 2
    inv_freq = theta ** (-torch.arange(half, dtype=torch.float64, device=positions.device) / half)
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    cos, sin = angles.cos(), angles.sin()
    return torch.cat((cos, cos), dim=-1).to(dtype), torch.cat((-sin, sin), dim=-1).to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (c, c + d/2) of x [..., L, d] by the angles behind `rope_cos_sin`'s tables
    (token-major x [B, L, H, d] takes the tables as [L, 1, d])."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.addcmul(x * cos, torch.cat((x2, x1), dim=-1), sin)  # (x1 cos - x2 sin, x2 cos + x1 sin)


def window_allowed(q_coord: torch.Tensor, k_coord: torch.Tensor, width: float | int) -> torch.Tensor:
    """Bias B as a boolean: allowed[..., i, j] = q[i] - width <= k[j] < q[i] + width."""
    q = q_coord[..., :, None]
    k = k_coord[..., None, :]
    return (k >= q - width) & (k < q + width)


def all_true(mask: torch.Tensor) -> bool:
    """mask.all(), answered False on the meta device (shape-only runs keep every safeguard)."""
    return not mask.is_meta and bool(mask.all())


@dataclass(frozen=True)
class AttentionPlan:
    """Everything about a windowed attention that does not depend on q/k/v: built once per forward
    and shared by every layer (the masks are the same in all of them).

    mask: SDPA mask, boolean or additive (0 / -inf in the attention's dtype, so SDPA need not convert it
    in every call), [B, 1, Lq, Lk] (dense) or [B * n_chunks, 1, C, span] (block-local: each query chunk
    is one batch entry of a 4-D attention, the form SDPA's fused CPU kernel takes), with rows that have
    no allowed key opened up (so SDPA never sees an all-masked row and returns NaN);
    empty_rows: [B, Lq (padded to whole chunks), 1, 1], True where the output must be zeroed (None: no
    such row); invalid_keys: [B, Lk, 1, 1], True for padding keys whose k/v are zeroed (None: all keys
    real); index: [n_chunks * span] key positions gathered per chunk (None: dense).

    Tensors handed to `gather_kv` / `attend_gathered` are token-major, [B, L, H, d] (the layout the
    projections produce, so no transposed copies are made).
    """

    batch: int
    lq: int
    lk: int
    chunk: int | None
    mask: torch.Tensor | None
    empty_rows: torch.Tensor | None
    invalid_keys: torch.Tensor | None
    index: torch.Tensor | None = None
    span: int = 0


def plan_attention(
    q_coord: torch.Tensor,
    k_coord: torch.Tensor,
    width: float | int,
    key_valid: torch.Tensor,
    chunk: int | None = None,
    dtype: torch.dtype | None = None,
) -> AttentionPlan:
    """Masks (and, for chunk C, the per-chunk key ranges) for `attend`. See `local_attention`.

    dtype: the attention's dtype, to hold the mask additively in it (None: a boolean mask).
    """
    batch, lk = key_valid.shape
    lq = q_coord.shape[0]
    invalid_keys = None if all_true(key_valid) else ~key_valid[:, :, None, None]
    if lq == 0 or lk == 0:
        return AttentionPlan(batch, lq, lk, chunk, None, None, invalid_keys)
    if chunk is None or chunk >= lq:
        allowed = window_allowed(q_coord, k_coord, width)[None, None] & key_valid[:, None, None, :]
        return _finish(AttentionPlan(batch, lq, lk, None, allowed, None, invalid_keys), dtype)

    n_chunks = -(-lq // chunk)
    pad = n_chunks * chunk - lq
    # Chunk c holds queries [c*C, c*C + C); padded query slots repeat the last coordinate and are cut off.
    q_coord_c = F.pad(q_coord, (0, pad), value=0)
    if pad:
        q_coord_c[lq:] = q_coord[-1]
    q_coord_c = q_coord_c.view(n_chunks, chunk)
    lo = torch.searchsorted(k_coord, q_coord_c[:, 0] - width, side="left")
    hi = torch.searchsorted(k_coord, q_coord_c[:, -1] + width, side="left")
    span = int((hi - lo).max())
    if span == 0:
        return AttentionPlan(batch, lq, lk, chunk, None, None, invalid_keys)
    index = lo[:, None] + torch.arange(span, device=lo.device)  # [n_chunks, span]
    in_range = index < hi[:, None]
    index = index.clamp(max=lk - 1)
    allowed = window_allowed(q_coord_c, k_coord[index], width) & in_range[:, None, :]  # [n_chunks, C, span]
    allowed = allowed[None] & key_valid[:, index][:, :, None, :]  # [B, n_chunks, C, span]
    allowed = allowed.reshape(batch * n_chunks, 1, chunk, span)
    plan = AttentionPlan(batch, lq, lk, chunk, allowed, None, invalid_keys, index.reshape(-1), span)
    return _finish(plan, dtype)


def _finish(plan: AttentionPlan, dtype: torch.dtype | None) -> AttentionPlan:
    """Open up rows without any allowed key (remembering them) and make the mask additive in dtype."""
    mask = plan.mask
    has_key = mask.any(dim=-1, keepdim=True)
    if not all_true(has_key):
        # [B or B * n_chunks, 1, Lq or C, 1] -> token-major rows [B, Lq (padded), 1, 1]
        plan = dataclasses.replace(plan, empty_rows=~has_key.reshape(plan.batch, -1, 1, 1))
        mask = mask | ~has_key
    if dtype is not None:
        mask = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, float("-inf"))
    return dataclasses.replace(plan, mask=mask)


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan, dropout_p: float = 0.0
) -> torch.Tensor:
    """Windowed attention of q [B, H, Lq, d] over k/v [B, H, Lk, d] as `plan` lays it out; [B, H, Lq, d]."""
    q, k, v = (x.transpose(1, 2) for x in (q, k, v))
    return attend_gathered(q, *gather_kv(k, v, plan), plan, dropout_p).transpose(1, 2)


def zero_invalid_keys(k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan) -> tuple[torch.Tensor, torch.Tensor]:
    """k/v [B, Lk, H, d] with padding keys zeroed: a masked key gets weight 0, but 0 * NaN would still
    poison the sum. Keys that do not change between calls (speech in the sampler) are zeroed once."""
    if plan.mask is None or plan.invalid_keys is None:
        return k, v
    return k.masked_fill(plan.invalid_keys, 0.0), v.masked_fill(plan.invalid_keys, 0.0)


def gather_kv(
    k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan, zeroed: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The part of `attend` that needs only k/v [B, Lk, H, d] and the plan: padding keys zeroed (unless
    `zeroed` says `zero_invalid_keys` already did) and, on the block-local path, the keys each query chunk
    reaches gathered. Returns SDPA's operands, [B, H, Lk, d] or [B * n_chunks, H, span, d] (views of
    token-major memory)."""
    if plan.mask is None:
        return k, v
    if not zeroed:
        k, v = zero_invalid_keys(k, v, plan)
    if plan.chunk is not None:
        _, _, heads, head_dim = k.shape
        k = k.index_select(1, plan.index).view(-1, plan.span, heads, head_dim)
        v = v.index_select(1, plan.index).view(-1, plan.span, heads, head_dim)
    return k.transpose(1, 2), v.transpose(1, 2)


def attend_gathered(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan, dropout_p: float = 0.0
) -> torch.Tensor:
    """`attend` for q [B, Lq, H, d] and k/v that `gather_kv` has prepared for `plan`; [B, Lq, H, d]."""
    batch, lq, heads, head_dim = q.shape
    if plan.mask is None:  # no keys, or none within reach of any query
        return q.new_zeros(batch, lq, heads, head_dim)
    if plan.chunk is not None:
        padded = plan.mask.shape[0] // batch * plan.chunk
        q = F.pad(q, (0, 0, 0, 0, 0, padded - lq)).reshape(-1, plan.chunk, heads, head_dim)
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k, v, attn_mask=plan.mask, dropout_p=dropout_p)
    out = out.transpose(1, 2).reshape(batch, -1, heads, head_dim)  # a view: SDPA writes token-major on CPU
    if plan.empty_rows is not None:
        out = out.masked_fill(plan.empty_rows, 0.0)
    return out[:, :lq]


def local_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    q_coord: torch.Tensor,
    k_coord: torch.Tensor,
    width: float | int,
    key_valid: torch.Tensor | None = None,
    chunk: int | None = None,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """Windowed multi-head attention in one call (plan + attend).

    q [B, H, Lq, d], k/v [B, H, Lk, d]; q_coord [Lq] and k_coord [Lk] ascending (int64 frames or
    float64 seconds, the same for the whole batch); key_valid [B, Lk] marks real (non-padding) keys.
    chunk None evaluates one dense masked attention ([Lq, Lk] mask); chunk C evaluates queries in
    blocks of C against only the keys their windows reach. A query whose window holds no valid key
    gets a zero output. Returns [B, H, Lq, d].
    """
    if key_valid is None:
        key_valid = torch.ones(q.shape[0], k.shape[2], dtype=torch.bool, device=q.device)
    return attend(q, k, v, plan_attention(q_coord, k_coord, width, key_valid, chunk), dropout_p)

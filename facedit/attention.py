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

import torch
import torch.nn.functional as F


def rope_cos_sin(
    positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables [L, head_dim // 2] for (possibly fractional) positions [L].

    Angles are formed in float64 so that position 15000 rotates as precisely as position 1.
    """
    half = head_dim // 2
    inv_freq = theta ** (-torch.arange(half, dtype=torch.float64, device=positions.device) / half)
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (c, c + d/2) of x [B, H, L, d] by the angles of cos/sin [L, d/2]."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


def window_allowed(q_coord: torch.Tensor, k_coord: torch.Tensor, width: float | int) -> torch.Tensor:
    """Bias B as a boolean: allowed[..., i, j] = q[i] - width <= k[j] < q[i] + width."""
    q = q_coord[..., :, None]
    k = k_coord[..., None, :]
    return (k >= q - width) & (k < q + width)


def _attend(q, k, v, allowed: torch.Tensor, dropout_p: float) -> torch.Tensor:
    """SDPA with a boolean mask; rows with no allowed key return zeros instead of NaN."""
    has_key = allowed.any(dim=-1, keepdim=True)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed | ~has_key, dropout_p=dropout_p)
    return out * has_key.to(out.dtype)


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
    """Windowed multi-head attention.

    q [B, H, Lq, d], k/v [B, H, Lk, d]; q_coord [Lq] and k_coord [Lk] ascending (int64 frames or
    float64 seconds, the same for the whole batch); key_valid [B, Lk] marks real (non-padding) keys.
    chunk None evaluates one dense masked attention ([Lq, Lk] mask); chunk C evaluates queries in
    blocks of C against only the keys their windows reach. A query whose window holds no valid key
    gets a zero output. Returns [B, H, Lq, d].
    """
    batch, heads, lq, head_dim = q.shape
    lk = k.shape[2]
    if lq == 0 or lk == 0:
        return q.new_zeros(batch, heads, lq, head_dim)
    if key_valid is None:
        key_valid = torch.ones(batch, lk, dtype=torch.bool, device=q.device)
    else:  # a masked key gets weight 0, but 0 * NaN would still poison the sum
        invalid = ~key_valid[:, None, :, None]
        k, v = k.masked_fill(invalid, 0.0), v.masked_fill(invalid, 0.0)
    if chunk is None or chunk >= lq:
        allowed = window_allowed(q_coord, k_coord, width)[None, None] & key_valid[:, None, None, :]
        return _attend(q, k, v, allowed, dropout_p)

    n_chunks = -(-lq // chunk)
    pad = n_chunks * chunk - lq
    # Chunk c holds queries [c*C, c*C + C); padded query slots repeat the last coordinate and are cut off below.
    q_coord_c = F.pad(q_coord, (0, pad), value=0)
    if pad:
        q_coord_c[lq:] = q_coord[-1]
    q_coord_c = q_coord_c.view(n_chunks, chunk)
    lo = torch.searchsorted(k_coord, q_coord_c[:, 0] - width, side="left")
    hi = torch.searchsorted(k_coord, q_coord_c[:, -1] + width, side="left")
    span = int((hi - lo).max())
    if span == 0:
        return q.new_zeros(batch, heads, lq, head_dim)
    index = lo[:, None] + torch.arange(span, device=q.device)  # [n_chunks, span]
    in_range = index < hi[:, None]
    index = index.clamp(max=lk - 1)

    allowed = window_allowed(q_coord_c, k_coord[index], width)  # [n_chunks, C, span]
    allowed = allowed & in_range[:, None, :]
    allowed = allowed[None] & key_valid[:, index][:, :, None, :]  # [B, n_chunks, C, span]

    flat = index.reshape(-1)
    k_c = k.index_select(2, flat).view(batch, heads, n_chunks, span, head_dim)
    v_c = v.index_select(2, flat).view(batch, heads, n_chunks, span, head_dim)
    q_c = F.pad(q, (0, 0, 0, pad)).view(batch, heads, n_chunks, chunk, head_dim)
    out = _attend(q_c, k_c, v_c, allowed[:, None], dropout_p)  # [B, H, n_chunks, C, d]
    return out.reshape(batch, heads, n_chunks * chunk, head_dim)[:, :, :lq]

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


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Rotate channel pairs (c, c + d/2) of x [..., L, d] by the angles behind `rope_cos_sin`'s tables
    (token-major x [B, L, H, d] takes the tables as [L, 1, d]); into `out` (any strides) if given.

    (x1 cos - x2 sin, x2 cos + x1 sin) in three passes that read x and write out once each, with no
    rotated copy of x."""
    half = x.shape[-1] // 2
    out = torch.mul(x, cos, out=out)
    out[..., :half].addcmul_(x[..., half:], sin[..., :half])
    out[..., half:].addcmul_(x[..., :half], sin[..., half:])
    return out


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
    real).

    Block-local keys: chunk c attends rows [first + c * stride, + span) of the key buffer, which holds
    the Lk keys after pad_left zero rows (and pad_right after them): a strided view of the buffer, no
    gathered copy. Where the chunks' key ranges do not advance by a whole number of keys (a speech rate
    that is no multiple of the chunk's duration), stride is 0 and index [n_chunks * span] lists the
    buffer rows each chunk gathers instead.

    Queries, keys and values are held head-major, [B, H, L, d] (`query_buffer`, `key_buffers`), so that
    each head's rows are contiguous for SDPA's kernel.
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
    stride: int = 0
    first: int = 0
    pad_left: int = 0
    pad_right: int = 0

    @property
    def n_chunks(self) -> int:
        return -(-self.lq // self.chunk)


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
    start, stride, pad_left, pad_right, strided_span = _strided_windows(lo, hi, lk, span)
    if stride:
        span = strided_span
        index = start + torch.arange(n_chunks, device=lo.device)[:, None] * stride  # key of each chunk's row 0
    else:
        index = lo[:, None]
    index = index + torch.arange(span, device=lo.device)  # [n_chunks, span], key positions (may be outside)
    in_range = (index >= lo[:, None]) & (index < hi[:, None])
    index = index.clamp(0, lk - 1)
    allowed = window_allowed(q_coord_c, k_coord[index], width) & in_range[:, None, :]  # [n_chunks, C, span]
    allowed = allowed[None] & key_valid[:, index][:, :, None, :]  # [B, n_chunks, C, span]
    allowed = allowed.reshape(batch * n_chunks, 1, chunk, span)
    gathered = None if stride else index.reshape(-1)
    plan = AttentionPlan(
        batch, lq, lk, chunk, allowed, None, invalid_keys, gathered, span, stride, start + pad_left, pad_left, pad_right
    )
    return _finish(plan, dtype)


def _strided_windows(lo: torch.Tensor, hi: torch.Tensor, lk: int, span: int) -> tuple[int, int, int, int, int]:
    """Key windows [start + c * stride, + span') that hold every chunk's range [lo_c, hi_c), when they
    advance by a whole number of keys: (start, stride, pad_left, pad_right, span'); stride 0 when not
    (the windows would have to grow by more than a quarter to cover the drift)."""
    n = lo.shape[0]
    if n < 2:
        return 0, 0, 0, 0, 0
    steps = lo[1:] - lo[:-1]
    stride = int(steps.mode().values) if lo.device.type != "meta" else 0
    if stride <= 0:
        return 0, 0, 0, 0, 0
    offsets = torch.arange(n, device=lo.device) * stride
    start = int((lo - offsets).min())
    strided_span = int((hi - offsets).max()) - start
    if strided_span > span + span // 4:
        return 0, 0, 0, 0, 0
    pad_left = max(0, -start)
    pad_right = max(0, start + (n - 1) * stride + strided_span - lk)
    return start, stride, pad_left, pad_right, strided_span


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


def _rows(
    x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None, before: int, after: int, invalid=None
) -> torch.Tensor:
    """Token-major x [B, L, H, d], RoPE'd if rope, rows `invalid` [B, L, 1, 1] zeroed, with zero rows
    before and after: [B, before + L + after, H, d]."""
    batch, length, heads, head_dim = x.shape
    if torch.is_grad_enabled() and x.requires_grad:  # out= has no autograd: the same values, functionally
        y = x if rope is None else apply_rope(x, rope[0][:, None], rope[1][:, None])
        y = y if invalid is None else y.masked_fill(invalid, 0.0)
        return F.pad(y, (0, 0, 0, 0, before, after))
    buffer = x.new_empty(batch, before + length + after, heads, head_dim)
    buffer[:, :before].zero_()
    buffer[:, before + length :].zero_()
    view = buffer[:, before : before + length]
    if rope is None:
        view.copy_(x)
    else:  # written token-major (contiguous writes are ~1.4x faster than into the head-major layout)
        apply_rope(x, rope[0][:, None], rope[1][:, None], out=view)
    if invalid is not None:
        view.masked_fill_(invalid, 0.0)
    return buffer


def _head_major(x, rope, before: int, after: int, invalid=None) -> torch.Tensor:
    """`_rows`, laid out head-major [B, H, before + L + after, d]."""
    if rope is None and not (torch.is_grad_enabled() and x.requires_grad):
        batch, length, heads, head_dim = x.shape
        buffer = x.new_zeros(batch, heads, before + length + after, head_dim)
        view = buffer[:, :, before : before + length].transpose(1, 2)
        view.copy_(x)
        if invalid is not None:
            view.masked_fill_(invalid, 0.0)
        return buffer
    return _rows(x, rope, before, after, invalid).transpose(1, 2).contiguous()


def query_buffer(
    q: torch.Tensor, plan: AttentionPlan, rope: tuple[torch.Tensor, torch.Tensor] | None = None
) -> torch.Tensor:
    """Token-major queries q [B, Lq, H, d] (RoPE'd with `rope_cos_sin`'s tables if given) as the
    [B, Lq (padded with zeros to whole chunks), H, d] that `attend_buffers` takes. (Queries stay
    token-major: SDPA's kernel reads them once per key block, so their layout costs it little.)"""
    rows = plan.lq if plan.chunk is None else plan.n_chunks * plan.chunk
    return _rows(q, rope, 0, rows - plan.lq)


def key_buffers(
    k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan, rope: tuple[torch.Tensor, torch.Tensor] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-major keys/values [B, Lk, H, d] (keys RoPE'd if given) as the head-major buffers
    [B, H, pad_left + Lk + pad_right, d] that `attend_buffers` takes, padding keys zeroed: a masked key
    gets weight 0, but 0 * NaN would still poison the sum. Keys that do not change between calls
    (speech in the sampler) are laid out once."""
    invalid = plan.invalid_keys if plan.mask is not None else None
    return (
        _head_major(k, rope, plan.pad_left, plan.pad_right, invalid),
        _head_major(v, None, plan.pad_left, plan.pad_right, invalid),
    )


def _chunk_windows(buffer: torch.Tensor, n: int, rows: int, stride: int, first: int = 0) -> torch.Tensor:
    """[H, L, d] head-major rows -> [n, H, rows, d], chunk c = rows [first + c * stride, + rows) (a view)."""
    heads, _, head_dim = buffer.shape
    s_h, s_l, s_d = buffer.stride()
    offset = buffer.storage_offset() + first * s_l
    return buffer.as_strided((n, heads, rows, head_dim), (stride * s_l, s_h, s_l, s_d), offset)


def attend_buffers(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan) -> torch.Tensor:
    """Attention of `query_buffer`'s q over `key_buffers`' k/v as `plan` lays it out; token-major
    [B, Lq, H * d]."""
    batch, _, heads, head_dim = q.shape
    lq = plan.lq
    if plan.mask is None:  # no keys, or none within reach of any query
        return q.new_zeros(batch, lq, heads * head_dim)
    if plan.chunk is None:
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k, v, attn_mask=plan.mask)  # [B, H, Lq, d]
        out = out.transpose(1, 2)
        if plan.empty_rows is not None:
            out = out.masked_fill(plan.empty_rows, 0.0)
        return out.reshape(batch, lq, heads * head_dim)
    n, chunk, span = plan.n_chunks, plan.chunk, plan.span
    outs = []
    for b in range(batch):
        q_b = _chunk_windows(q[b].transpose(0, 1), n, chunk, chunk)
        if plan.stride:
            k_b, v_b = (_chunk_windows(x[b], n, span, plan.stride, plan.first) for x in (k, v))
        else:  # gathered per call: the rows each chunk reaches, [H, n_chunks * span, d] -> [n_chunks, H, span, d]
            k_b, v_b = (x[b].index_select(1, plan.index).view(heads, n, span, head_dim).transpose(0, 1) for x in (k, v))
        mask = plan.mask[b * n : (b + 1) * n]
        out = F.scaled_dot_product_attention(q_b, k_b, v_b, attn_mask=mask)  # [n, H, C, d]
        out = out.transpose(1, 2).reshape(n * chunk, heads, head_dim)  # a view: SDPA writes token-major on CPU
        if plan.empty_rows is not None:
            out = out.masked_fill(plan.empty_rows[b], 0.0)
        outs.append(out[:lq].reshape(1, lq, heads * head_dim))
    return outs[0] if batch == 1 else torch.cat(outs)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan) -> torch.Tensor:
    """Windowed attention of q [B, H, Lq, d] over k/v [B, H, Lk, d] as `plan` lays it out; [B, H, Lq, d]."""
    q_tok, k_tok, v_tok = (x.transpose(1, 2) for x in (q, k, v))
    out = attend_buffers(query_buffer(q_tok, plan), *key_buffers(k_tok, v_tok, plan), plan)
    return out.view(q.shape[0], plan.lq, q.shape[1], q.shape[3]).transpose(1, 2)


def local_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    q_coord: torch.Tensor,
    k_coord: torch.Tensor,
    width: float | int,
    key_valid: torch.Tensor | None = None,
    chunk: int | None = None,
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
    return attend(q, k, v, plan_attention(q_coord, k_coord, width, key_valid, chunk))

"""FacEDiT backbone: config, shapes, padding, attention windows, block-local path, gradients, statistics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from facedit.accel import fused
from facedit.attention import apply_rope, local_attention, plan_attention, rope_cos_sin
from facedit.config import FacEDiTConfig
from facedit.model import FacEDiT, count_parameters
from facedit.normalization import MotionNormalizer, compute_motion_stats
from tests._model_helpers import random_inputs, random_model

# ---------------------------------------------------------------- config


def test_presets_hold_the_paper_numbers():
    paper = FacEDiTConfig.paper()
    assert (paper.depth, paper.heads, paper.dim, paper.ffn_dim) == (22, 16, 1024, 2048)
    assert (paper.motion_dim, paper.speech_dim, paper.fps, paper.speech_frame_rate) == (75, 768, 25.0, 50.0)
    assert paper.speech_offset_s == 0.0125
    tiny = FacEDiTConfig.tiny()
    assert tiny.dim < 128 and tiny.motion_dim == 75


@pytest.mark.parametrize("config", [FacEDiTConfig.paper(), FacEDiTConfig.tiny(adaln="per_block", window=3)])
def test_config_round_trips_through_json(config):
    data = json.loads(json.dumps(config.to_dict()))
    assert data["format_version"] == 1
    assert FacEDiTConfig.from_dict(data) == config


def test_config_rejects_unknown_keys_and_other_versions():
    data = FacEDiTConfig.tiny().to_dict()
    with pytest.raises(ValueError, match="unknown keys \\['wndow'\\]"):
        FacEDiTConfig.from_dict({**data, "wndow": 3})
    with pytest.raises(ValueError, match="format_version 2"):
        FacEDiTConfig.from_dict({**data, "format_version": 2})
    without_version = dict(data)
    del without_version["format_version"]
    with pytest.raises(ValueError, match="format_version None"):
        FacEDiTConfig.from_dict(without_version)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(heads=5), "divisible by heads"),
        (dict(dim=60, heads=4, conv_pos_groups=4), "even for RoPE"),
        (dict(window=0), "window"),
        (dict(cross_window_s=0.0), "cross_window_s"),
        (dict(conv_pos_kernel=4), "odd"),
        (dict(adaln="none"), "adaln"),
        (dict(dropout=1.0), "dropout"),
        (dict(depth=2.0), "depth"),
    ],
)
def test_config_rejects_bad_values(change, message):
    with pytest.raises(ValueError, match=message):
        FacEDiTConfig.tiny(**change)


# ---------------------------------------------------------------- sizes and shapes


def _expected_parameters(cfg: FacEDiTConfig) -> int:
    d, m, s = cfg.dim, cfg.motion_dim, cfg.speech_dim
    linear = lambda i, o: i * o + o  # noqa: E731
    attention = 4 * linear(d, d)
    block = 2 * attention + linear(d, cfg.ffn_dim) + linear(cfg.ffn_dim, d)
    block += linear(d, 9 * d) if cfg.adaln == "per_block" else 9 * d
    conv = d * (d // cfg.conv_pos_groups) * cfg.conv_pos_kernel + d
    total = cfg.depth * block + linear(cfg.time_freq_dim, d) + linear(d, d) + linear(2 * m, d) + 2 * conv
    total += 2 * s + linear(s, d) + linear(d, 2 * d) + linear(d, m)
    return total + (linear(d, 9 * d) if cfg.adaln == "shared" else 0)


@pytest.mark.parametrize("adaln, millions", [("shared", 295.2), ("per_block", 493.4)])
def test_paper_preset_parameter_count(adaln, millions):
    cfg = FacEDiTConfig.paper(adaln=adaln)
    with torch.device("meta"):
        model = FacEDiT(cfg)
    assert count_parameters(model) == _expected_parameters(cfg)
    assert round(count_parameters(model) / 1e6, 1) == millions


def test_paper_preset_forward_shape_on_meta_device():
    with torch.device("meta"):
        model = FacEDiT(FacEDiTConfig.paper())
        x = torch.empty(1, 250, 75)
        out = model(x, x, torch.empty(1, 500, 768), torch.empty(1))
    assert out.shape == (1, 250, 75) and out.dtype == torch.float32


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("adaln", ["shared", "per_block"])
@pytest.mark.parametrize("batch, frames, speech_frames", [(1, 1, 1), (2, 17, 30), (3, 40, 90)])
def test_tiny_forward_shapes_and_dtypes(dtype, adaln, batch, frames, speech_frames):
    model = random_model(dtype=dtype, adaln=adaln)
    x_t, cond, speech, t = random_inputs(model, batch, frames, speech_frames)
    out = model(x_t, cond, speech, t)
    assert out.shape == (batch, frames, 75) and out.dtype == dtype
    assert torch.isfinite(out).all() and out.abs().sum() > 0


def test_fresh_model_is_zero_initialised_like_dit():
    model = FacEDiT(FacEDiTConfig.tiny()).eval()
    x_t, cond, speech, t = random_inputs(model)
    assert torch.equal(model(x_t, cond, speech, t), torch.zeros(2, 40, 75))
    h = torch.randn(2, 40, model.config.dim)
    coord = torch.arange(40)
    plan = plan_attention(coord, coord, 8, torch.ones(2, 40, dtype=torch.bool))
    motion = dict(rope=rope_cos_sin(coord, model.config.head_dim, 1e4, torch.float32), plan=plan)
    mod = model.blocks[0].modulation(torch.randn(2, model.config.dim), torch.zeros(2, 9, model.config.dim))
    assert torch.equal(model.blocks[0](h, mod, motion, None, None, None), h)  # gates are zero: identity block


def test_inputs_are_validated():
    model = random_model()
    x_t, cond, speech, t = random_inputs(model)
    with pytest.raises(ValueError, match="x_t must be"):
        model(x_t[..., :74], cond, speech, t)
    with pytest.raises(ValueError, match="speech must be"):
        model(x_t, cond, speech[..., :10], t)
    with pytest.raises(ValueError, match="motion_mask must be"):
        model(x_t, cond, speech, t, motion_mask=torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="t must be"):
        model(x_t, cond, speech, torch.rand(3))
    with pytest.raises(ValueError, match="attention must be"):
        model(x_t, cond, speech, t, attention="sparse")


# ---------------------------------------------------------------- padding


@pytest.mark.parametrize("attention", ["dense", "local"])
def test_padding_never_leaks(attention):
    model = random_model()
    model.chunk_frames = 8
    x_t, cond, speech, t = random_inputs(model, batch=2, frames=40)
    motion_mask = torch.ones(2, 40, dtype=torch.bool)
    motion_mask[1, 25:] = False
    speech_mask = torch.ones(2, 80, dtype=torch.bool)
    speech_mask[1, 50:] = False
    kwargs = dict(motion_mask=motion_mask, speech_mask=speech_mask, attention=attention)
    out = model(x_t, cond, speech, t, **kwargs)

    x2, c2, s2 = x_t.clone(), cond.clone(), speech.clone()
    x2[1, 25:], c2[1, 25:], s2[1, 50:] = float("nan"), 1e6, float("inf")
    out2 = model(x2, c2, s2, t, **kwargs)
    assert torch.equal(out, out2)
    assert torch.equal(out[1, 25:], torch.zeros(15, 75))

    alone = model(x_t[1:, :25], cond[1:, :25], speech[1:, :50], t[1:], attention=attention)
    torch.testing.assert_close(out[1:, :25], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attention", ["dense", "local"])
def test_an_entirely_padded_sample_gives_zeros_not_nan(attention):
    model = random_model()
    model.chunk_frames = 8
    x_t, cond, speech, t = random_inputs(model, batch=2, frames=20)
    motion_mask = torch.ones(2, 20, dtype=torch.bool)
    motion_mask[1] = False
    speech_mask = torch.ones(2, 40, dtype=torch.bool)
    speech_mask[1] = False
    out = model(x_t, cond, speech, t, motion_mask=motion_mask, speech_mask=speech_mask, attention=attention)
    assert torch.equal(out[1], torch.zeros(20, 75)) and torch.isfinite(out).all()
    assert out[0].abs().sum() > 0


def test_a_frame_without_any_speech_in_its_window_gets_no_nan():
    model = random_model()
    x_t, cond, speech, t = random_inputs(model, batch=1, frames=60, speech_frames=3)
    out = model(x_t, cond, speech, t)
    assert torch.isfinite(out).all()
    empty = model(x_t, cond, speech[:, :0], t)
    assert torch.isfinite(empty).all()
    assert torch.equal(empty, model(x_t, cond, speech, t, drop_speech=True))


# ---------------------------------------------------------------- attention windows on the op itself


def _qkv(lq: int, lk: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(1, 2, lq, 8, generator=g),
        torch.randn(1, 2, lk, 8, generator=g),
        torch.randn(1, 2, lk, 8, generator=g),
    )


@pytest.mark.parametrize("chunk", [None, 1, 5, 16])
@pytest.mark.parametrize("query", [0, 9, 20, 29])
def test_self_attention_window_is_exactly_i_minus_w_to_i_plus_w(chunk, query):
    w, length = 4, 30
    q, k, v = _qkv(length, length)
    coord = torch.arange(length)
    base = local_attention(q, k, v, coord, coord, w, chunk=chunk)
    for key in range(length):
        k2, v2 = k.clone(), v.clone()
        k2[:, :, key] += 3.0
        v2[:, :, key] += 3.0
        out = local_attention(q, k2, v2, coord, coord, w, chunk=chunk)
        inside = query - w <= key < query + w
        assert torch.equal(out[:, :, query], base[:, :, query]) != inside, (query, key)


@pytest.mark.parametrize("chunk", [None, 3, 8])
def test_cross_attention_window_is_in_seconds(chunk):
    fps, rate, offset, width = 25.0, 50.0, 0.0125, 0.3
    q, k, v = _qkv(20, 45)
    q_time = torch.arange(20, dtype=torch.float64) / fps
    k_time = offset + torch.arange(45, dtype=torch.float64) / rate
    base = local_attention(q, k, v, q_time, k_time, width, chunk=chunk)
    query = 10  # 0.4 s: speech frames from 0.1 s (j = 5 at 0.1125) to < 0.7 s (j = 34 at 0.6925)
    inside = [j for j in range(45) if 0.4 - width <= offset + j / rate < 0.4 + width]
    assert inside == list(range(5, 35))
    for key in range(45):
        v2 = v.clone()
        v2[:, :, key] += 3.0
        out = local_attention(q, k, v2, q_time, k_time, width, chunk=chunk)
        assert torch.equal(out[:, :, query], base[:, :, query]) != (key in inside), key


def test_rope_scores_depend_only_on_the_time_difference():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, 16, generator=g), torch.randn(1, 1, 1, 16, generator=g)

    def rotate(x, position):
        return apply_rope(x, *rope_cos_sin(torch.tensor([position], dtype=torch.float64), 16, 1e4, torch.float32))

    def score(a, b):
        return float((rotate(q, a) * rotate(k, b)).sum())

    assert score(3.0, 1.5) == pytest.approx(score(103.0, 101.5), abs=1e-5)
    assert score(3.0, 1.5) == pytest.approx(score(7000.25, 6998.75), abs=1e-4)  # float64 angles: exact far out
    assert abs(score(3.0, 1.5) - score(3.0, 2.5)) > 1e-3
    torch.testing.assert_close(rotate(q, 12.3).norm(), q.norm())


def test_invalid_keys_are_ignored_and_rows_without_keys_are_zero():
    q, k, v = _qkv(6, 6)
    coord = torch.arange(6)
    valid = torch.tensor([[True, True, True, False, False, False]])
    base = local_attention(q, k, v, coord, coord, 1, key_valid=valid)
    v2 = v.clone()
    v2[:, :, 3:] = float("nan")
    assert torch.equal(local_attention(q, k, v2, coord, coord, 1, key_valid=valid)[:, :, :3], base[:, :, :3])
    assert torch.equal(base[:, :, 5], torch.zeros(1, 2, 8))  # query 5 sees keys 4 and 5 only, both invalid


def test_model_receptive_field_is_bounded_by_the_windows():
    model = random_model(depth=2, window=3, conv_pos_kernel=3, cross_window_s=0.1)
    x_t, cond, speech, t = random_inputs(model, batch=1, frames=60, speech_frames=120)
    out = model(x_t, cond, speech, t, attention="dense")
    # Frame 0 reaches right by depth * (window - 1) + 2 convs * 1 = 6 frames, speech up to 8 frames * 0.04 + 0.1 s.
    x2 = x_t.clone()
    x2[:, 7:] += 5.0
    s2 = speech.clone()
    s2[:, 22:] += 5.0  # speech frame 22 stands at 0.4525 s > 0.32 + 0.1
    out2 = model(x2, cond, s2, t, attention="dense")
    assert torch.equal(out2[:, 0], out[:, 0])
    assert not torch.equal(out2[:, 1], out[:, 1])  # frame 1 reaches frame 7


# ---------------------------------------------------------------- block-local path


@pytest.mark.parametrize("frames, chunk", [(1, 4), (37, 8), (100, 16), (130, 128), (300, 64)])
@pytest.mark.parametrize("adaln", ["shared", "per_block"])
def test_block_local_path_equals_dense_path(frames, chunk, adaln):
    model = random_model(adaln=adaln)
    model.chunk_frames = chunk
    x_t, cond, speech, t = random_inputs(model, batch=2, frames=frames, speech_frames=2 * frames + 3)
    motion_mask = torch.ones(2, frames, dtype=torch.bool)
    motion_mask[1, frames // 2 + 1 :] = False
    kwargs = dict(motion_mask=motion_mask, speech_offset_s=-0.05, speech_frame_rate=49.0)
    dense = model(x_t, cond, speech, t, attention="dense", **kwargs)
    local = model(x_t, cond, speech, t, attention="local", **kwargs)
    torch.testing.assert_close(local, dense, rtol=1e-5, atol=2e-5)


def test_auto_attention_switches_to_the_local_path_for_long_motion(monkeypatch):
    import facedit.model as model_module

    seen = []
    original = model_module.plan_attention

    def spy(*args, **kwargs):
        seen.append(args[4])
        return original(*args, **kwargs)

    monkeypatch.setattr(model_module, "plan_attention", spy)
    model = random_model()
    model.dense_max_frames = 50
    model(*random_inputs(model, batch=1, frames=50))
    assert set(seen) == {None}
    seen.clear()
    model(*random_inputs(model, batch=1, frames=51))
    assert set(seen) == {model.chunk_frames}


# ---------------------------------------------------------------- speech timing and dropping


def test_speech_positions_are_in_seconds():
    model = random_model()
    x_t, cond, speech, t = random_inputs(model, batch=1, frames=30)
    out = model(x_t, cond, speech, t)
    # Prepend 7 padding frames and move the offset back by 7 frames: every real frame keeps its time.
    padded = torch.cat((torch.randn(1, 7, speech.shape[-1]), speech), dim=1)
    mask = torch.ones(1, padded.shape[1], dtype=torch.bool)
    mask[:, :7] = False
    shifted = model(x_t, cond, padded, t, speech_mask=mask, speech_offset_s=model.config.speech_offset_s - 7 / 50)
    torch.testing.assert_close(shifted, out, rtol=1e-5, atol=1e-5)
    later = model(x_t, cond, speech, t, speech_offset_s=model.config.speech_offset_s + 0.2)
    assert (later - out).abs().max() > 1e-3


def test_drop_speech_ignores_speech_per_sample():
    model = random_model()
    x_t, cond, speech, t = random_inputs(model, batch=2)
    dropped = model(x_t, cond, speech, t, drop_speech=True)
    assert torch.equal(dropped, model(x_t, cond, torch.randn_like(speech), t, drop_speech=True))
    assert (dropped - model(x_t, cond, speech, t)).abs().max() > 1e-3
    mixed = model(x_t, cond, speech, t, drop_speech=torch.tensor([True, False]))
    torch.testing.assert_close(mixed[0], dropped[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(mixed[1], model(x_t, cond, speech, t)[1], rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- training signal


@pytest.mark.parametrize("adaln", ["shared", "per_block"])
def test_every_parameter_gets_a_gradient(adaln):
    model = random_model(adaln=adaln).train()
    x_t, cond, speech, t = random_inputs(model)
    model(x_t, cond, speech, t).square().mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_fresh_model_learns_away_from_zero_output():
    model = FacEDiT(FacEDiTConfig.tiny()).train()
    x_t, cond, speech, t = random_inputs(model)
    target = torch.randn(2, 40, 75)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        loss = (model(x_t, cond, speech, t) - target).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert model.blocks[0].adaln_offset.abs().sum() > 0  # the zero-initialised gates moved


def test_dropout_is_active_only_in_training():
    model = random_model(dropout=0.5)
    inputs = random_inputs(model)
    assert torch.equal(model(*inputs), model(*inputs))
    model.train()
    assert not torch.equal(model(*inputs), model(*inputs))


# ---------------------------------------------------------------- motion statistics


def test_compute_motion_stats_matches_numpy_over_all_frames():
    rng = np.random.default_rng(0)
    clips = [rng.normal(3.0, 2.0, size=(n, 75)) for n in (5, 1, 40, 0, 17)]
    mean, std = compute_motion_stats(iter(clips))
    everything = np.concatenate(clips)
    np.testing.assert_allclose(mean, everything.mean(0), rtol=1e-6)
    np.testing.assert_allclose(std, everything.std(0, ddof=1), rtol=1e-5)
    assert mean.dtype == std.dtype == np.float32


def test_compute_motion_stats_floors_constant_dims_and_rejects_bad_clips(caplog):
    clip = np.random.default_rng(0).normal(size=(10, 75))
    clip[:, 4] = 1.5
    _, std = compute_motion_stats([clip, torch.from_numpy(clip)])
    assert std[4] == pytest.approx(1e-4) and "[4]" in caplog.text
    with pytest.raises(ValueError, match="clip 1 must be \\[T, D\\]"):
        compute_motion_stats([clip, clip[0]])
    with pytest.raises(ValueError, match="clip 1 has 70 dims"):
        compute_motion_stats([clip, clip[:, :70]])
    with pytest.raises(ValueError, match="NaN"):
        compute_motion_stats([np.full((3, 75), np.nan)])
    with pytest.raises(ValueError, match="at least 2 frames"):
        compute_motion_stats([])


def test_normalizer_round_trips_and_keeps_float32_under_half_precision():
    normalizer = MotionNormalizer(75)
    mean, std = torch.randn(75) * 1e-3 + 0.1234567, torch.rand(75) + 0.1
    normalizer.set_stats(mean, std)
    motion = torch.randn(10, 75, dtype=torch.float64)
    torch.testing.assert_close(normalizer.denormalize(normalizer.normalize(motion)), motion.float())
    normalizer.to(torch.bfloat16)
    assert normalizer.mean.dtype == torch.float32 and torch.equal(normalizer.mean, mean)
    with pytest.raises(ValueError, match="std > 0"):
        normalizer.set_stats(mean, torch.zeros(75))
    with pytest.raises(ValueError, match="\\[75\\]"):
        normalizer.set_stats(mean[:3], std)


def test_model_cast_keeps_statistics_exact():
    model = random_model()
    mean = model.normalizer.mean.clone()
    model.to(torch.bfloat16)
    assert model.dtype == torch.bfloat16 and torch.equal(model.normalizer.mean, mean)
    assert math.isfinite(float(model.normalize(torch.ones(75)).sum()))


@pytest.mark.skipif(not fused._has_onednn_linear(), reason="no native bfloat16 oneDNN linear on this CPU")
def test_fused_bfloat16_linears_match_the_plain_ones(monkeypatch):
    model = random_model(dtype=torch.bfloat16)
    x_t, cond, speech, t = random_inputs(model)
    calls = []
    original = torch.ops.mkldnn._linear_pointwise
    with torch.no_grad():
        monkeypatch.setattr(fused.torch.ops.mkldnn, "_linear_pointwise", lambda *a: calls.append(a[3]) or original(*a))
        out = model(x_t, cond, speech, t).float()
        monkeypatch.setattr(fused, "_has_onednn_linear", lambda: False)
        plain = model(x_t, cond, speech, t).float()
    assert "gelu" in calls and "none" in calls
    assert (out - plain).abs().max() <= 0.02 * plain.abs().max()


@pytest.mark.parametrize("rate, frames, strided", [(50.0, 45, True), (47.3, 45, True), (51.5625, 400, False)])
def test_block_local_key_windows_strided_or_gathered_match_dense(rate, frames, strided):
    # 51.5625 speech frames/s: a chunk of 8 frames advances 16.5 keys, a drift the strided windows do not take
    model = random_model()
    model.chunk_frames = 8
    n_speech = int(frames * rate / 25) + 3
    x_t, cond, speech, t = random_inputs(model, batch=2, frames=frames, speech_frames=n_speech)
    motion_mask = torch.ones(2, frames, dtype=torch.bool)
    motion_mask[1, frames * 2 // 3 :] = False
    speech_mask = torch.ones(2, n_speech, dtype=torch.bool)
    speech_mask[0, n_speech * 3 // 4 :] = False
    kwargs = dict(motion_mask=motion_mask, speech_mask=speech_mask, speech_frame_rate=rate)
    with torch.no_grad():
        cache = model.prepare(speech, frames, attention="local", **kwargs)
        local = model(x_t, cond, None, t, cache=cache)
        dense = model(x_t, cond, speech, t, attention="dense", **kwargs)
    plan = cache.speech["plan"]
    assert (plan.stride > 0) == strided and (plan.index is None) == strided
    assert cache.motion["plan"].stride == 8 and cache.motion["plan"].pad_left > 0
    torch.testing.assert_close(local, dense, rtol=1e-5, atol=1e-5)

"""Flow matching: loss arithmetic, Sway schedule, Euler sampler, guidance, seeds, and raw-space infill."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from facedit.accel import compiling
from facedit.config import FacEDiTConfig
from facedit.flow import boundary_fill, cfm_loss, infill, sample, sway_timesteps
from tests._model_helpers import random_inputs, random_model


class ScriptedVelocity(nn.Module):
    """Stands in for FacEDiT where the test needs to know the velocity: v = fn(x_t, t), inputs recorded."""

    def __init__(self, fn, motion_dim: int = 75):
        super().__init__()
        self.fn = fn
        self.config = FacEDiTConfig.tiny(motion_dim=motion_dim, prediction="velocity", context_fill="line")
        self.anchor = nn.Parameter(torch.zeros(()))
        self.calls: list[dict] = []

    @property
    def device(self):
        return self.anchor.device

    def prepare(self, speech, frames, **kwargs):
        return kwargs  # the "cache" is what FacEDiT.prepare was asked for

    def forward(self, x_t, cond, speech, t, cache=None, **kwargs):
        kwargs = {**(cache or {}), **kwargs}
        self.calls.append(dict(x_t=x_t.clone(), cond=cond.clone(), t=torch.as_tensor(t).clone(), **kwargs))
        return self.fn(x_t, torch.as_tensor(t)) + 0 * self.anchor


# ---------------------------------------------------------------- Sway


def test_sway_schedule_endpoints_shape_and_formula():
    u = torch.linspace(0, 1, 33, dtype=torch.float64)
    times = sway_timesteps(32, -1.0)
    assert times.shape == (33,) and times[0] == 0 and times[-1] == 1
    torch.testing.assert_close(times, (1 - torch.cos(math.pi / 2 * u)).float())
    torch.testing.assert_close(sway_timesteps(32, 0.0), u.float())
    assert times[1] < 1 / 32 / 10  # s = -1 crowds the first steps near t = 0
    for s in (-1.0, -0.5, 0.5, 1.75):
        assert (sway_timesteps(16, s).diff() >= 0).all()


@pytest.mark.parametrize(
    "steps, sway, message", [(0, -1.0, "steps"), (2.0, -1.0, "steps"), (8, -1.2, "sway"), (8, 1.8, "sway")]
)
def test_sway_schedule_rejects_bad_arguments(steps, sway, message):
    with pytest.raises(ValueError, match=message):
        sway_timesteps(steps, sway)


# ---------------------------------------------------------------- loss


def _batch(frames: int = 12, batch: int = 2, dim: int = 75, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randn(batch, frames, dim, generator=g)
    noise = torch.randn(batch, frames, dim, generator=g)
    infill_mask = torch.zeros(batch, frames, dtype=torch.bool)
    infill_mask[:, 3:8] = True
    valid = torch.ones(batch, frames, dtype=torch.bool)
    valid[1, 10:] = False
    return x1, noise, infill_mask, valid


def test_cfm_loss_matches_hand_computation():
    x1, noise, infill_mask, valid = _batch()
    t = torch.tensor([0.25, 0.8])
    model = ScriptedVelocity(lambda x, t: torch.sin(3 * x))
    out = cfm_loss(model, x1, infill_mask, valid, torch.zeros(2, 24, 768), None, t=t, noise=noise, lambda_ts=0.2)

    call = model.calls[0]
    x_t = (1 - t[:, None, None]) * noise + t[:, None, None] * x1
    torch.testing.assert_close(call["x_t"], x_t)
    assert torch.equal(call["cond"], boundary_fill(x1, infill_mask, valid))
    v = torch.sin(3 * x_t)

    x1_np, v_np, noise_np, xt_np = (a.numpy().astype(np.float64) for a in (x1, v, noise, x_t))
    m, ok = infill_mask.numpy(), valid.numpy()
    target = m & ok
    cfm = ((v_np - (x1_np - noise_np)) ** 2).mean(-1)[target].mean()
    t_np = t.numpy()[:, None, None].astype(np.float64)
    hat = np.where(m[..., None], xt_np + (1 - t_np) * v_np, x1_np)
    pairs = ok[:, 1:] & ok[:, :-1] & (m[:, 1:] | m[:, :-1])
    ts = np.abs(np.diff(hat, axis=1)).mean(-1)[pairs].mean()
    assert out["cfm"].item() == pytest.approx(cfm, rel=1e-5)
    assert out["ts"].item() == pytest.approx(ts, rel=1e-5)
    assert out["loss"].item() == pytest.approx(cfm + 0.2 * ts, rel=1e-5)


def test_cfm_loss_with_motion_prediction_regresses_the_line_plus_the_output_on_x1():
    x1, noise, infill_mask, valid = _batch()
    t = torch.tensor([0.25, 0.8])
    model = ScriptedVelocity(lambda x, t: torch.sin(3 * x))
    model.config = model.config.replace(prediction="motion")
    out = cfm_loss(model, x1, infill_mask, valid, torch.zeros(2, 24, 768), None, t=t, noise=noise, lambda_ts=0.2)

    x_t = (1 - t[:, None, None]) * noise + t[:, None, None] * x1
    line = boundary_fill(x1, infill_mask, valid)
    m, ok = infill_mask.numpy(), valid.numpy()
    hat = np.where(m[..., None], (line + torch.sin(3 * x_t)).numpy(), x1.numpy()).astype(np.float64)
    cfm = ((hat - x1.numpy()) ** 2).mean(-1)[m & ok].mean()
    pairs = ok[:, 1:] & ok[:, :-1] & (m[:, 1:] | m[:, :-1])
    ts = np.abs(np.diff(hat, axis=1)).mean(-1)[pairs].mean()
    assert out["cfm"].item() == pytest.approx(cfm, rel=1e-5)
    assert out["ts"].item() == pytest.approx(ts, rel=1e-5)
    assert out["loss"].item() == pytest.approx(cfm + 0.2 * ts, rel=1e-5)


def test_cfm_loss_counts_only_generated_real_frames():
    x1, noise, infill_mask, valid = _batch()
    infill_mask[1, 9:] = True  # generated, but frames 10, 11 of sample 1 are padding
    t = torch.tensor([0.5, 0.5])
    model = ScriptedVelocity(lambda x, t: x)
    base = cfm_loss(model, x1, infill_mask, valid, torch.zeros(2, 24, 768), None, t=t, noise=noise)
    x2 = x1.clone()
    x2[1, 10:] += 100.0  # padding
    padded = cfm_loss(model, x2, infill_mask, valid, torch.zeros(2, 24, 768), None, t=t, noise=noise)
    assert padded["cfm"] == base["cfm"] and padded["ts"] == base["ts"]
    x3 = x1.clone()
    x3[0, 0] += 100.0  # known frame far from the span: neither the velocity target nor a counted pair
    known = cfm_loss(model, x3, infill_mask, valid, torch.zeros(2, 24, 768), None, t=t, noise=noise)
    # v = x_t changes with x1 at frame 0, but frame 0 is known: its velocity is not trained.
    assert known["cfm"] == base["cfm"] and known["ts"] == base["ts"]


def test_smoothness_loss_trains_the_network():
    x1, noise, infill_mask, valid = _batch()
    model = ScriptedVelocity(lambda x, t: x)
    scale = nn.Parameter(torch.tensor(1.0))
    model.fn = lambda x, t: scale * x
    out = cfm_loss(
        model, x1, infill_mask, valid, torch.zeros(2, 24, 768), None, t=torch.tensor([0.3, 0.6]), noise=noise
    )
    (grad,) = torch.autograd.grad(out["ts"], scale)
    assert grad.abs() > 0  # the paper's printed F0 + (Ft - F0) / t would give no gradient here


def test_cfm_loss_draws_from_the_generator_and_drops_speech():
    x1, _, infill_mask, valid = _batch()
    model = ScriptedVelocity(lambda x, t: x)
    speech = torch.zeros(2, 24, 768)
    a = cfm_loss(model, x1, infill_mask, valid, speech, None, generator=torch.Generator().manual_seed(5))
    b = cfm_loss(model, x1, infill_mask, valid, speech, None, generator=torch.Generator().manual_seed(5))
    c = cfm_loss(model, x1, infill_mask, valid, speech, None, generator=torch.Generator().manual_seed(6))
    assert a["loss"] == b["loss"] != c["loss"]
    assert model.calls[0]["drop_speech"] is False
    cfm_loss(model, x1, infill_mask, valid, speech, None, speech_drop_prob=1.0)
    assert model.calls[-1]["drop_speech"].tolist() == [True, True]
    with pytest.raises(ValueError, match="speech_drop_prob"):
        cfm_loss(model, x1, infill_mask, valid, speech, None, speech_drop_prob=1.5)
    with pytest.raises(ValueError, match="infill_mask"):
        cfm_loss(model, x1, infill_mask[:, :5], valid, speech, None)


@pytest.mark.parametrize("adaln", ["shared", "per_block"])
def test_cfm_loss_backward_through_the_tiny_model(adaln):
    model = random_model(adaln=adaln).train()
    x1, _, infill_mask, valid = _batch(frames=30)
    out = cfm_loss(model, x1, infill_mask, valid, torch.randn(2, 60, 768), None, speech_drop_prob=0.5)
    out["loss"].backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0


# ---------------------------------------------------------------- sampler


def test_euler_integrates_a_constant_and_a_linear_field_exactly():
    cond = torch.zeros(1, 6, 75)
    mask = torch.ones(1, 6, dtype=torch.bool)
    noise = torch.randn(1, 6, 75, generator=torch.Generator().manual_seed(3))
    shift = torch.linspace(-1, 1, 75)
    out = sample(
        ScriptedVelocity(lambda x, t: shift.expand_as(x)), cond, mask, torch.zeros(1, 12, 768), steps=7, seed=3
    )
    torch.testing.assert_close(out, noise + shift)  # the Euler step sizes sum to 1

    times = sway_timesteps(5, -1.0).double()
    out = sample(ScriptedVelocity(lambda x, t: -x), cond, mask, torch.zeros(1, 12, 768), steps=5, seed=3)
    torch.testing.assert_close(out, noise * float(torch.prod(1 - times.diff())))


@pytest.mark.parametrize("fill", ["smooth", "line", "zeros"])
def test_sampler_calls_the_model_at_the_sway_times_with_the_configured_cond(fill):
    model = ScriptedVelocity(lambda x, t: torch.zeros_like(x))
    model.config = model.config.replace(context_fill=fill)
    cond = torch.randn(1, 8, 75)
    mask = torch.zeros(1, 8, dtype=torch.bool)
    mask[0, 2:5] = True
    out = sample(model, cond, mask, torch.zeros(1, 16, 768), steps=4, sway=-1.0)
    assert [float(c["t"]) for c in model.calls] == sway_timesteps(4, -1.0)[:-1].tolist()
    seen = model.calls[0]["cond"]
    assert torch.equal(seen[~mask], cond[~mask])
    if fill == "zeros":
        assert not seen[mask].any()
    else:  # frames 2, 3, 4 on the line from frame 1 to frame 5 (bent to the boundary velocities: "smooth")
        fade = 0.8 * model.config.fps if fill == "smooth" else None
        torch.testing.assert_close(seen, boundary_fill(cond, mask, tangent_frames=fade))
    assert all(torch.equal(c["cond"], seen) for c in model.calls)
    assert torch.equal(out[~mask], cond[~mask])


@pytest.mark.parametrize("guidance", [0.0, 0.5])
def test_motion_prediction_lands_on_the_line_plus_the_output(guidance):
    """With prediction "motion" every Euler step moves toward x1_hat = cond + output and the last one
    reaches it, whatever the noise: an output of zero gives the line between the boundary frames."""
    shift = torch.linspace(-1, 1, 75)
    model = ScriptedVelocity(lambda x, t: shift.expand_as(x))
    model.config = model.config.replace(prediction="motion")
    cond = torch.randn(1, 8, 75, generator=torch.Generator().manual_seed(2))
    mask = torch.zeros(1, 8, dtype=torch.bool)
    mask[0, 2:5] = True
    out = sample(model, cond, mask, torch.zeros(1, 16, 768), steps=5, seed=4, guidance=guidance)
    line = cond[0, 1] + (cond[0, 5] - cond[0, 1]) * torch.tensor([0.25, 0.5, 0.75])[:, None]
    torch.testing.assert_close(out[mask], line + shift)
    assert torch.equal(out[~mask], cond[~mask])
    first, second = (c["x_t"][:1][mask] for c in model.calls[:2])
    assert (second - first).abs().max() > 0.1  # it did integrate from the noise


def test_boundary_fill_draws_lines_between_known_frames_and_holds_at_the_ends():
    values = torch.tensor([[0.0, 9, 9, 3, 4, 9, 6, 9], [9, 9, 2, 9, 9, 5, 9, 9]])[..., None].repeat(1, 1, 2)
    mask = values == 9
    out = boundary_fill(values, mask[..., 0])
    expected = torch.tensor([[0.0, 1, 2, 3, 4, 5, 6, 6], [2, 2, 2, 3, 4, 5, 5, 5]])
    torch.testing.assert_close(out, expected[..., None].repeat(1, 1, 2))
    # padding (valid False) never anchors the line; nothing known: zeros
    valid = torch.tensor([[True] * 6 + [False] * 2, [True] * 8])
    padded = boundary_fill(values, mask[..., 0], valid)
    assert padded[0, 5, 0] == 4 and padded[0, 6, 0] == 6
    assert not boundary_fill(values, torch.ones(2, 8, dtype=torch.bool)).any()


def test_boundary_fill_with_tangents_leaves_each_boundary_with_the_known_velocity():
    x = (0.1 * torch.arange(12.0) ** 2)[None, :, None].repeat(1, 1, 2)  # a quadratic: the line cuts its corners
    mask = torch.zeros(1, 12, dtype=torch.bool)
    mask[0, 4:8] = True
    hermite = boundary_fill(x, mask, tangent_frames=1e9)  # no fading: the cubic Hermite curve
    d = torch.arange(1.0, 5.0)  # distance from frame 3; the run is L = 5 steps long
    phi = lambda d: d * (1 - d / 5) ** 2  # noqa: E731
    line = 0.9 + (6.4 - 0.9) * d / 5
    expected = line + (0.5 - 1.1) * phi(d) - (1.7 - 1.1) * phi(5 - d)  # velocities 0.9 - 0.4, 8.1 - 6.4; slope 1.1
    torch.testing.assert_close(hermite[0, 4:8, 0], expected)
    assert (hermite[0, 4:8, 0] - x[0, 4:8, 0]).abs().max() < 0.25 * (line - x[0, 4:8, 0]).abs().max()
    assert torch.equal(hermite[~mask], x[~mask])
    faded = boundary_fill(x, mask, tangent_frames=2.0)
    assert ((faded - boundary_fill(x, mask)).abs() < (hermite - boundary_fill(x, mask)).abs() + 1e-6).all()
    # a straight known motion stays the line; runs at the clip's ends are held; a lone boundary frame keeps the slope
    straight = torch.arange(12.0)[None, :, None]
    torch.testing.assert_close(boundary_fill(straight, mask, tangent_frames=3.0), straight)
    ends = torch.zeros(1, 12, dtype=torch.bool)
    ends[0, :3] = ends[0, 9:] = True
    torch.testing.assert_close(boundary_fill(x, ends, tangent_frames=3.0), boundary_fill(x, ends))
    lone = mask.clone()
    lone[0, :3] = True  # frame 3 is known but frame 2 is not
    torch.testing.assert_close(boundary_fill(x, lone, tangent_frames=1e9)[0, 4:8, 0], line - (1.7 - 1.1) * phi(5 - d))


def test_guidance_mixes_speech_and_speech_blind_velocities():
    def field(x, t):
        return torch.ones_like(x)

    model = ScriptedVelocity(field)
    # Second half of the doubled batch is the speech-blind pass: give it velocity 3 instead of 1.
    model.fn = lambda x, t: torch.cat((torch.ones_like(x[:1]), 3 * torch.ones_like(x[1:])))
    cond, mask = torch.zeros(1, 4, 75), torch.ones(1, 4, dtype=torch.bool)
    out = sample(model, cond, mask, torch.zeros(1, 8, 768), steps=2, guidance=0.5, seed=1)
    noise = torch.randn(1, 4, 75, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, noise + (1 + 0.5 * (1 - 3)))
    assert model.calls[0]["drop_speech"].tolist() == [False, True]
    with pytest.raises(ValueError, match="guidance"):
        sample(model, cond, mask, torch.zeros(1, 8, 768), guidance=-1.0)


def test_progress_and_cancel():
    model = random_model().train()
    cond, mask = torch.randn(1, 10, 75), torch.ones(1, 10, dtype=torch.bool)
    seen = []
    sample(model, cond, mask, torch.randn(1, 20, 768), steps=3, progress=lambda i, n: seen.append((i, n)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert model.training  # the sampler restores the caller's mode

    class Interrupted(Exception):
        pass

    calls = []

    def cancel():
        calls.append(1)
        if len(calls) == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        sample(model, cond, mask, torch.randn(1, 20, 768), steps=5, cancel=cancel)
    assert model.training and len(calls) == 2


class Uncached(nn.Module):
    """A FacEDiT whose `prepare` only records its arguments, so every step runs the full network."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.config = model.config

    @property
    def device(self):
        return self.model.device

    def prepare(self, speech, frames, cache_speech=True, **kwargs):
        return dict(speech=speech, **kwargs)

    def forward(self, x_t, cond, speech, t, cache):
        return self.model(x_t, cond, cache["speech"], t, **{k: v for k, v in cache.items() if k != "speech"})


@pytest.mark.parametrize("guidance", [0.0, 0.7])
@pytest.mark.parametrize("attention", ["dense", "local"])
def test_sampling_with_the_prepared_speech_equals_sampling_without(guidance, attention):
    model = random_model()
    model.chunk_frames = 8  # several query chunks on the block-local path
    g = torch.Generator().manual_seed(5)
    cond, speech = torch.randn(2, 20, 75, generator=g), torch.randn(2, 44, 768, generator=g)
    mask = torch.zeros(2, 20, dtype=torch.bool)
    mask[:, 6:15] = True
    motion_mask, speech_mask = torch.ones(2, 20, dtype=torch.bool), torch.ones(2, 44, dtype=torch.bool)
    motion_mask[1, 16:], speech_mask[1, 35:] = False, False  # a padded second clip
    args = dict(motion_mask=motion_mask, speech_mask=speech_mask, speech_offset_s=0.01, steps=4, guidance=guidance)
    cached = sample(model, cond, mask, speech, attention=attention, **args)
    plain = sample(Uncached(model), cond, mask, speech, attention=attention, **args)
    assert torch.isfinite(cached).all()
    torch.testing.assert_close(cached, plain, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("guidance", [0.0, 0.7])
@pytest.mark.parametrize("attention", ["dense", "local"])
def test_sampling_without_the_speech_cache_is_bit_identical(guidance, attention):
    model = random_model()
    model.chunk_frames = 8
    g = torch.Generator().manual_seed(6)
    cond, speech = torch.randn(2, 20, 75, generator=g), torch.randn(2, 44, 768, generator=g)
    mask = torch.zeros(2, 20, dtype=torch.bool)
    mask[:, 5:16] = True
    motion_mask, speech_mask = torch.ones(2, 20, dtype=torch.bool), torch.ones(2, 44, dtype=torch.bool)
    motion_mask[1, 17:], speech_mask[1, 36:] = False, False
    args = dict(motion_mask=motion_mask, speech_mask=speech_mask, steps=3, guidance=guidance, attention=attention)
    cached = sample(model, cond, mask, speech, **args)
    uncached = sample(model, cond, mask, speech, cache_speech=False, **args)
    assert torch.equal(cached, uncached)

    lean = model.prepare(speech, 20, cache_speech=False)
    full = model.prepare(speech, 20)
    assert lean.speech_kv is None and lean.speech["tokens"].shape == (2, 44, model.config.dim)
    assert len(full.speech_kv) == model.config.depth and full.speech["tokens"] is None
    x_t, t = torch.randn(2, 20, 75, generator=g), torch.rand(2, generator=g)
    assert torch.equal(model(x_t, cond, None, t, cache=lean), model(x_t, cond, None, t, cache=full))


def test_sampling_projects_the_speech_once_per_call():
    model = random_model()
    calls: dict[str, int] = {}

    def count(name):
        def hook(module, args, output):
            calls[name] = calls.get(name, 0) + 1

        return hook

    model.speech_proj.register_forward_hook(count("speech_proj"))
    for i, block in enumerate(model.blocks):
        block.cross_attn.to_k.register_forward_hook(count(f"cross_k{i}"))
        block.cross_attn.to_v.register_forward_hook(count(f"cross_v{i}"))
        block.cross_attn.to_q.register_forward_hook(count(f"cross_q{i}"))
    cond, mask = torch.randn(1, 12, 75), torch.ones(1, 12, dtype=torch.bool)
    for guidance in (0.0, 0.5):
        calls.clear()
        sample(model, cond, mask, torch.randn(1, 24, 768), steps=5, guidance=guidance)
        assert calls.pop("speech_proj") == 1
        assert {name: n for name, n in calls.items() if "_q" in name} == {
            f"cross_q{i}": 5 for i in range(len(model.blocks))
        }
        assert {name: n for name, n in calls.items() if "_q" not in name} == {
            f"cross_{kv}{i}": 1 for i in range(len(model.blocks)) for kv in "kv"
        }


def test_forward_with_a_cache_checks_it_matches():
    model = random_model()
    x_t, cond, speech, t = random_inputs(model, batch=2, frames=10)
    cache = model.prepare(speech, 10)
    torch.testing.assert_close(model(x_t, cond, None, t, cache=cache), model(x_t, cond, speech, t), rtol=0, atol=0)
    with pytest.raises(ValueError, match="prepared for batch 2 and 10 frames"):
        model(x_t[:, :9], cond[:, :9], None, t, cache=cache)
    with pytest.raises(ValueError, match="speech=None"):
        model(x_t, cond, speech, t, cache=cache)
    with pytest.raises(ValueError, match="speech=None"):
        model(x_t, cond, None, t, cache=cache, attention="local")
    with pytest.raises(ValueError, match="speech must be"):
        model(x_t, cond, None, t)


# ---------------------------------------------------------------- infill in raw motion space


def _motion(frames: int = 50, seed: int = 0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(frames, 75, generator=g) * 0.05 + 0.3).to(dtype)


def _span(frames: int, start: int, stop: int) -> torch.Tensor:
    mask = torch.zeros(frames, dtype=torch.bool)
    mask[start:stop] = True
    return mask


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_infill_returns_known_frames_bit_identical(dtype):
    model = random_model()
    motion, mask = _motion(dtype=dtype), _span(50, 12, 30)
    out = infill(model, motion, mask, torch.randn(100, 768), steps=3)
    assert out.dtype == dtype and out.shape == motion.shape
    assert torch.equal(out[~mask], motion[~mask])
    assert not torch.equal(out[mask], motion[mask]) and torch.isfinite(out).all()


def test_infill_numpy_in_numpy_out_and_nan_allowed_under_the_mask():
    model = random_model()
    motion = _motion().numpy()
    mask = _span(50, 20, 50)  # generation: everything after a 20-frame prompt
    motion[25] = np.nan  # e.g. a frame where no face was found
    out = infill(
        model, motion, mask.numpy(), np.random.default_rng(0).normal(size=(100, 768)).astype(np.float32), steps=2
    )
    assert isinstance(out, np.ndarray) and np.array_equal(out[:20], motion[:20]) and np.isfinite(out).all()


def test_infill_same_seed_same_result_different_seed_differs():
    model = random_model()
    motion, mask, speech = _motion(), _span(50, 10, 40), torch.randn(100, 768)
    a = infill(model, motion, mask, speech, steps=4, seed=7)
    b = infill(model, motion, mask, speech, steps=4, seed=7)
    c = infill(model, motion, mask, speech, steps=4, seed=8)
    assert torch.equal(a, b)
    assert (a - c)[mask].abs().max() > 1e-3
    torch.manual_seed(123)  # the global RNG plays no part
    assert torch.equal(infill(model, motion, mask, speech, steps=4, seed=7), a)


def test_infill_uses_the_speech():
    model = random_model()
    motion, mask = _motion(), _span(50, 10, 40)
    a = infill(model, motion, mask, torch.randn(100, 768), steps=3)
    b = infill(model, motion, mask, torch.randn(100, 768), steps=3)
    assert (a - b)[mask].abs().max() > 1e-3


def test_infill_in_bfloat16_keeps_known_frames_exact():
    model = random_model(dtype=torch.bfloat16)
    motion, mask = _motion(), _span(50, 5, 15)
    out = infill(model, motion, mask, torch.randn(100, 768), steps=2)
    assert out.dtype == torch.float32 and torch.equal(out[~mask], motion[~mask]) and torch.isfinite(out).all()


def test_infill_batches_and_broadcasts():
    model = random_model()
    motion = torch.stack((_motion(seed=1), _motion(seed=2)))
    mask = torch.stack((_span(50, 3, 9), _span(50, 30, 50)))
    out = infill(model, motion, mask, torch.randn(100, 768), steps=2)
    assert out.shape == (2, 50, 75) and torch.equal(out[~mask], motion[~mask])
    shared = infill(model, motion, _span(50, 3, 9), torch.randn(2, 100, 768), steps=2)
    assert torch.equal(shared[:, :3], motion[:, :3])


def test_infill_with_nothing_masked_returns_a_copy():
    model = random_model()
    motion = _motion()
    out = infill(model, motion, torch.zeros(50, dtype=torch.bool), torch.randn(100, 768))
    assert torch.equal(out, motion) and out.data_ptr() != motion.data_ptr()


@dataclass
class FakeSpeechFeatures:
    features: torch.Tensor
    frame_rate: float
    offset_s: float
    duration_s: float


def test_infill_reads_timing_from_speech_features():
    model = random_model()
    motion, mask, speech = _motion(), _span(50, 10, 40), torch.randn(100, 768)
    wrapped = FakeSpeechFeatures(speech, frame_rate=40.0, offset_s=0.01, duration_s=2.5)
    a = infill(model, motion, mask, wrapped, steps=2)
    b = infill(model, motion, mask, speech, speech_frame_rate=40.0, speech_offset_s=0.01, steps=2)
    c = infill(model, motion, mask, speech, steps=2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="speech_frame_rate=50.0 contradicts"):
        infill(model, motion, mask, wrapped, speech_frame_rate=50.0)


@pytest.mark.parametrize(
    "motion, mask, speech, message",
    [
        (torch.zeros(10, 74), torch.zeros(10, dtype=torch.bool), torch.zeros(20, 768), "motion must be"),
        (torch.zeros(10, 75), torch.zeros(10), torch.zeros(20, 768), "must be bool"),
        (torch.zeros(10, 75), torch.zeros(9, dtype=torch.bool), torch.zeros(20, 768), "infill_mask must be"),
        (torch.zeros(10, 75), torch.zeros(10, dtype=torch.bool), torch.zeros(20, 512), "speech must be"),
        (torch.full((10, 75), float("nan")), torch.zeros(10, dtype=torch.bool), torch.zeros(20, 768), "NaN"),
        (torch.zeros(10, 75), torch.ones(10, dtype=torch.bool), torch.full((20, 768), float("inf")), "speech features"),
        (torch.zeros(10, 75, dtype=torch.int64), torch.ones(10, dtype=torch.bool), torch.zeros(20, 768), "floating"),
    ],
)
def test_infill_rejects_bad_inputs(motion, mask, speech, message):
    with pytest.raises(ValueError, match=message):
        infill(random_model(), motion, mask, speech, steps=1)


def test_infill_handles_minutes_of_motion_with_the_block_local_path(monkeypatch):
    import facedit.model as model_module

    chunks = []
    original = model_module.plan_attention
    monkeypatch.setattr(model_module, "plan_attention", lambda *a, **k: chunks.append(a[4]) or original(*a, **k))
    model = random_model()
    frames = 25 * 60 * 2  # two minutes at 25 fps
    motion, mask = _motion(frames), _span(frames, 1000, 1100)
    out = infill(model, motion, mask, torch.randn(2 * frames, 768), steps=1)
    assert torch.equal(out[~mask], motion[~mask]) and torch.isfinite(out).all()
    assert set(chunks) == {model.chunk_frames}


@pytest.mark.parametrize(
    ("field", "default", "other", "old", "bad"),
    [("context_fill", "smooth", "zeros", "zeros", "spline"), ("prediction", "motion", "velocity", "velocity", "noise")],
)
def test_new_config_fields_are_kept_in_saved_configs_and_old_configs_load_as_before(field, default, other, old, bad):
    config = FacEDiTConfig.tiny()
    assert getattr(config, field) == default
    assert getattr(FacEDiTConfig.from_dict(config.replace(**{field: other}).to_dict()), field) == other
    saved = config.to_dict()
    del saved[field]
    assert getattr(FacEDiTConfig.from_dict(saved), field) == old
    with pytest.raises(ValueError, match=f"{field} must be one of"):
        config.replace(**{field: bad})


# ---------------------------------------------------------------- torch.compile (opt-in)


def _compile_case(dtype=torch.float32):
    model = random_model(dtype=dtype)
    model.chunk_frames = 8  # the block-local path, strided key windows
    cond, mask = torch.randn(1, 20, 75), _span(20, 5, 15)[None]
    return model, cond, mask, torch.randn(1, 40, 768)


def test_compiled_sampling_matches_eager():
    if compiling.unavailable_reason("cpu") is not None:
        pytest.skip(compiling.unavailable_reason("cpu"))
    model, cond, mask, speech = _compile_case()
    eager = sample(model, cond, mask, speech, steps=2)
    fast = sample(model, cond, mask, speech, steps=2, compile=True)
    if model.__dict__["_facedit_compiled"].fn is None:
        pytest.skip("inductor could not compile here (see the logged reason)")
    torch.testing.assert_close(fast, eager, rtol=1e-4, atol=1e-4)


def test_compile_falls_back_to_eager_where_it_cannot_compile(monkeypatch, caplog):
    model, cond, mask, speech = _compile_case()
    eager = sample(model, cond, mask, speech, steps=2)
    monkeypatch.setattr(compiling, "unavailable_reason", lambda device: "no C++ compiler found (test)")
    with caplog.at_level("WARNING", logger="facedit.accel.compiling"):
        out = sample(model, cond, mask, speech, steps=2, compile=True)
        again = sample(model, cond, mask, speech, steps=2, compile=True)  # the next window of an edit
    assert torch.equal(out, eager) and torch.equal(again, eager)
    assert caplog.text.count("no C++ compiler found (test)") == 1  # said once, not once per call


def test_compile_falls_back_to_eager_when_compilation_fails(monkeypatch, caplog):
    model, cond, mask, speech = _compile_case()
    eager = sample(model, cond, mask, speech, steps=3)
    monkeypatch.setattr(compiling, "unavailable_reason", lambda device: None)

    def failing(*args, **kwargs):
        raise torch._dynamo.exc.InternalTorchDynamoError("inductor exploded (test)")

    monkeypatch.setattr(compiling.torch, "compile", lambda model: failing)
    with caplog.at_level("WARNING", logger="facedit.accel.compiling"):
        out = sample(model, cond, mask, speech, steps=3, compile=True)
    assert torch.equal(out, eager)
    assert caplog.text.count("inductor exploded (test)") == 1  # reported once, then eager for good

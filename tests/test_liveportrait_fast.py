"""LivePortrait precision modes: folding is exact, 'fast' stays >= 40 dB from fp32, extraction stays fp32, and
rendering reports progress and honours cancel per frame."""

from __future__ import annotations

import math

import pytest
import torch
from _lp_helpers import (
    one_thread,  # noqa: F401 (fixture)
    tiny_model,
    write_safetensors,
)
from torch import nn

from facedit.liveportrait import LivePortrait, LivePortraitConfig, extract_motion, iter_render, load_liveportrait
from facedit.liveportrait import fast as fast_module
from facedit.liveportrait.config import AppearanceConfig, DenseMotionConfig, SpadeConfig, WarpingConfig
from facedit.liveportrait.fast import FastConv, _fast_conv, fast_plan, resolve_precision, spectral_weight
from facedit.liveportrait.layers import Conv3d, SpectralConv2d

pytestmark = pytest.mark.usefixtures("one_thread")

# Every layer of W and G at the real 21 keypoints, a 4-deep 64x64 volume and channel counts that are no multiple
# of 16 (dense-motion input 44, hourglass output 52, mask 22, occlusion 208 -> 1, image 12): the padding paths run.
REDUCED = LivePortraitConfig(
    appearance=AppearanceConfig(
        block_expansion=8, max_features=16, reshape_channel=4, reshape_depth=4, num_resblocks=1
    ),
    motion=LivePortraitConfig.tiny().motion,
    warping=WarpingConfig(
        block_expansion=4, dense_motion=DenseMotionConfig(block_expansion=8, max_features=32, num_blocks=3, compress=1)
    ),
    spade=SpadeConfig(block_expansion=4, max_features=16, out_channels=8, spade_hidden=8),
    stitching=LivePortraitConfig.tiny().stitching,
)


def reduced_model(precision: str = "fp32", seed: int = 0, **kwargs) -> LivePortrait:
    """Random weights with non-trivial BatchNorm statistics (so that folding them is not a no-op)."""
    torch.manual_seed(seed)
    lp = LivePortrait.random(REDUCED)
    gen = torch.Generator().manual_seed(seed + 100)
    for m in lp.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=gen))
            m.running_var.copy_(0.5 + 1.5 * torch.rand(m.running_var.shape, generator=gen))
            m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=gen))
            m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
    return lp.prepare(precision, **kwargs)


def whole_chain(lp: LivePortrait, images: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """image -> features -> motion -> warp (driving = source keypoints moved) -> decode."""
    motion = lp.motion(images)
    feats = lp.appearance(images)
    shift = 0.04 * torch.randn(motion["kp"].shape, generator=torch.Generator().manual_seed(7))
    return lp.warp_decode(feats, motion["kp"], motion["kp"] + shift), motion


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    torch.manual_seed(3)
    return torch.rand(2, 3, 256, 256)


@pytest.fixture(scope="module")
def reference(images):
    return whole_chain(reduced_model("fp32"), images)


@torch.no_grad()
@pytest.mark.parametrize("bias", [True, False])
def test_folded_spectral_norm_equals_the_unfolded_forward(bias):
    torch.manual_seed(0)
    conv = SpectralConv2d(20, 12, kernel_size=3 if bias else 1, padding=1 if bias else 0, bias=bias)
    x = torch.randn(2, 20, 9, 11)
    folded = _fast_conv(conv, torch.float32)
    assert isinstance(folded, FastConv) and folded.weight.shape[:2] == (16, 32)  # padded to multiples of 16
    torch.testing.assert_close(folded(x), conv(x), rtol=1e-5, atol=1e-5)
    sigma = torch.linalg.matrix_norm(spectral_weight(conv).reshape(12, -1), ord=2)
    assert abs(sigma - 1) < 0.02  # divided by its largest singular value (the stored power-iteration estimate)


@torch.no_grad()
def test_folded_batchnorm_equals_conv_then_norm():
    torch.manual_seed(1)
    conv, bn = Conv3d(6, 22, kernel_size=3, padding=1), nn.BatchNorm3d(22).eval()
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.3, 3.0)
    bn.weight.data.normal_()
    bn.bias.data.normal_()
    x = torch.randn(1, 6, 4, 10, 12)
    torch.testing.assert_close(_fast_conv(conv, torch.float32, bn)(x), bn(conv(x)), rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_prepared_networks_in_fp32_compute_the_same_function(images, reference):
    """Folding, padding, channels-last, group_norm and the fused SPADE modulation change no result."""
    lp = reduced_model("fast", decode_dtype=torch.float32)
    for net in (lp.warping_module, lp.spade_generator):
        kinds = {type(m) for m in net.modules()}
        assert not kinds & {SpectralConv2d, nn.Conv2d, nn.Conv3d, nn.BatchNorm2d, nn.BatchNorm3d}
        assert FastConv in kinds
    out, _ = whole_chain(lp, images)
    torch.testing.assert_close(out, reference[0], rtol=0, atol=1e-4)


@torch.no_grad()
def test_fast_mode_whole_chain_is_within_40_db_of_fp32(images, reference):
    """bf16 warp + decode forced whatever the CPU (without native bf16 the layers round to bf16 the same way)."""
    out32, motion32 = reference
    lp = reduced_model("fast", decode_dtype=torch.bfloat16)
    assert lp.warping_module.dense_motion_network.mask.weight.dtype == torch.bfloat16
    out, _ = whole_chain(lp, images)
    assert out.dtype == torch.float32 and out.shape == (2, 3, 512, 512)
    assert out32.std() > 0.03  # a picture with structure, not a flat grey that any precision matches
    assert (out - out32).abs().max() > 1e-3  # bf16 really ran
    assert psnr(out, out32) >= 40.0


@torch.no_grad()
@pytest.mark.parametrize("precision", ["fast", "bf16", "fp16"])
def test_motion_extractor_runs_in_fp32_in_every_mode(images, reference, precision):
    """The bf16 bug: keypoints and head pose came from a bf16 motion extractor. Now they are fp32's, bit for bit."""
    lp = reduced_model(precision)
    assert {p.dtype for p in lp.motion_extractor.parameters()} == {torch.float32}
    assert {p.dtype for p in lp.stitching.parameters()} == {torch.float32}
    motion = lp.motion(images)
    for key, value in reference[1].items():
        assert torch.equal(motion[key], value), key
    if precision == "fast":
        torch.testing.assert_close(lp.appearance(images), reduced_model("fp32").appearance(images), rtol=0, atol=0)


def test_precision_names_and_prepare_once():
    assert [resolve_precision(p) for p in ("float32", "half", "bfloat16", "FAST", torch.bfloat16)] == [
        "fp32",
        "fp16",
        "bf16",
        "fast",
        "bf16",
    ]
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("int8")
    lp = tiny_model().prepare("fast")
    assert lp.precision == "fast" and lp.fast_plan is not None
    with pytest.raises(ValueError, match="already prepared for 'fast'"):
        lp.prepare("bf16")


def test_fast_plan_says_when_it_falls_back(monkeypatch):
    monkeypatch.setattr(fast_module, "native_low_precision", lambda dtype: False)
    plan = fast_plan("cpu")
    assert plan.falls_back and plan.weight_dtype == torch.float32 and "no native bf16" in plan.reason
    monkeypatch.setattr(fast_module, "native_low_precision", lambda dtype: True)
    plan = fast_plan("cpu")
    assert not plan.falls_back and plan.weight_dtype == torch.bfloat16
    cuda = fast_plan("cuda")
    assert cuda.autocast_dtype == torch.float16 and cuda.weight_dtype == torch.float32 and not cuda.falls_back


def test_loader_reads_fp32_and_prepares_fast(tmp_path, images):
    lp = tiny_model(seed=4)
    folder = write_safetensors(lp, tmp_path / "lp")
    fast = load_liveportrait(folder, dtype="fast", config=LivePortraitConfig.tiny())
    assert fast.precision == "fast"
    with torch.no_grad():
        ref, got = lp.motion(images[:1]), fast.motion(images[:1])
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    with pytest.raises(ValueError, match="precision must be one of"):
        load_liveportrait(folder, dtype="fp8", config=LivePortraitConfig.tiny())


def test_render_reports_progress_and_checks_cancel_per_frame_inside_a_chunk(monkeypatch):
    lp = tiny_model(seed=5)
    torch.manual_seed(6)
    crops = torch.rand(3, 256, 256, 3)
    motion = extract_motion(lp, crops)
    decoded = []
    original = LivePortrait.warp_decode

    def counting(self, feature, kp_source, kp_driving):
        decoded.append(feature.shape[0])
        return original(self, feature, kp_source, kp_driving)

    monkeypatch.setattr(LivePortrait, "warp_decode", counting)
    calls = []
    starts = [
        s
        for s, _ in iter_render(
            lp, crops, motion, motion.motion, chunk_size=4, progress=lambda d, n: calls.append((d, n))
        )
    ]
    assert starts == [0, 1, 2] and calls == [(1, 3), (2, 3), (3, 3)] and decoded == [1, 1, 1]

    class Stop(Exception):
        pass

    checks = []

    def cancel():
        checks.append(len(decoded))
        if len(checks) == 3:
            raise Stop

    decoded.clear()
    with pytest.raises(Stop):
        list(iter_render(lp, crops, motion, motion.motion, chunk_size=4, cancel=cancel))
    assert checks == [0, 1, 2] and decoded == [1, 1]  # checked before each frame, stopped before the third

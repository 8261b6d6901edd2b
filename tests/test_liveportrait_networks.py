"""The networks, extraction and rendering at small widths through the same code as the official sizes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _lp_helpers import (
    one_thread,  # noqa: F401 (fixture)
    tiny_model,
)
from torch import nn

from facedit.liveportrait import LivePortrait, LivePortraitConfig, MotionTrack, extract_motion, iter_render, render
from facedit.liveportrait.keypoints import make_coordinate_grid
from facedit.liveportrait.layers import ChannelsFirstLayerNorm, SpectralConv2d, avg_pool_hw
from facedit.liveportrait.warping import DenseMotionNetwork
from facedit.motion import motion_to_keypoints

TINY = LivePortraitConfig.tiny()
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lp() -> LivePortrait:
    return tiny_model(seed=0)


@pytest.fixture(scope="module")
def clip(lp):
    torch.manual_seed(1)
    crops = torch.rand(3, 256, 256, 3)
    return crops, extract_motion(lp, crops, chunk_size=2)


def dense_motion_with_stats(seed: int = 0) -> DenseMotionNetwork:
    torch.manual_seed(seed)
    net = DenseMotionNetwork(TINY.warping, feature_channel=4, reshape_depth=2).eval()
    for m in net.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, nn.BatchNorm3d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    return net


@torch.no_grad()
def test_equal_keypoints_give_the_identity_deformation_whatever_the_weights():
    """Driving == source: every sparse motion is the identity grid and the heatmaps vanish, so the softmax-
    weighted deformation is the identity grid itself, for any weights."""
    net = dense_motion_with_stats()
    feature = torch.randn(2, 4, 2, 64, 64)
    kp = torch.rand(2, 21, 3) * 2 - 1
    out = net(feature, kp_driving=kp, kp_source=kp)
    identity = make_coordinate_grid((2, 64, 64))
    assert torch.allclose(out["sparse_motion"], identity.expand_as(out["sparse_motion"]), atol=1e-6)
    assert out["heatmap"].abs().max() == 0
    assert torch.allclose(out["mask"].sum(1), torch.ones(2, 2, 64, 64), atol=1e-5)
    assert torch.allclose(out["deformation"], identity.expand(2, *identity.shape), atol=1e-5)
    assert out["occlusion_map"].shape == (2, 1, 64, 64)


@torch.no_grad()
def test_uniform_keypoint_shift_pulls_the_deformation_along_that_shift():
    """All driving keypoints = source + d: each keypoint's motion is grid - d, the background's the grid, so
    deformation - grid = -(1 - background weight) * d at every voxel."""
    net = dense_motion_with_stats(seed=1)
    kp = torch.rand(1, 21, 3) * 2 - 1
    d = torch.tensor([0.1, -0.05, 0.02])
    out = net(torch.randn(1, 4, 2, 64, 64), kp_driving=kp + d, kp_source=kp)
    delta = out["deformation"] - make_coordinate_grid((2, 64, 64))
    weight = 1 - out["mask"][:, 0]
    assert torch.allclose(delta, -weight[..., None] * d, atol=1e-5)


@torch.no_grad()
def test_warping_with_equal_keypoints_samples_features_on_the_identity_grid(lp):
    feats = lp.appearance(torch.rand(1, 3, 256, 256))
    kp = torch.rand(1, 21, 3) * 2 - 1
    out = lp.warping_module(feats, kp_driving=kp, kp_source=kp)
    grid = make_coordinate_grid(feats.shape[2:])[None]
    warped = F.grid_sample(feats, grid, align_corners=False)
    b, c, d, h, w = warped.shape
    expected = lp.warping_module.fourth(lp.warping_module.third(warped.view(b, c * d, h, w))) * out["occlusion_map"]
    assert torch.allclose(out["out"], expected, atol=1e-4)


def test_avg_pool_hw_equals_avg_pool3d():
    x = torch.randn(2, 3, 4, 8, 6)
    assert torch.allclose(avg_pool_hw(x), F.avg_pool3d(x, (1, 2, 2)), atol=1e-6)
    assert avg_pool_hw(x.bfloat16()).dtype == torch.bfloat16


@torch.no_grad()
def test_spectral_conv_matches_torch_spectral_norm_in_eval():
    torch.manual_seed(0)
    ref = nn.utils.spectral_norm(nn.Conv2d(6, 5, 3, padding=1))
    ref.train()
    ref(torch.randn(1, 6, 8, 8))  # one power iteration so that u, v are meaningful
    ref.eval()
    ours = SpectralConv2d(6, 5, 3, padding=1)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 6, 8, 8)
    assert torch.allclose(ours(x), ref(x), atol=1e-5)
    assert set(ours.state_dict()) == {"weight_orig", "bias", "weight_u", "weight_v"}


def test_channels_first_layer_norm_matches_layer_norm():
    ln = ChannelsFirstLayerNorm(7)
    nn.init.normal_(ln.weight)
    nn.init.normal_(ln.bias)
    x = torch.randn(2, 7, 4, 5)
    ref = F.layer_norm(x.permute(0, 2, 3, 1), (7,), ln.weight, ln.bias, 1e-6).permute(0, 3, 1, 2)
    assert torch.allclose(ln(x), ref, atol=1e-5)


def test_extract_motion_shapes_and_consistency(lp, clip):
    crops, motion = clip
    assert motion.motion.shape == (3, 75) and motion.angles.shape == (3, 3)
    raw = lp.motion(crops[1:2].permute(0, 3, 1, 2))
    assert torch.allclose(motion.kp_canonical[1], raw["kp"][0], atol=1e-5)
    rot = motion.motion[:, 63:72].reshape(3, 3, 3)
    assert torch.allclose(rot @ rot.transpose(1, 2), torch.eye(3).expand(3, 3, 3), atol=1e-5)
    assert torch.allclose(
        motion.source_keypoints(), motion_to_keypoints(motion.motion, motion.kp_canonical, motion.scale)
    )
    with pytest.raises(ValueError, match="256x256"):
        extract_motion(lp, torch.rand(1, 128, 128, 3))
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        extract_motion(lp, torch.rand(256, 256, 3))


def test_extract_reports_progress(lp):
    calls = []
    extract_motion(lp, torch.rand(3, 256, 256, 3), chunk_size=2, progress=lambda d, n: calls.append((d, n)))
    assert calls == [(2, 3), (3, 3)]


def test_render_is_independent_of_chunk_size_and_reports_progress(lp, clip):
    crops, motion = clip
    calls = []
    a = render(lp, crops, motion, motion.motion, chunk_size=1, progress=lambda d, n: calls.append(d))
    b = render(lp, crops, motion, motion.motion, chunk_size=3)
    assert a.shape == (3, 512, 512, 3) and calls == [1, 2, 3]
    assert torch.allclose(a, b, atol=1e-5)


def test_render_uses_the_driving_motion(lp, clip):
    crops, motion = clip
    same = render(lp, crops[:1], motion.select([0]), motion.motion[:1], stitching=False)
    moved = motion.motion[:1].clone()
    moved[0, 72] += 0.2  # tx
    other = render(lp, crops[:1], motion.select([0]), moved, stitching=False)
    assert (same - other).abs().mean() > 1e-4


def test_render_source_broadcast_and_index(lp, clip):
    crops, motion = clip
    single = render(lp, crops[:1], motion.select([0]), motion.motion, stitching=False)
    indexed = render(lp, crops, motion, motion.motion, source_index=[0, 0, 0], stitching=False)
    assert single.shape == (3, 512, 512, 3) and torch.allclose(single, indexed, atol=1e-5)
    with pytest.raises(ValueError, match="source_index"):
        render(lp, crops[:2], motion.select([0, 1]), motion.motion)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        render(lp, crops, motion, motion.motion, source_index=[0, 1, 3])
    with pytest.raises(ValueError, match="NaN"):
        render(lp, crops, motion, motion.motion * float("nan"))


def test_render_computes_appearance_per_chunk_only(lp, clip, monkeypatch):
    crops, motion = clip
    seen = []
    original = LivePortrait.appearance

    def counting(self, images):
        seen.append(images.shape[0])
        return original(self, images)

    monkeypatch.setattr(LivePortrait, "appearance", counting)
    for _ in iter_render(lp, crops, motion, motion.motion, chunk_size=2):
        pass
    assert seen == [2, 1]
    seen.clear()
    list(iter_render(lp, crops[:1], motion.select([0]), motion.motion, chunk_size=2))
    assert seen == [1, 1]  # a single source is computed once per chunk, not once per frame


def test_stitching_adds_the_mlp_delta_exactly(lp, clip):
    _, motion = clip
    x_s = motion.source_keypoints()
    x_d = x_s + 0.05
    with torch.no_grad():
        delta = lp.stitching.stitching(torch.cat([x_s.reshape(3, -1), x_d.reshape(3, -1)], 1))
    out = lp.stitch(x_s, x_d)
    expected = x_d + delta[:, :63].reshape(3, 21, 3)
    expected[..., :2] += delta[:, 63:65].reshape(3, 1, 2)
    assert torch.allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precisions_run_and_stay_close_to_float32(dtype):
    ref = tiny_model(seed=2)
    low = tiny_model(seed=2, dtype=dtype)
    torch.manual_seed(3)
    crops = torch.rand(2, 256, 256, 3)
    m32, mlo = extract_motion(ref, crops), extract_motion(low, crops)
    assert mlo.motion.dtype == torch.float32
    assert (m32.motion - mlo.motion).abs().max() < 0.1
    out32 = render(ref, crops, m32, m32.motion)
    outlo = render(low, crops, m32, m32.motion)
    assert outlo.dtype == torch.float32 and torch.isfinite(outlo).all()
    assert (out32 - outlo).abs().mean() < 0.02


def test_motion_track_validation_and_dict_round_trip(clip):
    _, motion = clip
    again = MotionTrack.from_dict(motion.as_dict())
    assert torch.equal(again.motion, motion.motion) and len(again) == 3
    with pytest.raises(ValueError, match="kp_canonical"):
        MotionTrack(motion.motion, motion.kp_canonical[:2], motion.scale, motion.angles)

"""Weight files: both published layouts load strictly; bad files fail with messages naming file and keys;
the official-size networks match the published files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _lp_helpers import (
    assert_same_weights,
    one_thread,  # noqa: F401 (fixture)
    tiny_model,
    write_official,
    write_safetensors,
)
from safetensors.torch import save as safetensors_bytes
from safetensors.torch import save_file

from facedit.liveportrait import LivePortraitConfig, extract_motion, find_weight_files, load_liveportrait, render
from facedit.liveportrait.networks import NETWORK_NAMES, build_network

TINY = LivePortraitConfig.tiny()
pytestmark = pytest.mark.usefixtures("one_thread")
DATA = Path(__file__).parent / "data" / "liveportrait_official_keys.json"

# Byte sizes of the published safetensors conversion (Kijai/LivePortrait_safetensors, human model).
PUBLISHED_SAFETENSORS_BYTES = {
    "appearance_feature_extractor": 3_361_936,
    "motion_extractor": 112_496_256,
    "warping_module": 182_158_564,
    "spade_generator": 221_771_768,
    "stitching_retargeting_module": 911_836,
}

# Transcribed from the official module definitions and models.yaml (not generated from our code).
CRITICAL_KEYS = {
    "appearance_feature_extractor": {
        "first.conv.weight": (64, 3, 3, 3),
        "first.norm.num_batches_tracked": (),
        "down_blocks.1.conv.weight": (256, 128, 3, 3),
        "second.weight": (512, 256, 1, 1),
        "resblocks_3d.3dr5.conv2.weight": (32, 32, 3, 3, 3),
        "resblocks_3d.3dr0.norm1.running_var": (32,),
    },
    "motion_extractor": {
        "detector.downsample_layers.0.0.weight": (96, 3, 4, 4),
        "detector.downsample_layers.0.1.weight": (96,),
        "detector.downsample_layers.3.1.weight": (768, 384, 2, 2),
        "detector.stages.2.8.dwconv.weight": (384, 1, 7, 7),
        "detector.stages.3.2.grn.gamma": (1, 1, 1, 3072),
        "detector.stages.0.0.pwconv1.weight": (384, 96),
        "detector.norm.weight": (768,),
        "detector.fc_kp.weight": (63, 768),
        "detector.fc_pitch.weight": (66, 768),
        "detector.fc_scale.bias": (1,),
        "detector.fc_t.weight": (3, 768),
        "detector.fc_exp.bias": (63,),
    },
    "warping_module": {
        "dense_motion_network.hourglass.encoder.down_blocks.0.conv.weight": (64, 110, 3, 3, 3),
        "dense_motion_network.hourglass.encoder.down_blocks.4.conv.weight": (1024, 512, 3, 3, 3),
        "dense_motion_network.hourglass.decoder.up_blocks.0.conv.weight": (512, 1024, 3, 3, 3),
        "dense_motion_network.hourglass.decoder.up_blocks.4.conv.weight": (32, 128, 3, 3, 3),
        "dense_motion_network.hourglass.decoder.conv.weight": (142, 142, 3, 3, 3),
        "dense_motion_network.mask.weight": (22, 142, 7, 7, 7),
        "dense_motion_network.compress.weight": (4, 32, 1, 1, 1),
        "dense_motion_network.norm.num_batches_tracked": (),
        "dense_motion_network.occlusion.weight": (1, 2272, 7, 7),
        "third.conv.weight": (256, 512, 3, 3),
        "fourth.weight": (256, 256, 1, 1),
    },
    "spade_generator": {
        "fc.weight": (512, 256, 3, 3),
        "G_middle_0.conv_0.weight_orig": (512, 512, 3, 3),
        "G_middle_0.conv_0.weight_u": (512,),
        "G_middle_0.conv_0.weight_v": (4608,),
        "G_middle_5.norm_1.mlp_shared.0.weight": (128, 256, 3, 3),
        "G_middle_5.norm_1.mlp_gamma.weight": (512, 128, 3, 3),
        "up_0.conv_s.weight_orig": (256, 512, 1, 1),
        "up_0.conv_s.weight_v": (512,),
        "up_1.conv_0.weight_orig": (64, 256, 3, 3),
        "up_1.norm_s.mlp_beta.bias": (256,),
        "conv_img.0.weight": (12, 64, 3, 3),
    },
}
ABSENT_KEYS = ("up_0.conv_s.bias", "G_middle_0.conv_0.weight", "G_middle_0.norm_0.param_free_norm.weight")
OFFICIAL_STITCHING_KEYS = {  # as in the official .pth sub-dicts
    "retarget_shoulder": {"module.mlp.0.weight": (128, 126), "module.mlp.6.weight": (65, 64)},
    "retarget_mouth": {"module.mlp.0.weight": (128, 65), "module.mlp.6.bias": (63,)},
    "retarget_eye": {"module.mlp.0.weight": (256, 66), "module.mlp.10.weight": (63, 64)},
}
# Trainable parameters (buffers excluded), from the published byte sizes above less their headers.
PARAMETER_COUNTS = {
    "appearance_feature_extractor": 836_224,
    "motion_extractor": 28_118_728,
    "warping_module": 45_529_829,
    "spade_generator": 55_365_388,
    "stitching_retargeting_module": 227_263,
}


def _file_layout(name: str, sd: dict) -> dict:
    if name != "stitching_retargeting_module":
        return sd
    sections = {"stitching": "retarget_shoulder", "lip": "retarget_mouth", "eye": "retarget_eye"}
    return {f"{sections[k.split('.', 1)[0]]}_module.{k.split('.', 1)[1]}": v for k, v in sd.items()}


@pytest.mark.parametrize("writer", [write_official, write_safetensors], ids=["official_pth", "safetensors"])
def test_both_layouts_load_strictly_and_run(tmp_path, writer):
    ref = tiny_model(seed=1)
    writer(ref, tmp_path / "weights")
    lp = load_liveportrait(tmp_path / "weights", config=TINY, require_stitching=True)
    assert_same_weights(ref, lp)
    crops = torch.rand(2, 256, 256, 3)
    motion = extract_motion(lp, crops)
    assert motion.motion.shape == (2, 75) and motion.kp_canonical.shape == (2, 21, 3) and motion.scale.shape == (2,)
    out = render(lp, crops, motion, motion.motion, chunk_size=2)
    assert out.shape == (2, 512, 512, 3) and torch.isfinite(out).all()
    assert 0 <= out.min() and out.max() <= 1


def test_folder_finds_either_layout_and_prefers_safetensors(tmp_path):
    write_official(tiny_model(seed=1), tmp_path)
    found = find_weight_files(tmp_path)
    assert set(found) == set(NETWORK_NAMES) and all(p.suffix == ".pth" for p in found.values())
    assert find_weight_files(tmp_path / "liveportrait")["motion_extractor"].parent.name == "base_models"
    write_safetensors(tiny_model(seed=2), tmp_path)
    found = find_weight_files(tmp_path)
    assert all(p.suffix == ".safetensors" and p.parent == tmp_path for p in found.values())
    assert_same_weights(tiny_model(seed=2), load_liveportrait(tmp_path, config=TINY))


@pytest.mark.parametrize("dtype", ["fp16", "bf16", torch.float32])
def test_dtype_and_device_arguments(tmp_path, dtype):
    write_safetensors(tiny_model(seed=3), tmp_path)
    lp = load_liveportrait(tmp_path, config=TINY, dtype=dtype, device="cpu")
    expected = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(dtype, torch.float32)
    assert lp.dtype == expected and lp.device.type == "cpu"
    bn = lp.appearance_feature_extractor.first.norm
    assert bn.num_batches_tracked.dtype == torch.int64
    assert lp.motion(torch.rand(1, 3, 256, 256))["kp"].dtype == torch.float32


def test_stitching_is_optional_unless_required(tmp_path):
    write_safetensors(tiny_model(seed=4), tmp_path, stitching=False)
    lp = load_liveportrait(tmp_path, config=TINY)
    assert lp.stitching is None
    crops = torch.rand(1, 256, 256, 3)
    motion = extract_motion(lp, crops)
    with pytest.raises(ValueError, match="stitching"):
        render(lp, crops, motion, motion.motion)
    assert render(lp, crops, motion, motion.motion, stitching=False).shape == (1, 512, 512, 3)
    with pytest.raises(FileNotFoundError, match="stitching_retargeting_module"):
        load_liveportrait(tmp_path, config=TINY, require_stitching=True)


def test_missing_files_name_what_to_get(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_liveportrait(tmp_path, config=TINY)
    msg = str(err.value)
    for stem in ("appearance_feature_extractor", "motion_extractor", "warping_module", "spade_generator"):
        assert stem in msg
    assert "Kijai/LivePortrait_safetensors" in msg and "KwaiVGI/LivePortrait" in msg


def test_offline_download_fails_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True, raising=False)
    with pytest.raises(ConnectionError) as err:
        load_liveportrait(tmp_path / "lp", download="safetensors")
    msg = str(err.value)
    assert "offline" in msg and "appearance_feature_extractor.safetensors" in msg and str(tmp_path / "lp") in msg
    with pytest.raises(ValueError, match="'official' or 'safetensors'"):
        load_liveportrait(tmp_path / "lp", download="civitai")


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_truncated_file_fails_naming_the_file(tmp_path, suffix):
    writer = write_safetensors if suffix == ".safetensors" else write_official
    writer(tiny_model(seed=5), tmp_path)
    path = find_weight_files(tmp_path)["warping_module"]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError) as err:
        load_liveportrait(tmp_path, config=TINY)
    assert str(path) in str(err.value)


def test_pickled_code_is_refused(tmp_path):
    write_official(tiny_model(seed=5), tmp_path)
    path = find_weight_files(tmp_path)["spade_generator"]
    torch.save({"fc.weight": torch.zeros(1), "evil": Path("x")}, path)
    with pytest.raises(ValueError, match="weights_only=True"):
        load_liveportrait(tmp_path, config=TINY)


def test_wrong_keys_and_shapes_are_named(tmp_path):
    write_safetensors(tiny_model(seed=6), tmp_path)
    path = tmp_path / "motion_extractor.safetensors"
    from safetensors.torch import load_file

    sd = load_file(str(path))
    sd.pop("detector.fc_exp.bias")
    sd["detector.fc_extra.weight"] = torch.zeros(3)
    sd["detector.fc_kp.weight"] = torch.zeros(5, 5)
    save_file(sd, str(path))
    with pytest.raises(ValueError) as err:
        load_liveportrait(tmp_path, config=TINY)
    msg = str(err.value)
    assert str(path) in msg
    assert "missing keys (1): detector.fc_exp.bias" in msg
    assert "unexpected keys (1): detector.fc_extra.weight" in msg
    assert "detector.fc_kp.weight: file (5, 5)" in msg


def test_official_size_file_does_not_load_into_small_networks(tmp_path):
    write_safetensors(tiny_model(seed=6), tmp_path)
    with pytest.raises(ValueError, match="shape mismatches"):
        load_liveportrait(tmp_path)  # official config against tiny files


def test_stitching_file_without_a_section_is_named(tmp_path):
    write_official(tiny_model(seed=7), tmp_path)
    path = find_weight_files(tmp_path)["stitching_retargeting_module"]
    content = torch.load(path, weights_only=True)
    del content["retarget_eye"]
    torch.save(content, path)
    with pytest.raises(ValueError, match="retarget_eye"):
        load_liveportrait(tmp_path, config=TINY)


def test_official_sizes_match_the_published_safetensors_byte_for_byte():
    """Build each official-size network on the meta device, serialise its state_dict as safetensors (same keys,
    shapes and dtypes, uninitialised values) and compare with the published file sizes: the header encodes every
    key name and shape, the body every tensor, so any difference changes the size."""
    cfg = LivePortraitConfig()
    for name in NETWORK_NAMES:
        sd = _file_layout(name, build_network(name, cfg, device="meta").state_dict())
        blob = safetensors_bytes({k: torch.empty(v.shape, dtype=v.dtype) for k, v in sd.items()}, {"format": "pt"})
        assert len(blob) == PUBLISHED_SAFETENSORS_BYTES[name], name
        del blob


def test_official_sizes_have_the_transcribed_keys_and_parameter_counts():
    cfg = LivePortraitConfig()
    for name in NETWORK_NAMES:
        net = build_network(name, cfg, device="meta")
        sd = net.state_dict()
        for key, shape in CRITICAL_KEYS.get(name, {}).items():
            assert tuple(sd[key].shape) == shape, (name, key)
        assert sum(p.numel() for p in net.parameters()) == PARAMETER_COUNTS[name], name
    spade = build_network("spade_generator", cfg, device="meta").state_dict()
    assert not any(k in spade for k in ABSENT_KEYS)
    assert spade["fc.weight"].dtype == torch.float32
    motion = build_network("motion_extractor", cfg, device="meta").state_dict()
    assert not any("num_batches_tracked" in k for k in motion)  # ConvNeXt has no BatchNorm
    stitch = build_network("stitching_retargeting_module", cfg, device="meta").state_dict()
    ours = {"retarget_shoulder": "stitching", "retarget_mouth": "lip", "retarget_eye": "eye"}
    for section, keys in OFFICIAL_STITCHING_KEYS.items():
        for key, shape in keys.items():
            assert tuple(stitch[f"{ours[section]}.{key[len('module.') :]}"].shape) == shape


def test_official_key_listing_fixture():
    """Every key and shape of the official-size networks, pinned (regenerate only with a reason)."""
    expected = json.loads(DATA.read_text())
    cfg = LivePortraitConfig()
    for name in NETWORK_NAMES:
        sd = _file_layout(name, build_network(name, cfg, device="meta").state_dict())
        assert {k: list(v.shape) for k, v in sd.items()} == expected[name], name

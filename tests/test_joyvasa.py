"""JoyVASA as the infill prior: strict loading of the published formats, motion conversion, the sampler."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from _joyvasa_helpers import random_net, template_stats, write_joyvasa

from facedit.liveportrait.keypoints import rotation_matrix
from facedit.motion import pack_motion
from facedit.priors import SpeechAudio, find_joyvasa, load_joyvasa
from facedit.priors.joyvasa import MotionTemplate, from_joyvasa, read_template, to_joyvasa, window_starts
from facedit.priors.joyvasa.files import read_generator


@pytest.fixture(scope="module")
def joyvasa_dir(tmp_path_factory) -> Path:
    return write_joyvasa(tmp_path_factory.mktemp("joyvasa"), random_net(0))


@pytest.fixture(scope="module")
def prior(joyvasa_dir):
    return load_joyvasa(joyvasa_dir)


def real_motion(frames: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    exp = torch.randn(frames, 21, 3, generator=g) * 0.02
    angles = torch.randn(frames, 3, generator=g) * 10
    rot = rotation_matrix(angles[:, 0], angles[:, 1], angles[:, 2])
    t = torch.randn(frames, 3, generator=g) * 0.05
    return pack_motion(exp, rot, t).float()


def speech(seconds: float, seed: int = 1) -> SpeechAudio:
    g = torch.Generator().manual_seed(seed)
    return SpeechAudio(torch.randn(int(seconds * 16000), generator=g) * 0.1)


def test_published_files_load_strictly(joyvasa_dir, prior):
    files = find_joyvasa(joyvasa_dir)
    assert files.generator.name == "motion_generator_hubert_chinese.pt"
    args, state = read_generator(files.generator)
    assert args["data_root"] == "data" and args["audio_model"] == "hubert_zh"
    assert "audio_encoder.encoder.pos_conv_embed.conv.weight_g" in state
    assert prior.config.n_layers == 2 and prior.config.feature_dim == 32  # from the weights, not args.n_layers
    loaded = dict(prior.net.named_parameters())
    assert torch.equal(loaded["denoising_net.feature_proj.weight"], state["denoising_net.feature_proj.weight"])
    assert torch.equal(loaded["audio_encoder.encoder.layers.1.attention.q_proj.weight"],
                       state["audio_encoder.encoder.layers.1.attention.q_proj.weight"])  # fmt: skip


def test_hubert_weights_from_the_folder_when_the_checkpoint_has_none(tmp_path):
    net = random_net(3)
    write_joyvasa(tmp_path, net, hubert_in_checkpoint=False)
    prior = load_joyvasa(tmp_path)
    a = torch.randn(1, 64000)
    torch.testing.assert_close(prior.net.audio_features(a), net.audio_features(a))


def test_hubert_config_inferred_without_a_folder(tmp_path):
    net = random_net(4)
    write_joyvasa(tmp_path, net, with_hubert_folder=False)
    prior = load_joyvasa(tmp_path)
    a = torch.randn(1, 64000)
    torch.testing.assert_close(prior.net.audio_features(a), net.audio_features(a))


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_code_in_the_generator_is_refused(tmp_path, capsys):
    path = tmp_path / "motion_generator_hubert_chinese.pt"
    torch.save({"args": {}, "model": {}, "hook": _Evil()}, path)
    with pytest.raises(ValueError, match="refused.*print"):
        read_generator(path)
    assert "code ran" not in capsys.readouterr().out


def test_code_in_the_template_is_refused(tmp_path, capsys):
    path = tmp_path / "motion_template.pkl"
    with open(path, "wb") as f:
        pickle.dump({"mean_exp": _Evil()}, f)
    with pytest.raises(ValueError, match=r"motion_template\.pkl.*refuses builtins\.print"):
        read_template(path)
    assert "code ran" not in capsys.readouterr().out


def test_extra_or_missing_weights_are_errors(tmp_path):
    write_joyvasa(tmp_path, random_net(0))
    path = tmp_path / "JoyVASA/motion_generator/motion_generator_hubert_chinese.pt"
    data = torch.load(path, weights_only=False)
    data["model"]["denoising_net.extra.weight"] = torch.zeros(1)
    del data["model"]["null_audio_feat"]
    torch.save(data, path)
    with pytest.raises(ValueError, match=r"missing \['null_audio_feat'\].*denoising_net\.extra\.weight"):
        load_joyvasa(tmp_path)


def test_motion_round_trip():
    template = MotionTemplate.from_stats(template_stats())
    motion = real_motion(12).double()
    scale = torch.rand(12, dtype=torch.float64) + 0.5
    back, s = from_joyvasa(to_joyvasa(motion, template, scale).double(), template)
    torch.testing.assert_close(back.double(), motion, atol=2e-5, rtol=0)
    torch.testing.assert_close(s.double(), scale, atol=2e-5, rtol=0)


def test_template_normalisation_is_joyvasa_training_one():
    stats = template_stats()
    template = MotionTemplate.from_stats(stats)
    motion = real_motion(1)
    norm = to_joyvasa(motion, template, torch.tensor([1.3]))[0].double()
    exp = motion[0, :63].double().numpy()
    np.testing.assert_allclose(norm[:63].numpy(), (exp - stats["mean_exp"]) / (stats["std_exp"] + 1e-9), rtol=1e-5)
    expect_scale = (1.3 - stats["min_scale"][0]) / (stats["max_scale"][0] - stats["min_scale"][0] + 1e-9)
    assert abs(norm[63].item() - expect_scale) < 1e-5


def test_windows_cover_every_masked_frame_once_in_order():
    mask = np.zeros(400, bool)
    mask[30:50] = mask[60:65] = mask[150:390] = True
    starts = window_starts(mask, 100, 10)
    assert starts == sorted(starts)
    covered = np.zeros(400, bool)
    for s in starts:
        assert s == 0 or s >= 10
        covered[s : s + 100] = True
    assert covered[mask].all()
    assert starts[0] == 0 or starts[0] < 30 < starts[0] + 100


@pytest.mark.parametrize("steps", [6, 3])
def test_infill_keeps_known_frames_exactly_and_changes_masked_ones(prior, steps):
    motion = real_motion(160).numpy()
    mask = np.zeros(160, bool)
    mask[40:55] = mask[120:150] = True
    given = motion.copy()
    given[mask] = np.nan
    out = prior.infill(given, mask, speech(7.0), steps=steps, seed=3)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == motion.shape
    np.testing.assert_array_equal(out[~mask], motion[~mask])
    assert np.isfinite(out[mask]).all()
    assert not np.allclose(out[mask], motion[mask])
    rot = torch.from_numpy(out[mask][:, 63:72].astype(np.float64)).reshape(-1, 3, 3)
    torch.testing.assert_close(
        rot @ rot.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand_as(rot), atol=1e-5, rtol=0
    )
    again = prior.infill(given, mask, speech(7.0), steps=steps, seed=3)
    np.testing.assert_array_equal(out, again)


def test_infill_generation_from_one_prompt_frame(prior):
    motion = np.full((230, 75), np.nan, np.float32)
    motion[0] = real_motion(1).numpy()[0]
    mask = np.ones(230, bool)
    mask[0] = False
    out = prior.infill(torch.from_numpy(motion), torch.from_numpy(mask), speech(9.2), steps=3, guidance=1.8)
    assert isinstance(out, torch.Tensor)
    assert torch.equal(out[0], torch.from_numpy(motion[0]))
    assert torch.isfinite(out).all()


def test_infill_rejects_wavlm_features(prior):
    with pytest.raises(TypeError, match="SpeechAudio"):
        prior.infill(real_motion(20), torch.zeros(20, dtype=torch.bool), torch.zeros(50, 768))


def test_steps_beyond_the_trained_schedule_are_an_error(prior):
    mask = torch.zeros(20, dtype=torch.bool)
    mask[5] = True
    with pytest.raises(ValueError, match="at most 6"):
        prior.infill(real_motion(20), mask, speech(1.0), steps=7)

"""WavLM loading, audio conversion, feature timing and chunked encoding, on tiny random WavLMs."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from facedit.audio import audio_duration, normalize_wave, to_mono, unpack_audio
from facedit.speech import (
    PRESETS,
    WavLM,
    download_wavlm,
    frame_count,
    infer_config,
    load_wavlm,
    receptive_field,
    save_wavlm_safetensors,
)
from facedit.speech.wavlm import _clean_state_dict

ROOT = Path(__file__).resolve().parents[1]


def tiny_config(**overrides):
    from transformers import WavLMConfig

    kwargs = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        num_buckets=32,
    )
    kwargs.update(overrides)
    return WavLMConfig(**kwargs)


def tiny_model(seed=0, **overrides):
    from transformers import WavLMModel

    torch.manual_seed(seed)
    model = WavLMModel(tiny_config(**overrides)).eval()
    with torch.no_grad():  # random GroupNorm / LayerNorm affine so that a wrong norm shows
        for name, p in model.named_parameters():
            if "norm" in name and p.ndim == 1:
                p.add_(0.3 * torch.randn_like(p))
    return model


def make_local(model, window=3):
    """Give every attention layer a relative bias of -1e4 beyond ``window`` frames: attention becomes local."""
    attn = model.encoder.layers[0].attention
    half = attn.num_buckets // 2
    bucket_distance = torch.arange(attn.num_buckets) % half  # exact buckets: index = |distance| below half // 2
    with torch.no_grad():
        attn.rel_attn_embed.weight[:] = torch.where((bucket_distance <= window)[:, None], 0.0, -1e4)
    return model


def speechlike(seconds, rate=16000, seed=0, channels=1):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(round(seconds * rate))) / rate
    envelope = 0.5 + 0.5 * torch.sin(2 * torch.pi * 1.3 * t)
    voice = torch.sin(2 * torch.pi * 180 * t) + 0.5 * torch.sin(2 * torch.pi * 530 * t)
    chans = [(0.6 + 0.2 * c) * envelope * voice + 0.05 * torch.randn(t.shape, generator=g) for c in range(channels)]
    return torch.stack(chans)[None].float()  # (1, C, T)


def out(model, wave):
    with torch.no_grad():
        return model(wave).last_hidden_state[0]


# ---------------------------------------------------------------- timing


def test_receptive_field_of_wavlm_conv_stack():
    assert receptive_field(PRESETS["base-plus"]["conv_kernel"], PRESETS["base-plus"]["conv_stride"]) == (400, 320)
    assert receptive_field([3, 3], [2, 2]) == (7, 4)


@pytest.mark.parametrize("n,frames", [(48000, 149), (400, 1), (399, 0), (719, 1), (720, 2), (16000, 49), (0, 0)])
def test_frame_count(n, frames):
    assert frame_count(n) == frames


@pytest.mark.parametrize("sample", [0, 319, 399, 400, 12345])
def test_perturbing_one_sample_changes_exactly_the_frames_whose_field_holds_it(sample):
    model = tiny_model(feat_extract_norm="layer", do_stable_layer_norm=True)
    wave = speechlike(1.0)[0]
    bumped = wave.clone()
    bumped[0, sample] += 1.0
    with torch.no_grad():
        a = model.feature_extractor(wave)[0]
        b = model.feature_extractor(bumped)[0]
    changed = torch.nonzero((a - b).abs().amax(0) > 0).flatten().tolist()
    field, hop = receptive_field(model.config.conv_kernel, model.config.conv_stride)
    assert changed == [j for j in range(a.shape[1]) if j * hop <= sample < j * hop + field]
    w = WavLM(model, normalize=False)
    times = w.offset_s + np.array(changed) / w.frame_rate
    assert np.all(np.abs(times - sample / 16000) <= field / 2 / 16000)


def test_features_report_true_timing_for_three_seconds():
    w = WavLM(tiny_model(), normalize=False)
    feats = w.encode({"waveform": speechlike(3.0), "sample_rate": 16000})
    assert feats.features.shape == (149, 32) and feats.features.dtype == torch.float32
    assert feats.frame_rate == 50.0 and feats.offset_s == 0.0125 and feats.duration_s == 3.0
    assert feats.times()[0] == 0.0125 and feats.times()[-1] == pytest.approx(0.0125 + 148 / 50)


# ---------------------------------------------------------------- loading


def _save_folder(model, folder, normalize=None, weights="model.safetensors"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(model.config.to_json_string())
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if weights.endswith(".safetensors"):
        save_file(state, str(folder / weights))
    else:
        torch.save(state, str(folder / weights))
    if normalize is not None:
        (folder / "preprocessor_config.json").write_text(
            json.dumps({"do_normalize": normalize, "sampling_rate": 16000})
        )
    return folder


@pytest.mark.parametrize(
    "weights,normalize", [("model.safetensors", True), ("model.safetensors", None), ("pytorch_model.bin", False)]
)
def test_load_folder_gives_the_same_model(tmp_path, weights, normalize):
    model = tiny_model(seed=1)
    loaded = load_wavlm(_save_folder(model, tmp_path / "wavlm", normalize, weights))
    wave = speechlike(1.0)[0]
    torch.testing.assert_close(out(loaded.model, wave), out(model, wave), rtol=0, atol=0)
    assert loaded.normalize is bool(normalize)


def _legacy_weight_norm_names(state):
    renamed = {}
    for k, v in state.items():
        k = k.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        )
        renamed[k] = v
    return renamed


@pytest.mark.parametrize("layout", ["plain", "ctc_prefix", "legacy_weight_norm"])
@pytest.mark.parametrize("norm", ["group", "layer"])
def test_single_safetensors_file_is_read_from_its_shapes(tmp_path, layout, norm):
    model = tiny_model(seed=2, feat_extract_norm=norm, do_stable_layer_norm=norm == "layer", conv_bias=norm == "layer")
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if layout == "ctc_prefix":  # as saved from WavLMForCTC: everything under wavlm., plus a head
        state = {"wavlm." + k: v for k, v in state.items()}
        state["lm_head.weight"] = torch.randn(5, 32)
        state["lm_head.bias"] = torch.randn(5)
    elif layout == "legacy_weight_norm":
        state = _legacy_weight_norm_names(state)
    save_file(state, str(tmp_path / "w.safetensors"))  # no config in the metadata: shapes only
    loaded = load_wavlm(tmp_path / "w.safetensors")
    wave = speechlike(1.0)[0]
    torch.testing.assert_close(out(loaded.model, wave), out(model, wave), rtol=0, atol=0)
    assert loaded.model.config.do_stable_layer_norm is (norm == "layer")
    assert loaded.ignored_keys == (("lm_head.bias", "lm_head.weight") if layout == "ctc_prefix" else ())
    assert loaded.variant == "custom" and loaded.normalize is False


def test_single_file_with_config_metadata_and_normalize_flag(tmp_path):
    model = tiny_model(seed=3, max_bucket_distance=40)  # not inferable from shapes: must come from metadata
    save_wavlm_safetensors(model, tmp_path / "w.safetensors", normalize=True)
    loaded = load_wavlm(tmp_path / "w.safetensors")
    assert loaded.model.config.max_bucket_distance == 40 and loaded.normalize is True
    wave = speechlike(2.0)[0]
    torch.testing.assert_close(out(loaded.model, wave), out(model, wave), rtol=0, atol=0)
    assert load_wavlm(tmp_path / "w.safetensors", normalize=False).normalize is False


@pytest.mark.parametrize("name", ["base-plus", "large"])
def test_released_sizes_are_recognised_from_their_shapes(name):
    from transformers import WavLMConfig, WavLMModel

    with torch.device("meta"):
        model = WavLMModel(WavLMConfig(**PRESETS[name]))
    state, _ = _clean_state_dict(_legacy_weight_norm_names(model.state_dict()), "test")
    config, variant = infer_config(state)
    assert variant == name
    assert {k: config[k] for k in PRESETS[name]} == PRESETS[name]


def test_loading_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="WavLM not found"):
        load_wavlm(tmp_path / "missing.safetensors")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_wavlm(tmp_path / "empty")
    save_file({"encoder.layers.0.self_attn.k_proj.weight": torch.zeros(2, 2)}, str(tmp_path / "fairseq.safetensors"))
    with pytest.raises(ValueError, match="unilm"):
        load_wavlm(tmp_path / "fairseq.safetensors")
    save_file({"something.else": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="no WavLM weights"):
        load_wavlm(tmp_path / "other.safetensors")
    model = tiny_model()
    folder = _save_folder(model, tmp_path / "mismatch")
    (folder / "config.json").write_text(tiny_config(intermediate_size=48).to_json_string())
    with pytest.raises(ValueError, match=r"intermediate_dense\.\w+ has shape"):
        load_wavlm(folder)
    odd = tiny_model(conv_kernel=(10, 3, 3, 3, 3, 3, 3))
    save_file({k: v.contiguous() for k, v in odd.state_dict().items()}, str(tmp_path / "odd.safetensors"))
    with pytest.raises(ValueError, match="strides cannot be inferred"):
        load_wavlm(tmp_path / "odd.safetensors")


def test_download_offline_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConnectionError, match="microsoft/wavlm-base-plus.*offline"):
        download_wavlm(tmp_path / "wavlm")
    with pytest.raises(ConnectionError, match="copy config.json"):
        load_wavlm(tmp_path / "wavlm2", download=True)


def test_import_loads_nothing_heavy():
    code = "import facedit.speech, facedit.audio, sys; assert 'transformers' not in sys.modules, 'transformers loaded'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# ---------------------------------------------------------------- audio input


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_stereo_at_any_rate_becomes_mono_16k(rate):
    seconds = 1.5
    t = np.arange(int(seconds * rate)) / rate
    left, right = 0.8 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 440 * t)
    wave = torch.from_numpy(np.stack([left, right])[None]).float()
    mono = to_mono({"waveform": wave, "sample_rate": rate})
    assert mono.sample_rate == 16000 and mono.duration_s == pytest.approx(seconds)
    assert audio_duration({"waveform": wave, "sample_rate": rate}) == mono.duration_s == len(t) / rate
    assert mono.samples.shape == (round(len(t) * 16000 / rate),) and mono.samples.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(mono.samples))
    assert np.fft.rfftfreq(len(mono.samples), 1 / 16000)[spectrum.argmax()] == pytest.approx(440, abs=1)
    middle = mono.samples[2000:-2000]
    assert np.sqrt(2 * np.mean(middle**2)) == pytest.approx(0.5, rel=0.01)  # mean of the channels' amplitudes


def tonal(seconds, rate, gains):
    """A band-limited (< 3 kHz) voice-like sound, one channel per gain: the same sound at every sample rate."""
    t = torch.arange(int(round(seconds * rate)), dtype=torch.float64) / rate
    envelope = 0.5 + 0.5 * torch.sin(2 * torch.pi * 1.3 * t)
    voice = sum(torch.sin(2 * torch.pi * f * t) / k for k, f in enumerate((180, 360, 540, 1100, 2300), 1))
    return torch.stack([g * envelope * voice for g in gains])[None].float()


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_features_agree_across_input_rates(rate):
    w = WavLM(tiny_model(), normalize=False)
    native = w.encode({"waveform": tonal(3.0, 16000, [0.7]), "sample_rate": 16000})
    other = w.encode({"waveform": tonal(3.0, rate, [0.6, 0.8]), "sample_rate": rate})
    assert other.features.shape == native.features.shape == (149, 32)
    cos = torch.nn.functional.cosine_similarity(other.features, native.features)
    assert cos.min() > 0.99  # same sound: resampling and the channel mix change almost nothing
    assert (other.features - native.features).abs().max() < 0.1


def test_plain_arrays_and_int_samples():
    wave = speechlike(1.0)[0, 0].numpy()
    wave = 0.9 * wave / np.abs(wave).max()
    a = to_mono(wave, 16000)
    b = to_mono(torch.from_numpy(wave)[None], 16000)
    c = to_mono((wave * 32767).astype(np.int16), 16000)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_allclose(c.samples, a.samples, atol=1e-4)


@pytest.mark.parametrize(
    "audio,rate,index,message",
    [
        ({"waveform": torch.zeros(2, 1, 1000), "sample_rate": 16000}, None, None, "batch_index"),
        ({"waveform": torch.zeros(1, 1000), "sample_rate": 16000}, None, None, r"\[batch, channels, samples\]"),
        ({"wave": torch.zeros(1, 1, 10)}, None, None, "'waveform' and 'sample_rate'"),
        (np.zeros((1000, 2)), 16000, None, r"\[samples, channels\]"),
        (np.zeros(1000), None, None, "needs its sample_rate"),
        (np.zeros(1000), -5, None, "positive integer"),
        (np.array([0.0, np.nan, 0.0]), 16000, None, "NaN"),
        (np.zeros(0), 16000, None, "no samples"),
        ({"waveform": torch.zeros(2, 1, 1000), "sample_rate": 16000}, None, 3, "outside the batch"),
    ],
)
def test_bad_audio_is_refused(audio, rate, index, message):
    with pytest.raises(ValueError, match=message):
        unpack_audio(audio, rate, index)


def test_too_short_audio_is_refused():
    with pytest.raises(ValueError, match="shorter than WavLM's receptive field"):
        WavLM(tiny_model(), normalize=False).encode(np.zeros(399), 16000)


def _spy_inputs(model):
    seen = []
    forward = model.forward

    def spy(input_values, **kwargs):
        seen.append(input_values.detach().clone())
        return forward(input_values, **kwargs)

    model.forward = spy
    return seen


@pytest.mark.parametrize("normalize", [True, False])
def test_waveform_normalisation_follows_the_model(normalize):
    model = tiny_model()
    seen = _spy_inputs(model)
    wave = 3.0 * speechlike(2.0) + 0.1
    WavLM(model, normalize=normalize).encode({"waveform": wave, "sample_rate": 16000})
    (given,) = seen
    if normalize:
        assert abs(given.mean().item()) < 1e-5 and given.std().item() == pytest.approx(1.0, abs=1e-3)
        np.testing.assert_allclose(given[0].numpy(), normalize_wave(wave[0, 0].numpy()), atol=1e-6)
    else:
        torch.testing.assert_close(given[0], wave[0, 0], rtol=0, atol=0)


# ---------------------------------------------------------------- layers, dtype


def test_layer_choice():
    model = tiny_model(seed=4)
    w = WavLM(model, normalize=False)
    wave = speechlike(1.0)
    with torch.no_grad():
        states = model(wave[0], output_hidden_states=True).hidden_states
    enc = lambda layer: w.encode(wave[0], 16000, layer=layer).features  # noqa: E731
    torch.testing.assert_close(enc(0), states[0][0])
    torch.testing.assert_close(enc(1), states[1][0])
    torch.testing.assert_close(enc("last"), out(model, wave[0]))
    torch.testing.assert_close(enc(2), enc("last"))
    torch.testing.assert_close(enc(-1), enc("last"))
    torch.testing.assert_close(enc((0, 1)), (states[0][0] + states[1][0]) / 2)
    assert (enc(0) - enc("last")).abs().max() > 0.1
    for bad in (3, -4, "first", (1, 0), (0, 1, 2), 1.5):
        with pytest.raises(ValueError, match="layer"):
            enc(bad)


@pytest.mark.parametrize("dtype,tol", [(torch.bfloat16, 0.15), (torch.float16, 0.05)])
def test_half_precision(dtype, tol, tmp_path):
    model = tiny_model(seed=5)
    save_wavlm_safetensors(model, tmp_path / "w.safetensors")
    half = load_wavlm(tmp_path / "w.safetensors", dtype=dtype)
    assert half.dtype == dtype
    wave = speechlike(2.0)
    ref = WavLM(model, normalize=False).encode(wave[0], 16000).features
    got = half.encode(wave[0], 16000).features
    assert got.dtype == torch.float32
    assert (got - ref).abs().max() < tol and (got - ref).abs().max() > 0  # really ran in half precision


# ---------------------------------------------------------------- chunked encoding


@pytest.mark.parametrize(
    "norm,chunk_s,context_s,crossfade_s",
    [("group", 4.0, 1.0, 0.5), ("group", 3.0, 1.0, 0.0), ("layer", 2.5, 0.8, 0.4), ("layer", 3.0, 0.8, 0.02)],
)
def test_chunked_equals_whole_when_attention_is_local(norm, chunk_s, context_s, crossfade_s):
    # Local attention (3 frames per layer, 2 layers) + positional conv (8 frames): 0.8 s of context covers the
    # whole dependency range, so chunking must be exact up to float rounding (atol 1e-4). A window misplaced by
    # one frame, a wrong GroupNorm statistic or a weight that does not sum to 1 would break this by far more.
    model = make_local(tiny_model(seed=6, feat_extract_norm=norm, do_stable_layer_norm=norm == "layer"))
    w = WavLM(model, normalize=False)
    wave = speechlike(11.37)
    calls = []
    whole = w.encode(wave[0], 16000, chunk_s=60.0)
    chunked = w.encode(
        wave[0],
        16000,
        chunk_s=chunk_s,
        context_s=context_s,
        crossfade_s=crossfade_s,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert chunked.features.shape == whole.features.shape == (w.num_frames(wave.shape[-1]), 32)
    assert (chunked.frame_rate, chunked.offset_s, chunked.duration_s) == (
        whole.frame_rate,
        whole.offset_s,
        whole.duration_s,
    )
    torch.testing.assert_close(chunked.features, whole.features, atol=1e-4, rtol=0)
    assert len(calls) > 3 and calls[-1][0] == calls[-1][1] == len(calls)


def test_chunked_close_to_whole_for_global_attention():
    # A random model attends over the whole clip; windows see only 1 s of context on each side. Stated
    # tolerance for this tiny model: max abs difference 0.03, mean 0.005, features of size about 0.8.
    w = WavLM(tiny_model(seed=7), normalize=False)
    wave = speechlike(20.0)
    whole = w.encode(wave[0], 16000, chunk_s=60.0).features
    chunked = w.encode(wave[0], 16000, chunk_s=6.0, context_s=1.0, crossfade_s=0.5).features
    diff = (chunked - whole).abs()
    assert whole.abs().mean() > 0.5
    assert diff.max() < 0.03 and diff.mean() < 0.005


def test_chunked_windows_are_bounded_and_on_the_frame_grid():
    model = tiny_model(seed=8)
    w = WavLM(model, normalize=False)
    seen = _spy_inputs(model)
    w.encode(speechlike(30.0)[0], 16000, chunk_s=5.0, context_s=1.0, crossfade_s=0.5)
    lengths = [x.shape[-1] for x in seen]
    assert len(lengths) >= 8
    assert max(lengths) <= 5.0 * 16000
    assert all((n - 400) % 320 == 0 for n in lengths)


def test_encoding_only_some_ranges_runs_only_their_windows_and_matches_the_full_encoding():
    model = tiny_model(seed=9)
    w = WavLM(model, normalize=False)
    wave = speechlike(40.0)[0]
    settings = dict(chunk_s=5.0, context_s=1.0, crossfade_s=0.5)
    whole = w.encode(wave, 16000, **settings)
    seen = _spy_inputs(model)
    part = w.encode(wave, 16000, only=[(12.0, 15.0), (33.0, 33.5)], **settings)
    assert part.features.shape == whole.features.shape
    assert 2 <= len(seen) <= 6  # of about 12 windows
    times = whole.times()
    wanted = ((times >= 12.0) & (times <= 15.0)) | ((times >= 33.0) & (times <= 33.5))
    assert torch.equal(part.features[torch.from_numpy(wanted)], whole.features[torch.from_numpy(wanted)])
    finite = torch.isfinite(part.features).all(1).numpy()
    assert not finite[times < 8.0].any() and not finite[(times > 20.0) & (times < 30.0)].any()
    assert np.array_equal(part.features[torch.from_numpy(finite)], whole.features[torch.from_numpy(finite)])
    with pytest.raises(ValueError, match="only"):
        w.encode(wave, 16000, only=[(5.0, 2.0)], **settings)


def test_chunk_settings_are_checked():
    w = WavLM(tiny_model(), normalize=False)
    with pytest.raises(ValueError, match="chunk_s"):
        w.encode(speechlike(3.0)[0], 16000, chunk_s=2.0, context_s=1.0, crossfade_s=0.5)
    with pytest.raises(ValueError, match="negative"):
        w.encode(speechlike(3.0)[0], 16000, context_s=-1.0)


def test_features_of_real_speech_at_22050_hz():
    from _speech_helpers import espeak_available, speak

    if not espeak_available():
        pytest.skip("libespeak-ng not installed (Debian: apt-get install espeak-ng)")
    wave, rate, words = speak("Speech features come fifty times a second.")
    feats = WavLM(tiny_model(), normalize=True).encode(wave, rate)
    n16 = round(len(wave) * 16000 / rate)
    assert rate == 22050 and feats.num_frames == (n16 - 400) // 320 + 1
    assert feats.duration_s == len(wave) / rate and feats.times()[-1] < feats.duration_s


def test_folder_of_a_released_size_is_named():
    from facedit.speech.wavlm import _variant_of

    assert _variant_of(tiny_config()) == "custom"
    from transformers import WavLMConfig

    assert _variant_of(WavLMConfig(**PRESETS["large"])) == "large"
    assert _variant_of(WavLMConfig(**PRESETS["base-plus"])) == "base-plus"


def test_features_can_feed_training():
    w = WavLM(tiny_model(), normalize=False)
    feats = w.encode(speechlike(1.0)[0], 16000).features
    layer = torch.nn.Linear(32, 4)
    layer(feats).sum().backward()  # not an inference-mode tensor
    assert layer.weight.grad is not None


def test_a_facedit_checkpoint_is_not_taken_for_a_wavlm(tmp_path):
    from facedit.checkpoint import save_facedit
    from facedit.config import FacEDiTConfig
    from facedit.model import FacEDiT
    from facedit.speech import load_wavlm

    path = save_facedit(tmp_path / "facedit.safetensors", FacEDiT(FacEDiTConfig.tiny()))
    with pytest.raises(ValueError, match="not a WavLM checkpoint"):
        load_wavlm(path)

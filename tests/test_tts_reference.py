"""Our F5-TTS / Vocos equal the official implementations on random weights (skips without them; see
tests/_tts_reference.py for how to run)."""

from __future__ import annotations

import pytest
import torch
from _tts_helpers import VOCAB, write_vocos
from _tts_reference import official_f5, official_vocos
from safetensors.torch import save_file

from facedit.tts import LogMel, infill_mel, load_f5tts, load_vocos

ARCH = dict(dim=64, depth=2, heads=1, ff_mult=2, text_dim=16, conv_layers=1, text_mask_padding=True)


def _official_cfm(ref, seed: int = 0):
    torch.manual_seed(seed)
    dit = ref.dit.DiT(**ARCH, text_num_embeds=len(VOCAB), mel_dim=100)
    with torch.no_grad():
        for p in dit.parameters():
            p.copy_(torch.randn_like(p) * 0.05)
    vocab = {t: i for i, t in enumerate(VOCAB)}
    return ref.cfm.CFM(transformer=dit, mel_spec_kwargs=dict(mel_spec_type="vocos"), vocab_char_map=vocab).eval()


def _write_like_ema(cfm, folder):
    """The EMA model's state dict as the published safetensors holds it: ema_model.<CFM key>."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {f"ema_model.{k}": v.contiguous() for k, v in cfm.state_dict().items()}
    state["initted"], state["step"] = torch.tensor([True]), torch.tensor([7])
    save_file(state, str(folder / "model.safetensors"))
    (folder / "vocab.txt").write_text("".join(t + "\n" for t in VOCAB), encoding="utf-8")
    return load_f5tts(folder / "model.safetensors", folder / "vocab.txt")


def test_mel_front_end_equals_f5tts_and_vocos():
    ref = official_f5()
    wave = torch.randn(2, 24000 + 123) * 0.3
    ours = LogMel()(wave)
    theirs = ref.modules.MelSpec(mel_spec_type="vocos")(wave)
    assert ours.shape == theirs.shape == (2, 100, 1 + wave.shape[1] // 256)
    torch.testing.assert_close(ours, theirs, atol=2e-4, rtol=1e-4)


def test_dit_velocity_equals_official(tmp_path):
    ref = official_f5()
    cfm = _official_cfm(ref)
    ours = _write_like_ema(cfm, tmp_path / "f5")
    assert ours.model.config.dim == 64 and ours.model.config.depth == 2
    g = torch.Generator().manual_seed(1)
    x, cond = torch.randn(1, 90, 100, generator=g), torch.randn(1, 90, 100, generator=g)
    text = ours.vocab.encode("Hello there, world!")
    t = torch.tensor(0.37)
    for drop in (False, True):
        theirs = cfm.transformer(x, cond, text, t, drop_audio_cond=drop, drop_text=drop, cache=False)
        mine = ours.model(x, torch.zeros_like(cond) if drop else cond, ours.model.embed_text(text, 90, drop), t)
        torch.testing.assert_close(mine, theirs, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("guidance", [0.0, 2.0])
def test_speech_edit_sampler_equals_official(tmp_path, guidance):
    ref = official_f5()
    cfm = _official_cfm(ref, seed=2)
    ours = _write_like_ema(cfm, tmp_path / "f5")
    g = torch.Generator().manual_seed(3)
    mel = torch.randn(1, 80, 100, generator=g)
    keep = torch.ones(1, 80, dtype=torch.bool)
    keep[:, 30:52] = False
    text = "Some call me optimist."
    with torch.no_grad():
        theirs, _ = cfm.sample(
            cond=mel,
            text=[list(text)],
            duration=80,
            steps=8,
            cfg_strength=guidance,
            sway_sampling_coef=-1.0,
            seed=11,
            edit_mask=keep,
        )
    # F5-TTS always generates one frame more than the conditioning (duration >= cond length + 1).
    cond = torch.cat((mel, torch.zeros(1, 1, 100)), dim=1)
    known = torch.cat((keep, torch.zeros(1, 1, dtype=torch.bool)), dim=1)
    mine = infill_mel(ours.model, cond, known, ours.vocab.encode(text), steps=8, guidance=guidance, sway=-1.0, seed=11)
    assert mine.shape == theirs.shape == (1, 81, 100)
    assert torch.equal(mine[known], theirs[known])
    torch.testing.assert_close(mine, theirs, atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("padding", ["center", "same"])
def test_vocos_equals_official(tmp_path, padding):
    pretrained = official_vocos()
    folder = write_vocos(tmp_path / "vocos")
    if padding == "same":
        text = (folder / "config.yaml").read_text().replace("padding: center", "padding: same")
        (folder / "config.yaml").write_text(text)
    theirs_model = pretrained.Vocos.from_hparams(str(folder / "config.yaml"))
    theirs_model.load_state_dict(torch.load(folder / "pytorch_model.bin", weights_only=True))
    theirs_model.eval()
    ours = load_vocos(folder)
    mel = torch.randn(2, 100, 40) * 2 - 4
    wave = torch.randn(1, 24000) * 0.2
    with torch.no_grad():
        torch.testing.assert_close(ours(mel), theirs_model.decode(mel), atol=1e-4, rtol=1e-4)
        if padding == "center":  # the mel F5-TTS is trained on is the centred one
            torch.testing.assert_close(
                LogMel(ours.config.mel)(wave), theirs_model.feature_extractor(wave), atol=2e-4, rtol=1e-4
            )

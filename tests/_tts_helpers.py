"""Tiny random-weight F5-TTS and Vocos files in the published layouts, for the speech-edit tests."""

from __future__ import annotations

import string
from pathlib import Path

import torch
from safetensors.torch import save_file

from facedit.tts import F5Config, F5DiT, Vocos, VocosConfig, mel_filterbank
from facedit.tts.mel import MelConfig

TINY_F5 = dict(dim=64, depth=2, heads=1, dim_head=64, ff_mult=2, text_dim=16, conv_layers=1, mel_dim=100)
TINY_VOCOS = VocosConfig(dim=32, intermediate_dim=48, num_layers=2)
VOCAB = [" ", *string.ascii_lowercase, *string.ascii_uppercase, *",.'!?-"]

VOCOS_YAML = """feature_extractor:
  class_path: vocos.feature_extractors.MelSpectrogramFeatures
  init_args:
    sample_rate: 24000
    n_fft: 1024
    hop_length: 256
    n_mels: 100
    padding: center

backbone:
  class_path: vocos.models.VocosBackbone
  init_args:
    input_channels: 100
    dim: {dim}
    intermediate_dim: {hidden}
    num_layers: {layers}

head:
  class_path: vocos.heads.ISTFTHead
  init_args:
    dim: {dim}
    n_fft: 1024
    hop_length: 256
    padding: center
"""


def _randomise(module: torch.nn.Module, seed: int, scale: float) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)


def write_f5(folder: Path, seed: int = 0, scale: float = 0.05) -> tuple[Path, Path]:
    """model_1250000.safetensors (ema_model.transformer.* + EMA bookkeeping) and vocab.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    model = F5DiT(F5Config(**TINY_F5, text_num_embeds=len(VOCAB)))
    _randomise(model, seed, scale)
    state = {f"ema_model.transformer.{k}": v.contiguous() for k, v in model.state_dict().items()}
    state["initted"] = torch.tensor([True])
    state["step"] = torch.tensor([1250000])
    ckpt = folder / "model_1250000.safetensors"
    save_file(state, str(ckpt))
    vocab = folder / "vocab.txt"
    vocab.write_text("".join(t + "\n" for t in VOCAB), encoding="utf-8")
    return ckpt, vocab


def write_vocos(folder: Path, seed: int = 1, scale: float = 0.05) -> Path:
    """config.yaml + pytorch_model.bin (torch.save of the state dict, torchaudio buffers included)."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = TINY_VOCOS
    model = Vocos(cfg)
    _randomise(model, seed, scale)
    state = dict(model.state_dict())
    state["feature_extractor.mel_spec.spectrogram.window"] = torch.hann_window(1024)
    state["feature_extractor.mel_spec.mel_scale.fb"] = mel_filterbank(MelConfig())
    state["head.istft.window"] = torch.hann_window(1024)
    torch.save(state, folder / "pytorch_model.bin")
    (folder / "config.yaml").write_text(
        VOCOS_YAML.format(dim=cfg.dim, hidden=cfg.intermediate_dim, layers=cfg.num_layers), encoding="utf-8"
    )
    return folder

"""Loading the published F5-TTS and Vocos files strictly.

F5-TTS: ``model_1250000.safetensors`` (keys ``ema_model.transformer.*``; the EMA bookkeeping ``initted`` /
``step`` and old mel buffers are skipped) + ``vocab.txt`` (one token a line, line i is id i, space first).
Vocos: ``pytorch_model.bin`` (torch.load with weights_only) + ``config.yaml`` (the class paths and init_args
the vocos package writes). Every other missing or unexpected key is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..weight_files import named_load_errors, read_state_dict
from .f5_dit import F5Config, F5DiT
from .mel import MelConfig
from .vocab import Vocab, load_vocab
from .vocos import Vocos, VocosConfig

F5_PREFIX = "ema_model."
_F5_SKIPPED = {"initted", "step", "ema_model.initted", "ema_model.step"}
_F5_OLD_MEL_BUFFERS = ("mel_spec.mel_stft.mel_scale.fb", "mel_spec.mel_stft.spectrogram.window")
_VOCOS_BUFFERS = (
    "feature_extractor.mel_spec.spectrogram.window",
    "feature_extractor.mel_spec.mel_scale.fb",
    "head.istft.window",
)


class WeightError(ValueError):
    """A weight file that is not the model it should be; the message names the file and the keys."""


@dataclass(eq=False)
class F5TTS:
    """The DiT, its vocabulary and the mel front end it was trained with."""

    model: F5DiT
    vocab: Vocab
    mel: MelConfig
    source: str


def _strict(
    module: torch.nn.Module, state: dict[str, torch.Tensor], source: str, optional: tuple[str, ...] = ()
) -> None:
    """Load every key exactly; ``optional`` buffers may be absent (they keep their computed values)."""
    own = module.state_dict()
    state = {**{k: own[k] for k in optional if k not in state}, **state}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise WeightError(f"{source}: missing keys {missing[:8]}, unexpected keys {unexpected[:8]}")
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            want = tuple(own[key].shape)
            raise WeightError(f"{source}: {key} has shape {tuple(value.shape)}, the model wants {want}")
    module.load_state_dict(state, strict=True)


def f5_state_dict(raw: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """The ``transformer.*`` weights of a published F5-TTS checkpoint, prefix stripped."""
    state = {}
    for key, value in raw.items():
        if key in _F5_SKIPPED:
            continue
        name = key[len(F5_PREFIX) :] if key.startswith(F5_PREFIX) else key
        if name in _F5_OLD_MEL_BUFFERS:
            continue
        if not name.startswith("transformer."):
            raise WeightError(f"{source}: unexpected key {key!r} (an F5-TTS checkpoint holds ema_model.transformer.*)")
        state[name[len("transformer.") :]] = value
    if not state:
        raise WeightError(f"{source}: no F5-TTS weights (ema_model.transformer.*) in this file")
    return state


def infer_f5_config(state: dict[str, torch.Tensor], source: str, dim_head: int = 64) -> F5Config:
    """Sizes from the weight shapes; the head width is F5-TTS's fixed 64 (heads = width / 64)."""
    try:
        dim = state["time_embed.time_mlp.0.weight"].shape[0]
        num_embeds, text_dim = state["text_embed.text_embed.weight"].shape
        mel_dim = state["proj_out.weight"].shape[0]
        ff_hidden = state["transformer_blocks.0.ff.ff.0.0.weight"].shape[0]
        inner = state["transformer_blocks.0.attn.to_q.weight"].shape[0]
    except KeyError as err:
        raise WeightError(f"{source}: not an F5-TTS DiT checkpoint (no {err.args[0]})") from err
    depth = len({k.split(".")[1] for k in state if k.startswith("transformer_blocks.")})
    conv_layers = len({k.split(".")[2] for k in state if k.startswith("text_embed.text_blocks.")})
    return F5Config(
        dim=dim,
        depth=depth,
        heads=inner // dim_head,
        dim_head=dim_head,
        ff_mult=ff_hidden // dim,
        text_dim=text_dim,
        conv_layers=conv_layers,
        mel_dim=mel_dim,
        text_num_embeds=num_embeds - 1,
        qk_norm="transformer_blocks.0.attn.q_norm.weight" in state,
        long_skip="long_skip_connection.weight" in state,
    )


def load_f5tts(
    checkpoint: str | Path,
    vocab: str | Path,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> F5TTS:
    """F5-TTS from its safetensors checkpoint (or a .pt with ``ema_model_state_dict``) and its vocab.txt."""
    checkpoint, vocab = Path(checkpoint), Path(vocab)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"F5-TTS checkpoint not found: {checkpoint}")
    data = read_state_dict(checkpoint, "an F5-TTS checkpoint (model_*.safetensors or a training .pt)")
    if checkpoint.suffix == ".safetensors":
        raw = data
    else:
        if "ema_model_state_dict" not in data:
            raise WeightError(f"{checkpoint}: expected a dict with 'ema_model_state_dict' (an F5-TTS training .pt)")
        raw = data["ema_model_state_dict"]
    state = f5_state_dict(raw, str(checkpoint))
    config = infer_f5_config(state, str(checkpoint))
    vocabulary = load_vocab(vocab)
    if len(vocabulary) != config.text_num_embeds:
        raise WeightError(
            f"{vocab}: {len(vocabulary)} tokens, but {checkpoint.name} embeds {config.text_num_embeds}: "
            "use the vocab.txt published with this checkpoint"
        )
    model = F5DiT(config)
    _strict(model, state, str(checkpoint), optional=("rotary_embed.inv_freq",))
    model = model.to(device=device, dtype=dtype).eval()
    return F5TTS(model, vocabulary, MelConfig(n_mels=config.mel_dim), str(checkpoint))


def _init_args(config: dict[str, Any], part: str, want: str, source: str) -> dict[str, Any]:
    entry = config.get(part)
    if not isinstance(entry, dict) or "class_path" not in entry:
        raise WeightError(f"{source}: '{part}' with a class_path is missing")
    if not str(entry["class_path"]).endswith(want):
        raise WeightError(f"{source}: {part} is {entry['class_path']}, only {want} (the mel Vocos) is supported")
    return dict(entry.get("init_args") or {})


def vocos_config(path: str | Path) -> VocosConfig:
    """VocosConfig from the vocos package's ``config.yaml``."""
    try:
        import yaml
    except ImportError as err:
        raise ImportError("reading Vocos's config.yaml needs PyYAML: pip install pyyaml") from err
    path = Path(path)
    with named_load_errors(path, "Vocos's config.yaml (YAML with feature_extractor, backbone and head)"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise WeightError(f"{path}: expected a mapping with feature_extractor, backbone and head")
    feat = _init_args(data, "feature_extractor", "MelSpectrogramFeatures", str(path))
    back = _init_args(data, "backbone", "VocosBackbone", str(path))
    head = _init_args(data, "head", "ISTFTHead", str(path))
    if back.get("adanorm_num_embeddings"):
        raise WeightError(f"{path}: a backbone with adanorm_num_embeddings is the EnCodec Vocos, not the mel one")
    mel = MelConfig(
        sample_rate=int(feat.get("sample_rate", 24000)),
        n_fft=int(feat.get("n_fft", 1024)),
        hop_length=int(feat.get("hop_length", 256)),
        win_length=int(feat.get("n_fft", 1024)),
        n_mels=int(feat.get("n_mels", 100)),
    )
    return VocosConfig(
        input_channels=int(back["input_channels"]),
        dim=int(back["dim"]),
        intermediate_dim=int(back["intermediate_dim"]),
        num_layers=int(back["num_layers"]),
        n_fft=int(head.get("n_fft", 1024)),
        hop_length=int(head.get("hop_length", 256)),
        padding=str(head.get("padding", "same")),
        layer_scale=back.get("layer_scale_init_value"),
        mel=mel,
    )


def load_vocos(
    folder: str | Path | None = None,
    *,
    config: str | Path | None = None,
    weights: str | Path | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Vocos:
    """Vocos from a folder holding ``config.yaml`` + ``pytorch_model.bin`` (or the two paths given)."""
    if folder is not None:
        folder = Path(folder)
        config = config or folder / "config.yaml"
        weights = weights or folder / "pytorch_model.bin"
    if config is None or weights is None:
        raise ValueError("load_vocos: give a folder, or both config and weights")
    config, weights = Path(config), Path(weights)
    for p in (config, weights):
        if not p.is_file():
            raise FileNotFoundError(f"Vocos file not found: {p}")
    cfg = vocos_config(config)
    state = read_state_dict(weights, "the Vocos state dict (charactr/vocos-mel-24khz pytorch_model.bin)")
    state = {k: v for k, v in state.items() if k not in _VOCOS_BUFFERS}
    vocoder = Vocos(cfg)
    _strict(vocoder, state, str(weights))
    return vocoder.to(device=device, dtype=dtype).eval()

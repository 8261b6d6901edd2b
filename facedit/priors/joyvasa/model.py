"""The JoyVASA prior: its network, its motion template, and where its files are found."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...audio import SPEECH_SAMPLE_RATE, audio_duration, to_mono
from ...weight_files import named_load_errors, read_json_object, read_state_dict
from .files import read_generator, read_template
from .motion import MotionTemplate
from .network import JoyVASAConfig, JoyVASANet

log = logging.getLogger("facedit")

GENERATOR_NAME = "motion_generator_hubert_chinese.pt"
TEMPLATE_NAME = "motion_template.pkl"
HUBERT_AUDIO_MODELS = ("hubert", "hubert_zh", "hubert_zh_ori")
_RECOMPUTED = re.compile(r"^(denoising_net\.(TE\.pe|PE\.pe|alignment_mask)|diffusion_sched\..*)$")
"""Buffers in the published file that are fixed functions of the config; they are rebuilt, not read."""


@dataclass(frozen=True)
class SpeechAudio:
    """Mono 16 kHz speech for a prior that encodes audio itself; sample 0 stands at ``offset_s`` seconds."""

    samples: torch.Tensor
    sample_rate: int = SPEECH_SAMPLE_RATE
    offset_s: float = 0.0

    def __post_init__(self) -> None:
        if self.samples.ndim != 1 or not self.samples.is_floating_point():
            raise ValueError(f"speech samples must be a 1-D float tensor, got {tuple(self.samples.shape)}")
        if self.sample_rate != SPEECH_SAMPLE_RATE:
            raise ValueError(f"speech must be at {SPEECH_SAMPLE_RATE} Hz, got {self.sample_rate}")

    @property
    def duration_s(self) -> float:
        return self.samples.shape[0] / self.sample_rate


@dataclass(frozen=True)
class JoyVASAFiles:
    generator: Path
    template: Path
    hubert: Path | None
    """A Hugging Face HuBERT folder (config.json); needed only for its config, or its weights when the generator
    lacks ``audio_encoder.*``."""


def _hubert_folder(path: Path) -> int:
    """2: ``path`` holds a HuBERT config.json; 1: a damaged config.json that it or the folder's name says is
    HuBERT's (found, so that loading names the damage instead of reporting no HuBERT folder); 0: neither."""
    cfg = path / "config.json"
    if not cfg.is_file():
        return 0
    try:
        text = cfg.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        named = "hubert" in path.name.lower() or re.search(r'"model_type"\s*:\s*"hubert"', text) is not None
        return 1 if named else 0
    return 2 if isinstance(data, dict) and data.get("model_type") == "hubert" else 0


def find_joyvasa(root: str | Path) -> JoyVASAFiles | None:
    """The JoyVASA files under ``root`` (a folder such as models/joyvasa, or a git clone of jdh-algo/JoyVASA).

    The generator is ``motion_generator_hubert_chinese.pt`` (else the one ``.pt`` under a ``motion_generator``
    folder), the template ``motion_template.pkl``; the HuBERT folder is any sub-folder whose config.json says
    ``model_type: hubert`` (TencentGameMate/chinese-hubert-base); a folder whose config.json is damaged counts
    when its name (or the text) says hubert, so that loading reports the damage, not a missing folder.
    """
    root = Path(root)
    if not root.is_dir():
        return None
    gens = sorted(root.rglob(GENERATOR_NAME)) or sorted(root.rglob("motion_generator/*.pt"))
    temps = sorted(root.rglob(TEMPLATE_NAME)) or sorted(root.rglob("motion_template/*.pkl"))
    if not gens or not temps:
        return None
    kinds = {p: _hubert_folder(p) for p in [root, *sorted(d for d in root.rglob("*") if d.is_dir())]}
    hubert = max(kinds, key=kinds.__getitem__)  # a good folder first, else a damaged one (named when loading)
    return JoyVASAFiles(gens[0], temps[0], hubert if kinds[hubert] else None)


_HUBERT_FOLDER = "a HuBERT folder (config.json with model_type hubert, model.safetensors or pytorch_model.bin)"


def _hubert_config(files: JoyVASAFiles, state: dict[str, torch.Tensor]) -> Any:
    from transformers import HubertConfig

    if files.hubert is not None:
        read_json_object(files.hubert / "config.json", f"the config of {_HUBERT_FOLDER}")  # line and column
        with named_load_errors(files.hubert / "config.json", _HUBERT_FOLDER):
            return HubertConfig.from_pretrained(str(files.hubert))
    prefix = "audio_encoder."
    if not any(k.startswith(prefix) for k in state):
        raise FileNotFoundError(
            f"{files.generator} holds no HuBERT weights and no HuBERT folder (config.json with model_type hubert) "
            f"is beside it: put TencentGameMate/chinese-hubert-base into {files.generator.parent.parent}"
        )
    return _infer_hubert_config({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})


def _infer_hubert_config(sd: dict[str, torch.Tensor]) -> Any:
    """HuBERT-base style config from the weights' shapes (heads: hidden / 64, as in every released HuBERT)."""
    from transformers import HubertConfig

    convs = sorted(
        int(m.group(1)) for k in sd if (m := re.match(r"feature_extractor\.conv_layers\.(\d+)\.conv\.weight", k))
    )
    layers = {int(m.group(1)) for k in sd if (m := re.match(r"encoder\.layers\.(\d+)\.", k))}
    hidden = sd["feature_projection.projection.weight"].shape[0]
    pos = sd.get(
        "encoder.pos_conv_embed.conv.parametrizations.weight.original1", sd.get("encoder.pos_conv_embed.conv.weight_v")
    )
    if pos is None:
        raise ValueError("the generator's HuBERT weights lack encoder.pos_conv_embed.conv")
    group_norm = "feature_extractor.conv_layers.1.layer_norm.weight" not in sd
    return HubertConfig(
        hidden_size=hidden, num_hidden_layers=len(layers), num_attention_heads=max(1, hidden // 64),
        intermediate_size=sd["encoder.layers.0.feed_forward.intermediate_dense.weight"].shape[0],
        conv_dim=tuple(sd[f"feature_extractor.conv_layers.{i}.conv.weight"].shape[0] for i in convs),
        conv_kernel=tuple(sd[f"feature_extractor.conv_layers.{i}.conv.weight"].shape[2] for i in convs),
        conv_stride=(5,) + (2,) * (len(convs) - 1), feat_extract_norm="group" if group_norm else "layer",
        num_conv_pos_embeddings=pos.shape[2], num_conv_pos_embedding_groups=hidden // pos.shape[1],
        do_stable_layer_norm=False, conv_bias="feature_extractor.conv_layers.0.conv.bias" in sd,
    )  # fmt: skip


def _rename_weight_norm(key: str) -> str:
    return key.replace(".weight_g", ".parametrizations.weight.original0").replace(
        ".weight_v", ".parametrizations.weight.original1"
    )


def _hubert_weights(folder: Path) -> dict[str, torch.Tensor]:
    st, binf = folder / "model.safetensors", folder / "pytorch_model.bin"
    if st.is_file() or binf.is_file():
        sd = read_state_dict(st if st.is_file() else binf, f"the weights of {_HUBERT_FOLDER}")
    else:
        raise FileNotFoundError(f"{folder}: no model.safetensors or pytorch_model.bin for HuBERT")
    return {k.removeprefix("hubert."): v for k, v in sd.items()}


def config_from_args(args: dict[str, Any], state: dict[str, torch.Tensor], where: Path) -> JoyVASAConfig:
    """The network's sizes as JoyVASA's own loader builds it: n_heads 8, layers as many as the weights hold."""
    audio_model = args.get("audio_model", "hubert_zh")
    if audio_model not in HUBERT_AUDIO_MODELS:
        raise ValueError(f"{where}: audio_model {audio_model!r} is not supported (HuBERT generators only)")
    need = ("audio_feature_map.weight", "start_motion_feat", "denoising_net.transformer.layers.0.linear1.weight")
    missing = [k for k in need if k not in state]
    if missing:
        raise ValueError(f"{where}: not a JoyVASA motion generator, its state dict lacks {missing}")
    layers = {int(m.group(1)) for k in state if (m := re.match(r"denoising_net\.transformer\.layers\.(\d+)\.", k))}
    feature_dim, audio_dim = state["audio_feature_map.weight"].shape
    _, prev, motion_dim = state["start_motion_feat"].shape
    return JoyVASAConfig(
        motion_feat_dim=int(motion_dim), n_motions=int(args.get("n_motions", 100)), n_prev_motions=int(prev),
        feature_dim=int(feature_dim), n_heads=8, n_layers=len(layers),
        mlp_ratio=int(state["denoising_net.transformer.layers.0.linear1.weight"].shape[0] // feature_dim),
        n_diff_steps=int(args.get("n_diff_steps", 50)), fps=float(args.get("fps", 25)), audio_dim=int(audio_dim),
    )  # fmt: skip


class JoyVASA(nn.Module):
    """JoyVASA as an infill prior: ``infill`` has the signature of ``facedit.flow.infill`` (minus the model)."""

    kind = "joyvasa"

    def __init__(self, net: JoyVASANet, template: MotionTemplate, source: str = "") -> None:
        super().__init__()
        self.net = net
        self.template = template
        self.source = source

    @property
    def config(self) -> JoyVASAConfig:
        return self.net.cfg

    @property
    def device(self) -> torch.device:
        return self.net.device

    @property
    def dtype(self) -> torch.dtype:
        return self.net.audio_feature_map.weight.dtype

    def speech_input(self, audio: Any, sample_rate: int | None = None) -> SpeechAudio:
        """A ComfyUI AUDIO dict (or array + rate), any rate and channels -> mono 16 kHz, not normalised (as JoyVASA)."""
        audio_duration(audio, sample_rate)
        mono = to_mono(audio, sample_rate, SPEECH_SAMPLE_RATE)
        return SpeechAudio(torch.from_numpy(np.ascontiguousarray(mono.samples)))

    def infill(self, motion: Any, infill_mask: Any, speech: Any, **kwargs: Any) -> Any:
        from .sampler import infill

        return infill(self, motion, infill_mask, speech, **kwargs)


def load_joyvasa(
    path: str | Path,
    *,
    hubert: str | Path | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> JoyVASA:
    """Load JoyVASA from a folder (see :func:`find_joyvasa`) strictly: every weight must be used, none missing.

    The generator checkpoint carries its own fine-tuned HuBERT (``audio_encoder.*``); the HuBERT folder gives its
    config, and its weights only if the checkpoint has none.
    """
    path = Path(path)
    files = find_joyvasa(path)
    if files is None:
        raise FileNotFoundError(
            f"no JoyVASA files in {path}: expected motion_generator/{GENERATOR_NAME} and "
            f"motion_template/{TEMPLATE_NAME} (huggingface.co/jdh-algo/JoyVASA)"
        )
    if hubert is not None:
        files = JoyVASAFiles(files.generator, files.template, Path(hubert))
    args, state = read_generator(files.generator)
    template = MotionTemplate.from_stats(read_template(files.template))
    cfg = config_from_args(args, state, files.generator)
    if cfg.motion_feat_dim != 70:
        raise ValueError(
            f"{files.generator}: motion_feat_dim {cfg.motion_feat_dim}, expected 70 (exp, scale, t, angles)"
        )
    from transformers import HubertModel

    hubert_cfg = _hubert_config(files, state)
    hubert_cfg.apply_spec_augment = False
    net = JoyVASANet(cfg, HubertModel(hubert_cfg))
    state = {_rename_weight_norm(k): v for k, v in state.items() if not _RECOMPUTED.match(k)}
    if not any(k.startswith("audio_encoder.") for k in state):
        if files.hubert is None:
            raise FileNotFoundError(f"{files.generator} holds no HuBERT weights and no HuBERT folder was found")
        state.update({f"audio_encoder.{_rename_weight_norm(k)}": v for k, v in _hubert_weights(files.hubert).items()})
    expected = net.state_dict()
    unknown = sorted(set(state) - set(expected))
    missing = sorted(set(expected) - set(state))
    if unknown or missing:
        raise ValueError(
            f"{files.generator}: does not match the JoyVASA network ({cfg}): missing {missing[:8]}"
            f"{'...' if len(missing) > 8 else ''}, unexpected {unknown[:8]}{'...' if len(unknown) > 8 else ''}"
        )
    bad = [k for k, v in state.items() if tuple(v.shape) != tuple(expected[k].shape)]
    if bad:
        raise ValueError(f"{files.generator}: shapes differ for {bad[:8]}")
    net.load_state_dict(state, strict=True)
    net.requires_grad_(False)
    return JoyVASA(net, template, str(files.generator)).to(device=device, dtype=dtype).eval()

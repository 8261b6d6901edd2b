"""Tiny random JoyVASA files in the published formats: the generator as JoyVASA's train.py saves it, the template
as its 04_gen_template.py pickles it, and a HuBERT folder as transformers writes it."""

from __future__ import annotations

import argparse
import pathlib
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from facedit.priors.joyvasa.network import JoyVASAConfig, JoyVASANet, sinusoid_table

TINY = JoyVASAConfig(feature_dim=32, n_heads=8, n_layers=2, n_diff_steps=6, audio_dim=128)


def tiny_hubert_config():
    from transformers import HubertConfig

    # heads = hidden / 64, as in every released HuBERT (the loader infers it so when there is no config.json)
    return HubertConfig(
        hidden_size=TINY.audio_dim, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
    )  # fmt: skip


def random_net(seed: int = 0, cfg: JoyVASAConfig = TINY) -> JoyVASANet:
    from transformers import HubertModel

    torch.manual_seed(seed)
    net = JoyVASANet(cfg, HubertModel(tiny_hubert_config()))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * (0.2 if p.ndim > 1 else 0.5))
    return net.eval()


def official_state_dict(net: JoyVASANet, old_weight_norm: bool = True) -> OrderedDict:
    """The module's weights plus the buffers JoyVASA's DitTalkingHead also saves, with its names."""
    cfg = net.cfg
    sd = OrderedDict()
    for k, v in net.state_dict().items():
        if old_weight_norm:
            k = k.replace(".parametrizations.weight.original0", ".weight_g").replace(
                ".parametrizations.weight.original1", ".weight_v"
            )
        sd[k] = v.clone()
    length = cfg.n_prev_motions + cfg.n_motions
    sd["denoising_net.TE.pe"] = sinusoid_table(cfg.n_diff_steps + 1, cfg.feature_dim)
    sd["denoising_net.PE.pe"] = sinusoid_table(600, cfg.feature_dim)
    sd["denoising_net.alignment_mask"] = ~torch.eye(length, dtype=torch.bool)
    sched = net.diffusion_sched
    for name in ("betas", "alphas", "alpha_bars"):
        sd[f"diffusion_sched.{name}"] = getattr(sched, name).clone()
    sd["diffusion_sched.sigmas_flex"] = sched.betas.sqrt()
    sd["diffusion_sched.sigmas_inflex"] = torch.zeros(cfg.n_diff_steps + 1)
    return sd


def official_args(cfg: JoyVASAConfig = TINY) -> argparse.Namespace:
    return argparse.Namespace(
        mode="train", exp_name="tiny", data_root=pathlib.PosixPath("data/"), audio_model="hubert_zh",
        motion_feat_dim=cfg.motion_feat_dim, n_motions=cfg.n_motions, n_prev_motions=cfg.n_prev_motions,
        feature_dim=cfg.feature_dim, n_diff_steps=cfg.n_diff_steps, fps=int(cfg.fps), pad_mode="zero",
        use_indicator=True, n_layers=6, n_heads=8, target="sample", diff_schedule="cosine", lr=1e-4,
    )  # fmt: skip


def template_stats(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = {"scale": 1, "R": 9, "t": 3, "exp": 63, "pitch": 1, "yaw": 1, "roll": 1, "lip": 1, "eyes": 2}
    out = {}
    for name, n in sizes.items():
        lo = rng.normal(-1, 0.1, n).astype(np.float32)
        hi = (lo + rng.uniform(0.5, 2, n)).astype(np.float32)
        if name in ("pitch", "yaw", "roll"):
            lo, hi = np.full(n, -40, np.float32), np.full(n, 35, np.float32)
        out[f"mean_{name}"] = ((lo + hi) / 2).astype(np.float32)
        out[f"std_{name}"] = ((hi - lo) / 4).astype(np.float32)
        out[f"max_{name}"], out[f"min_{name}"] = hi, lo
        out[f"abs_max_{name}"] = np.maximum(abs(lo), abs(hi))
    return out


def write_joyvasa(root: Path, net: JoyVASANet | None = None, *, with_hubert_folder: bool = True,
                  hubert_in_checkpoint: bool = True) -> Path:  # fmt: skip
    """A models/joyvasa-style folder: JoyVASA/motion_generator/*.pt, JoyVASA/motion_template/*.pkl, HuBERT."""
    net = net or random_net()
    sd = official_state_dict(net)
    if not hubert_in_checkpoint:
        sd = OrderedDict((k, v) for k, v in sd.items() if not k.startswith("audio_encoder."))
    gen = root / "JoyVASA" / "motion_generator" / "motion_generator_hubert_chinese.pt"
    gen.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"args": official_args(net.cfg), "model": sd, "iter": 20000}, gen)
    tpl = root / "JoyVASA" / "motion_template" / "motion_template.pkl"
    tpl.parent.mkdir(parents=True, exist_ok=True)
    with open(tpl, "wb") as f:
        pickle.dump(template_stats(), f)
    if with_hubert_folder:
        net.audio_encoder.save_pretrained(str(root / "chinese-hubert-base"))
    return root

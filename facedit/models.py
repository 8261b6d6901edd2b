"""The three models an edit needs, found in a models folder, or random-initialised for the demo.

Layout (also ComfyUI's ``models/``): ``liveportrait/`` (the official ``.pth`` set or its ``.safetensors``
conversion), ``wavlm/`` (a Hugging Face folder such as ``wavlm-base-plus/`` or one ``.safetensors`` file),
``facedit/`` (one ``.safetensors`` checkpoint written by ``facedit/train.py``), or, when there is none,
``joyvasa/`` (JoyVASA's published generator and template with the chinese-hubert-base folder), a public
generation model used as the infill prior; it encodes the speech itself, so WavLM is then not needed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .checkpoint import load_facedit
from .config import FacEDiTConfig
from .liveportrait import LivePortrait, LivePortraitConfig, load_liveportrait
from .model import FacEDiT
from .priors import JoyVASA, find_joyvasa, load_joyvasa
from .speech import WavLM, load_wavlm
from .speech.wavlm import DEFAULT_REPO as WAVLM_REPO

log = logging.getLogger("facedit")


@dataclass
class Models:
    liveportrait: LivePortrait
    wavlm: WavLM | None
    """None when the motion model is a prior with its own speech encoder."""
    facedit: FacEDiT | JoyVASA
    """The infill model: FacEDiT, or the JoyVASA prior where no FacEDiT checkpoint is present."""
    random: tuple[str, ...] = field(default=())
    """Names of the models that are random-initialised stand-ins (demo without weights)."""


def _first(folder: Path, patterns: tuple[str, ...]) -> Path | None:
    for pattern in patterns:
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
    return None


def find_wavlm(models_dir: Path) -> Path | None:
    root = models_dir / "wavlm"
    if not root.is_dir():
        return None
    if (root / "config.json").exists():
        return root
    folder = next((p.parent for p in sorted(root.glob("*/config.json"))), None)
    return folder or _first(root, ("*.safetensors",))


def find_facedit(models_dir: Path) -> Path | None:
    root = models_dir / "facedit"
    return _first(root, ("*.safetensors",)) if root.is_dir() else None


def find_liveportrait(models_dir: Path) -> Path | None:
    """The folder to load LivePortrait from: ``models_dir/liveportrait`` when the weight search of
    :func:`~facedit.liveportrait.weights.find_weight_files` (the one the ComfyUI loader uses) finds the warping
    module below it -- flat, official ``base_models/`` + ``retargeting_models/``, or the official download's
    ``liveportrait/base_models/`` -- else the first sub-folder where it does."""
    from .liveportrait.weights import find_weight_files

    root = models_dir / "liveportrait"
    if not root.is_dir():
        return None
    if "warping_module" in find_weight_files(root):
        return root
    subs = [sub for sub in sorted(root.iterdir()) if sub.is_dir()]
    return next((sub for sub in subs if "warping_module" in find_weight_files(sub)), None)


def has_liveportrait(models_dir: Path) -> bool:
    return find_liveportrait(models_dir) is not None


def liveportrait_folder(models_dir: Path) -> Path:
    folder = find_liveportrait(models_dir)
    if folder is None:
        from .liveportrait.weights import REQUIRED, missing_files_message

        raise FileNotFoundError(missing_files_message(models_dir / "liveportrait", list(REQUIRED)))
    return folder


def random_wavlm(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> WavLM:
    """A small random WavLM with the real conv front end (so timing is exact) and 768-d output."""
    from transformers import WavLMConfig, WavLMModel

    config = WavLMConfig(
        hidden_size=768, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
        conv_dim=(64,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
        num_buckets=32, max_bucket_distance=200,
    )  # fmt: skip
    return WavLM(WavLMModel(config).to(device=device, dtype=dtype).eval(), normalize=False, variant="random")


def load_models(
    models_dir: str | Path,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    allow_random: bool = False,
    seed: int = 0,
    liveportrait_precision: str | torch.dtype | None = None,
) -> Models:
    """Load every model from ``models_dir``; with ``allow_random`` stand in random ones for missing weights.

    ``liveportrait_precision`` (default: ``dtype``) may also be 'fast' (see ``facedit/liveportrait/fast.py``).
    Random stand-ins make every stage run (the demo, tests) but produce meaningless faces; ``Models.random``
    names them so callers can say so plainly.
    """
    models_dir = Path(models_dir)
    random: list[str] = []
    torch.manual_seed(seed)
    lp_precision = dtype if liveportrait_precision is None else liveportrait_precision
    if has_liveportrait(models_dir):
        lp = load_liveportrait(liveportrait_folder(models_dir), device=device, dtype=lp_precision)
    elif allow_random:
        lp = LivePortrait.random(LivePortraitConfig.tiny(), device=device, dtype=lp_precision)
        random.append("liveportrait")
    else:
        liveportrait_folder(models_dir)
    facedit_path = find_facedit(models_dir)
    use_joyvasa = facedit_path is None and find_joyvasa(models_dir / "joyvasa") is not None
    wavlm_path = find_wavlm(models_dir)
    if use_joyvasa:
        wavlm = None
    elif wavlm_path is not None:
        wavlm = load_wavlm(wavlm_path, device=device, dtype=dtype)
    elif allow_random:
        wavlm = random_wavlm(device, dtype)
        random.append("wavlm")
    else:
        raise FileNotFoundError(
            f"no WavLM model in {models_dir / 'wavlm'}: expected a Hugging Face WavLM folder there (config.json + "
            f"model.safetensors or pytorch_model.bin) or one .safetensors file; download {WAVLM_REPO} into "
            f"{models_dir / 'wavlm' / WAVLM_REPO.split('/')[-1]} (load_wavlm(..., download=True) or the WavLM "
            "Loader node's download switch does it when online)"
        )
    if facedit_path is not None:
        model = load_facedit(facedit_path, device=device, dtype=dtype)
    elif use_joyvasa:
        model = load_joyvasa(models_dir / "joyvasa", device=device, dtype=dtype)
        log.warning("no FacEDiT checkpoint in %s: infilling with the JoyVASA prior (%s)", models_dir, model.source)
    elif allow_random:
        model = FacEDiT(FacEDiTConfig.tiny()).to(device=device, dtype=dtype).eval()
        random.append("facedit")
    else:
        raise FileNotFoundError(
            f"no FacEDiT checkpoint (.safetensors written by python -m facedit.train) in {models_dir / 'facedit'} "
            f"and no JoyVASA prior (JoyVASA/motion_generator/*.pt, JoyVASA/motion_template/*.pkl and "
            f"chinese-hubert-base/, from huggingface.co/jdh-algo/JoyVASA) in {models_dir / 'joyvasa'}; neither is "
            "downloaded by facedit: train FacEDiT (python -m facedit.train), or download JoyVASA's files there"
        )
    if random:
        log.warning("random-initialised stand-ins for: %s (no weights found in %s)", ", ".join(random), models_dir)
    return Models(lp, wavlm, model, tuple(random))

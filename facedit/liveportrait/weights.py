"""Finding, reading and strictly loading LivePortrait weight files, and the opt-in download.

Two layouts are understood, file by file:
- the official release (``KwaiVGI/LivePortrait``): ``liveportrait/base_models/<stem>.pth`` and
  ``liveportrait/retargeting_models/stitching_retargeting_module.pth``. The base files are plain state_dicts.
  The stitching file is a dict of sub-dicts ``retarget_shoulder`` / ``retarget_mouth`` / ``retarget_eye`` whose
  keys carry a ``module.`` prefix; anything else it holds is ignored.
- the safetensors conversion (``Kijai/LivePortrait_safetensors``, what ComfyUI users keep in
  ``models/liveportrait``): ``<stem>.safetensors`` with the same keys (spectral norm as ``weight_orig`` /
  ``weight_u`` / ``weight_v``, BatchNorm with ``num_batches_tracked``); the stitching keys are flattened to
  ``retarget_shoulder_module.mlp.0.weight`` and so on.

``.pth`` files are read with ``torch.load(weights_only=True)`` only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from ..weight_files import read_state_dict
from .config import LivePortraitConfig
from .networks import NETWORK_NAMES, build_network
from .stitching import StitchingRetargeting

log = logging.getLogger("facedit.liveportrait")

OFFICIAL_REPO = "KwaiVGI/LivePortrait"
SAFETENSORS_REPO = "Kijai/LivePortrait_safetensors"
OFFICIAL_FILES = {
    "appearance_feature_extractor": "liveportrait/base_models/appearance_feature_extractor.pth",
    "motion_extractor": "liveportrait/base_models/motion_extractor.pth",
    "warping_module": "liveportrait/base_models/warping_module.pth",
    "spade_generator": "liveportrait/base_models/spade_generator.pth",
    "stitching_retargeting_module": "liveportrait/retargeting_models/stitching_retargeting_module.pth",
}
SAFETENSORS_FILES = {name: f"{name}.safetensors" for name in NETWORK_NAMES}
REQUIRED = NETWORK_NAMES[:4]
STITCHING = NETWORK_NAMES[4]

# Where a file may sit below the folder the user gives (the folder itself, the official tree, or a parent of it).
SEARCH_DIRS = (
    ".",
    "base_models",
    "retargeting_models",
    "liveportrait",
    "liveportrait/base_models",
    "liveportrait/retargeting_models",
    "human",
    "liveportrait/human",
)
SUFFIXES = (".safetensors", ".pth")


def find_weight_files(folder: str | Path) -> dict[str, Path]:
    """Network name -> file, for the networks found in ``folder`` (safetensors preferred where both exist)."""
    root = Path(folder)
    found: dict[str, Path] = {}
    for name in NETWORK_NAMES:
        for sub in SEARCH_DIRS:
            for suffix in SUFFIXES:
                path = root / sub / f"{name}{suffix}"
                if path.is_file():
                    found[name] = path
                    break
            if name in found:
                break
    return found


def read_tensor_file(path: str | Path) -> dict:
    """The raw content of a ``.safetensors`` or ``.pth`` file, with a clear error for unreadable files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LivePortrait weight file not found: {path}")
    return dict(read_state_dict(path, "a LivePortrait state_dict"))


def _strip(prefix: str, sd: Mapping) -> dict:
    return {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in sd.items()}


def stitching_state_dict(raw: Mapping, path: Path) -> dict[str, torch.Tensor]:
    """Either stitching layout -> keys of :class:`StitchingRetargeting` (``stitching.mlp.0.weight``, ...)."""
    out: dict[str, torch.Tensor] = {}
    for ours, section in StitchingRetargeting.SECTIONS.items():
        if isinstance(raw.get(section), Mapping):
            sub = _strip("module.", raw[section])
        else:
            flat_prefix = f"{section}_module."
            sub = {k[len(flat_prefix) :]: v for k, v in raw.items() if isinstance(k, str) and k.startswith(flat_prefix)}
        if not sub:
            raise ValueError(
                f"{path}: no '{section}' section (expected a sub-dict '{section}' as in the official .pth, "
                f"or keys '{section}_module.*' as in the safetensors conversion)"
            )
        out.update({f"{ours}.{k}": v for k, v in sub.items()})
    return out


def check_state_dict(module: nn.Module, sd: Mapping, path: Path, name: str) -> None:
    """Raise a ValueError naming the file and every missing, unexpected or mis-shaped key."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    bad_type = sorted(k for k, v in sd.items() if not isinstance(v, torch.Tensor))
    wrong = sorted(
        f"{k}: file {tuple(sd[k].shape)} vs network {tuple(expected[k].shape)}"
        for k in set(sd) & set(expected)
        if isinstance(sd[k], torch.Tensor) and tuple(sd[k].shape) != tuple(expected[k].shape)
    )
    if not (missing or unexpected or wrong or bad_type):
        return

    def listing(title: str, keys: list[str]) -> str:
        shown = ", ".join(keys[:12]) + (f", ... ({len(keys)} in all)" if len(keys) > 12 else "")
        return f"\n  {title} ({len(keys)}): {shown}"

    msg = f"{path}: does not match the {name} network"
    if missing:
        msg += listing("missing keys", missing)
    if unexpected:
        msg += listing("unexpected keys", unexpected)
    if wrong:
        msg += listing("shape mismatches", wrong)
    if bad_type:
        msg += listing("entries that are not tensors", bad_type)
    msg += "\n  (only the official network sizes load the published files)"
    raise ValueError(msg)


def load_network(
    name: str,
    path: str | Path,
    cfg: LivePortraitConfig,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> nn.Module:
    """Build one network on the meta device, check the file strictly, then materialise it from the file."""
    path = Path(path)
    raw = read_tensor_file(path)
    sd = stitching_state_dict(raw, path) if name == STITCHING else raw
    module = build_network(name, cfg, device="meta")
    check_state_dict(module, sd, path, name)
    module.load_state_dict(sd, strict=True, assign=True)
    module.to(device=device, dtype=dtype)
    return module.eval().requires_grad_(False)


def download_liveportrait(
    folder: str | Path, source: str = "safetensors", *, include_stitching: bool = True
) -> dict[str, Path]:
    """Download the human-model files into ``folder`` through huggingface_hub (opt-in; needs a network).

    source: 'official' (``KwaiVGI/LivePortrait``, .pth) or 'safetensors' (``Kijai/LivePortrait_safetensors``).
    """
    if source not in ("official", "safetensors"):
        raise ValueError(f"download must be 'official' or 'safetensors', got {source!r}")
    repo, files = (OFFICIAL_REPO, OFFICIAL_FILES) if source == "official" else (SAFETENSORS_REPO, SAFETENSORS_FILES)
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as e:
        raise ImportError("downloading LivePortrait weights needs the 'huggingface_hub' package") from e
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = NETWORK_NAMES if include_stitching else REQUIRED
    out = {}
    for name in names:
        try:
            out[name] = Path(hf_hub_download(repo_id=repo, filename=files[name], local_dir=str(folder)))
        except Exception as e:  # offline mode, no route, HTTP errors: all mean the same thing to the user
            wanted = "\n  ".join(f"{files[n]}" for n in names)
            raise ConnectionError(
                f"could not download {files[name]} from https://huggingface.co/{repo} "
                f"({type(e).__name__}: {e}).\nThis machine may be offline (or HF_HUB_OFFLINE is set). "
                f"Download these files elsewhere and put them under {folder}:\n  {wanted}"
            ) from e
    return out


def missing_files_message(folder: Path, missing: list[str]) -> str:
    return (
        f"LivePortrait weights missing in {folder}: {', '.join(missing)}.\n"
        f"Expected either the safetensors set ({', '.join(SAFETENSORS_FILES[n] for n in missing)}, from "
        f"https://huggingface.co/{SAFETENSORS_REPO}) in that folder, or the official files "
        f"({', '.join(OFFICIAL_FILES[n] for n in missing)}, from https://huggingface.co/{OFFICIAL_REPO}) below it. "
        "Pass download='safetensors' or download='official' to fetch them when online."
    )


def load_networks(
    folder: str | Path,
    cfg: LivePortraitConfig,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    download: str | None = None,
    require_stitching: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, nn.Module | None]:
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"LivePortrait weights folder is a file, expected a folder: {folder}")
    files = find_weight_files(folder) if folder.is_dir() else {}
    wanted = list(NETWORK_NAMES if (require_stitching or download) else REQUIRED)
    missing = [n for n in wanted if n not in files]
    if missing and download is not None:
        download_liveportrait(folder, download, include_stitching=True)
        files = find_weight_files(folder)
        missing = [n for n in wanted if n not in files]
    if missing:
        raise FileNotFoundError(missing_files_message(folder, missing))
    if STITCHING not in files:
        log.warning("no %s file in %s: rendering without stitching only", STITCHING, folder)
    names = [n for n in NETWORK_NAMES if n in files]
    nets: dict[str, nn.Module | None] = {STITCHING: None}
    for i, name in enumerate(names):
        nets[name] = load_network(name, files[name], cfg, device=device, dtype=dtype)
        log.info("loaded %s from %s", name, files[name])
        if progress is not None:
            progress(i + 1, len(names))
    return nets

"""Test-only: the OFFICIAL F5-TTS and Vocos modules, imported at test time from checkouts outside this repository.

Nothing of their code is in this repository. Point the tests at the checkouts and run them with a Python that
has the official code's own dependencies (torchaudio, x-transformers, torchdiffeq, rjieba, pypinyin, einops,
encodec) beside this torch:

    git --git-dir=$(fetch github:SWivid/F5-TTS) archive HEAD src | tar -x -C /tmp/f5src
    git --git-dir=$(fetch github:gemelo-ai/vocos) archive HEAD vocos | tar -x -C /tmp/vocossrc
    FACEDIT_F5TTS_SRC=/tmp/f5src/src FACEDIT_VOCOS_SRC=/tmp/vocossrc python -m pytest tests/test_tts_reference.py

Without the two variables (or the dependencies) the tests skip.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from pathlib import Path

import pytest


def _source(var: str, marker: str) -> Path:
    root = os.environ.get(var)
    if not root:
        pytest.skip(f"{var} is not set (see tests/_tts_reference.py)")
    path = Path(root)
    if not (path / marker).exists():
        pytest.skip(f"{var}={root} has no {marker}")
    return path


def _bare_package(name: str, folder: Path) -> None:
    """Register a package without running its __init__ (F5-TTS's pulls in its trainer: wandb, datasets...)."""
    if name not in sys.modules:
        module = types.ModuleType(name)
        module.__path__ = [str(folder)]
        sys.modules[name] = module


def official_f5() -> types.SimpleNamespace:
    """f5_tts.model.{modules, utils, cfm, backbones.dit} from FACEDIT_F5TTS_SRC."""
    root = _source("FACEDIT_F5TTS_SRC", "f5_tts/model/backbones/dit.py")
    for dep in ("torchaudio", "x_transformers", "torchdiffeq", "rjieba", "pypinyin", "librosa"):
        pytest.importorskip(dep)
    _bare_package("f5_tts", root / "f5_tts")
    _bare_package("f5_tts.model", root / "f5_tts/model")
    _bare_package("f5_tts.model.backbones", root / "f5_tts/model/backbones")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return types.SimpleNamespace(
        modules=importlib.import_module("f5_tts.model.modules"),
        utils=importlib.import_module("f5_tts.model.utils"),
        cfm=importlib.import_module("f5_tts.model.cfm"),
        dit=importlib.import_module("f5_tts.model.backbones.dit"),
    )


def official_vocos() -> types.ModuleType:
    """vocos.pretrained from FACEDIT_VOCOS_SRC."""
    root = _source("FACEDIT_VOCOS_SRC", "vocos/pretrained.py")
    for dep in ("torchaudio", "encodec", "einops", "yaml"):
        pytest.importorskip(dep)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module("vocos.pretrained")

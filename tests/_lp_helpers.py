"""Test helpers for the LivePortrait area: weight files written in the two published layouts, fake detectors.

The writers here encode the file layouts from what the published files hold, independently of
``facedit.liveportrait.weights``, so that the loader is tested against the layouts and not against itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from facedit.liveportrait import LivePortrait, LivePortraitConfig
from facedit.liveportrait.detect import FaceDetection


@pytest.fixture
def one_thread():
    """Single-threaded torch for these tests: on a shared, oversubscribed machine two OpenMP threads spin against
    each other and small convolutions run 10-20x slower than on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


BASE = ("appearance_feature_extractor", "motion_extractor", "warping_module", "spade_generator")
SECTIONS = {"stitching": "retarget_shoulder", "lip": "retarget_mouth", "eye": "retarget_eye"}


def tiny_model(seed: int = 0, dtype=torch.float32, stitching: bool = True) -> LivePortrait:
    torch.manual_seed(seed)
    return LivePortrait.random(LivePortraitConfig.tiny(), dtype=dtype, stitching=stitching)


def _network_state_dicts(lp: LivePortrait) -> dict[str, dict[str, torch.Tensor]]:
    return {
        "appearance_feature_extractor": lp.appearance_feature_extractor.state_dict(),
        "motion_extractor": lp.motion_extractor.state_dict(),
        "warping_module": lp.warping_module.state_dict(),
        "spade_generator": lp.spade_generator.state_dict(),
    }


def _stitching_sections(lp: LivePortrait) -> dict[str, dict[str, torch.Tensor]]:
    return {SECTIONS[name]: getattr(lp.stitching, name).state_dict() for name in SECTIONS}


def write_official(lp: LivePortrait, root: Path, *, stitching: bool = True) -> Path:
    """The official tree: liveportrait/base_models/*.pth and liveportrait/retargeting_models/*.pth.

    The stitching file is a dict of three sub-dicts with 'module.'-prefixed keys, plus extra content (the
    published file holds more than the three MLPs).
    """
    base = root / "liveportrait" / "base_models"
    base.mkdir(parents=True, exist_ok=True)
    for name, sd in _network_state_dicts(lp).items():
        torch.save({k: v.clone() for k, v in sd.items()}, base / f"{name}.pth")
    if stitching:
        content: dict = {
            section: {f"module.{k}": v.clone() for k, v in sd.items()}
            for section, sd in _stitching_sections(lp).items()
        }
        content["retarget_extra"] = {"module.mlp.0.weight": torch.randn(64, 64)}
        content["epoch"] = 7
        retarget = root / "liveportrait" / "retargeting_models"
        retarget.mkdir(parents=True, exist_ok=True)
        torch.save(content, retarget / "stitching_retargeting_module.pth")
    return root


def write_safetensors(lp: LivePortrait, root: Path, *, stitching: bool = True) -> Path:
    """The ComfyUI set: <stem>.safetensors in one folder; stitching keys flattened as retarget_*_module.*"""
    root.mkdir(parents=True, exist_ok=True)
    for name, sd in _network_state_dicts(lp).items():
        save_file({k: v.contiguous() for k, v in sd.items()}, str(root / f"{name}.safetensors"), {"format": "pt"})
    if stitching:
        flat = {
            f"{section}_module.{k}": v.contiguous()
            for section, sd in _stitching_sections(lp).items()
            for k, v in sd.items()
        }
        save_file(flat, str(root / "stitching_retargeting_module.safetensors"), {"format": "pt"})
    return root


def assert_same_weights(a: LivePortrait, b: LivePortrait) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert set(sa) == set(sb)
    for k in sa:
        assert sa[k].shape == sb[k].shape, k
        assert torch.equal(sa[k].to(sb[k].dtype), sb[k]), k


def smooth_frames(t: int = 3, h: int = 120, w: int = 160, seed: int = 0) -> np.ndarray:
    """Smooth random colour fields (T, H, W, 3) in [0, 1]: resampling them twice loses little."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = np.empty((t, h, w, 3), np.float32)
    for i in range(t):
        for c in range(3):
            fx, fy, phase = rng.uniform(0.01, 0.04), rng.uniform(0.01, 0.04), rng.uniform(0, 6.28)
            frames[i, :, :, c] = 0.5 + 0.4 * np.sin(fx * xx + fy * yy + phase)
    return frames


class ScriptedDetector:
    """Returns prepared detections per call (one list per frame, in order); records the images it saw."""

    box_scale = 1.0

    def __init__(self, per_frame: list[list[FaceDetection]]):
        self.per_frame = per_frame
        self.seen: list[np.ndarray] = []

    def __call__(self, image: np.ndarray) -> list[FaceDetection]:
        self.seen.append(image)
        return self.per_frame[len(self.seen) - 1]


def box(cx: float, cy: float, side: float, score: float = 1.0, landmarks=None) -> FaceDetection:
    return FaceDetection((cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2), score, landmarks)

"""The Model Loader lists JoyVASA folders next to FacEDiT checkpoints; the Infill node runs either model."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from _joyvasa_helpers import random_net, write_joyvasa
from _node_helpers import load_pack, pack_module

from facedit.edits import plan_generation
from facedit.liveportrait import MotionTrack
from facedit.liveportrait.keypoints import rotation_matrix
from facedit.motion import pack_motion


@pytest.fixture(scope="module")
def joyvasa_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_joyvasa(root / "joyvasa", random_net(1))
    before = os.environ.get("FACEDIT_MODELS_DIR")
    os.environ["FACEDIT_MODELS_DIR"] = str(root)
    yield root
    if before is None:
        del os.environ["FACEDIT_MODELS_DIR"]
    else:
        os.environ["FACEDIT_MODELS_DIR"] = before


def _node(name: str):
    return load_pack().NODE_CLASS_MAPPINGS[name]


def _audio(seconds: float) -> dict:
    t = torch.arange(int(seconds * 16000)) / 16000
    return {"waveform": (0.1 * torch.sin(2 * np.pi * 200 * t))[None, None], "sample_rate": 16000}


def test_model_loader_lists_the_joyvasa_folder_once(joyvasa_models):
    loaders = pack_module("nodes.loaders")
    choices = loaders.motion_model_choices()
    assert choices == [loaders.JOYVASA_PREFIX + "."]  # the nested JoyVASA/ folder holds the same files


def test_infill_node_generates_with_joyvasa_from_the_audio(joyvasa_models):
    loaders = pack_module("nodes.loaders")
    with torch.inference_mode():
        model = _node("FacEDiTModelLoader").execute(loaders.JOYVASA_PREFIX + ".", "fp32", "cpu")[0]
    assert model.kind == "joyvasa"
    plan = plan_generation(1.2, fps=25.0, prompt_frames=1)
    angles = torch.tensor([[5.0, -8.0, 2.0]])
    prompt = pack_motion(torch.full((1, 21, 3), 0.01), rotation_matrix(*angles.T), torch.zeros(1, 3))
    track = MotionTrack(prompt, torch.zeros(1, 21, 3), torch.ones(1), angles)
    infill = _node("FacEDiTInfill")
    with pytest.raises(ValueError, match="audio: the JoyVASA prior"):
        infill.execute(model, track, None, plan, 3, -1.0, 0.0, 0, 1.0)
    driving = infill.execute(model, track, None, plan, 3, -1.0, 1.8, 0, 1.0, audio=_audio(1.2))[0]
    assert len(driving) == plan.target_frames
    assert torch.equal(driving.motion[0], prompt[0])
    assert torch.isfinite(driving.motion).all()
    assert not torch.allclose(driving.motion[5], prompt[0])

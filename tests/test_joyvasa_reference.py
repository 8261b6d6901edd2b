"""Equality with JoyVASA's own code on random weights.

The committed fixture holds the outputs of jdh-algo/JoyVASA's DitTalkingHead (audio features, denoiser, two
whole ``sample()`` runs) made by tools/joyvasa_reference.py; the weights are rebuilt here from its seed. The
second test rebuilds the reference from the fetched sources when they are on this machine (else it skips).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from _joyvasa_helpers import template_stats
from safetensors import safe_open

from facedit.priors import load_joyvasa
from facedit.priors.joyvasa import denoise_window
from tools.joyvasa_reference import CFG_SCALE, SIZES, build_reference, fill_random, make_inputs

FIXTURE = Path(__file__).parent / "fixtures" / "joyvasa_reference.safetensors"
SOURCES = Path(os.environ.get("FACEDIT_JOYVASA_SRC", "/work/.mirror/jdh-algo+JoyVASA/repo"))


def _write_official(root: Path, state: OrderedDict) -> Path:
    """The generator as JoyVASA's train.py saves it, the template as its 04_gen_template.py pickles it."""
    gen = root / "motion_generator" / "motion_generator_hubert_chinese.pt"
    gen.parent.mkdir(parents=True)
    args = argparse.Namespace(audio_model="hubert_zh", fps=25, pad_mode="zero", use_indicator=True, **SIZES)
    torch.save({"args": args, "model": state, "iter": 20000}, gen)
    (root / "motion_template").mkdir()
    with open(root / "motion_template" / "motion_template.pkl", "wb") as f:
        pickle.dump(template_stats(), f)
    return root


def _check_equal(root: Path, out: dict[str, torch.Tensor], shapes, seed: int = 0) -> None:
    weights = fill_random(shapes, seed)
    state = OrderedDict(weights)
    state.update({k.removeprefix("buffer."): v for k, v in out.items() if k.startswith("buffer.")})
    prior = load_joyvasa(_write_official(root, state))
    net = prior.net
    x = make_inputs(seed + 1)
    tol = dict(atol=2e-4, rtol=1e-4)
    with torch.no_grad():
        feats = net.audio_features(x["audio"])
        torch.testing.assert_close(feats, out["out.audio_feat"], **tol)
        feats = out["out.audio_feat"]  # the denoiser and sampler are compared on the same features
        denoised = net.denoising_net(
            x["noisy"], feats.expand(2, -1, -1), x["prev_motion"].expand(2, -1, -1), x["prev_audio"].expand(2, -1, -1),
            x["steps"],
        )  # fmt: skip
        torch.testing.assert_close(denoised, out["out.denoised"], **tol)
        n = SIZES["n_diff_steps"]
        for case, prev in (("prev", (x["prev_motion"], x["prev_audio"])), ("start", (None, None))):
            sample = denoise_window(
                net, feats, prev[0], prev[1], guidance=CFG_SCALE - 1, x_T=x["x_T"],
                step_noise=lambda t: x["step_noise"][n - t],
            )  # fmt: skip
            torch.testing.assert_close(sample, out[f"out.sample_{case}"], **tol)


def test_equal_to_joyvasa_code_fixture(tmp_path):
    with safe_open(str(FIXTURE), framework="pt") as f:
        out = {k: f.get_tensor(k) for k in f.keys()}
        meta = f.metadata()
    assert json.loads(meta["sizes"]) == SIZES
    shapes = [(name, tuple(shape)) for name, shape in json.loads(meta["parameters"])]
    _check_equal(tmp_path, out, shapes)


@pytest.mark.skipif(not SOURCES.exists(), reason="JoyVASA's sources are not on this machine (FACEDIT_JOYVASA_SRC)")
def test_equal_to_joyvasa_code_now(tmp_path):
    out, shapes = build_reference(SOURCES, seed=5)
    _check_equal(tmp_path, out, shapes, seed=5)

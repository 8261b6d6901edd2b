"""bench/bench_seams.py: its main path runs and reports every variant; its ablation switches do what they say."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch

from facedit.model import FacEDiT
from facedit.training import synthetic

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_seams.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_seams", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_quick_run_reports_every_variant(bench, tmp_path, capsys):
    threads = torch.get_num_threads()
    try:
        assert bench.main(["--quick", "--json", str(tmp_path / "runs.json")]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("| ")]
    names = list(bench.VARIANTS)
    assert [line.split(" | ")[0][2:] for line in table[1:-1]] == names  # header, one row per variant, baselines
    assert all(line.count("|") == 9 for line in table)
    report = json.loads((tmp_path / "runs.json").read_text())
    assert [run["variant"] for run in report["runs"]] == names
    for run in report["runs"]:
        for key in bench.COLUMNS + ("blind_mouth", "line_pose"):
            assert math.isfinite(run[key]) and run[key] >= 0, (run["variant"], key)


def test_seeds_are_averaged_and_their_spread_shown(bench):
    keys = bench.COLUMNS + ("blind_mouth", "line_pose", "seconds")
    runs = [{"variant": "no_ts", "seed": seed, **{key: 1.0 + seed for key in keys}} for seed in (0, 1)]
    (row,) = bench.summarize(runs)
    assert row["seeds"] == [0, 1] and row["mouth"] == 1.5 and row["mouth_spread"] == 1.0
    assert "| no_ts | ✓ | ✓ | ✗ | 1.500 ±0.500 |" in bench.format_table([row])


def _randomised(config) -> FacEDiT:
    """A one-block model of `config` with every weight random (at initialisation adaLN-Zero shuts every
    block). One block: with more, speech heard by far frames would reach frame 0 through self-attention."""
    torch.manual_seed(0)
    model = FacEDiT(config.replace(depth=1)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model


def _reach(model: FacEDiT, clip: int, poke: str) -> float:
    """How much frame 0 of the output moves when the last motion frame (poke "motion") or the last
    speech frame ("speech") of a `clip`-frame input changes."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, clip, synthetic.MOTION_DIM, generator=g)
    speech = torch.randn(1, 2 * clip, synthetic.SPEECH_DIM, generator=g)
    cond = torch.zeros_like(x)
    t = torch.tensor([0.5])
    with torch.no_grad():
        base = model(x, cond, speech, t)
        if poke == "motion":
            x = x.clone()
            x[:, -1] += 10.0
        else:
            speech = speech.clone()
            speech[:, -1] += 10.0
        return float((model(x, cond, speech, t) - base)[:, 0].abs().max())


@pytest.mark.parametrize("name", ["full", "no_self", "no_cross", "no_windows"])
def test_variant_switches_open_exactly_their_window(bench, name):
    variant, clip = bench.VARIANTS[name], 64
    model = _randomised(variant.config(clip))
    assert (_reach(model, clip, "motion") > 0) == (not variant.self_window)
    assert (_reach(model, clip, "speech") > 0) == (not variant.cross_window)

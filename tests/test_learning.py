"""The small FacEDiT learns to infill motion: the mouth from the speech, the pose from the context.

The synthetic world (`facedit.training.synthetic`): smooth latent signals drive the "speech" and the
mouth-like first 45 motion dims; the 30 pose-like dims are a smooth drift the speech says nothing about,
so only the known frames around a span tell where the pose is going. After a short flow-matching
training on random crops with random masked spans, the model infills a masked one-second span of
held-out clips, and:

(a) its mouth error beats every speech-blind baseline (linear interpolation of the boundary frames,
    holding the nearer boundary frame, the clip's mean known frame) by 3x;
(b) its pose error is no worse than linear interpolation of the boundary frames;
(c) the frame-to-frame change at each seam (both of them) is within 1.2x of the clip's own median
    change, as the issue words it: per clip, r = seam step / that clip's median true step, and the
    median of r over 128 held-out clips (the typical clip's seam) must be <= 1.2 at both seams. The
    relative reading is kept too: the mean of r over the true motion's mean r at the same seam, <= 1.2.

Why the median over so many clips: r is widely spread (its 10-90% range is 0.4-1.9 for the true
motion), so a mean of r sits above 1 even for the truth (1.09x / 1.18x here), and a median over 16-32
clips moves by about 0.14 (sd) from one set of clips to the next (the truth read 0.98x / 1.17x on the
32 clips this test used before). Over these 128 clips the true motion reads 0.98x / 1.10x.

Measured (one thread, the test's RECIPE: 600 steps of 4 crops, lambda_ts 0.6; 8 ODE steps): mouth
0.112 against 1.090 for the best blind baseline; pose 0.019 against 0.074 for linear interpolation;
seams 1.11x / 1.13x the clip's median (mean 1.16x / 1.15x, relative 1.07 / 0.97), 0.07 inside the
bound. 68-88 s in all on this project's shared 2-core CPU, about 50 s of it training (the Recipe
defaults took about 3 minutes; 450 steps took 46 s but left the old sampler only 0.01 over the bound).

It can fail: the same trained model also runs through the old sampler, which integrated the known
frames with the network's velocity instead of holding them on their conditional path; its seams
read 1.25x / 1.20x the clip's median (relative 1.21 / 1.10) and fail (c), 0.05 over the bound.
The paper's velocity prediction over the straight-line fill failed (b) and (c) on this bench under
synthetic.Recipe's defaults (pose 0.153 against 0.096 for the line, seams up to 1.51x on 8 clips);
what meets them is the defaults' motion prediction over the "smooth" fill (FacEDiTConfig's table).
"""

from __future__ import annotations

import pytest
import torch

from facedit.config import FacEDiTConfig
from facedit.flow import network_input, read_output, sway_timesteps
from facedit.model import FacEDiT
from facedit.training import synthetic as synthetic

CLIPS, ODE_STEPS = 128, 8
HELD_SECONDS = 800  # enough held-out motion for CLIPS clips of synthetic.span_scores
# The test's own run, about 50 s on one thread: more, smaller batches than synthetic.Recipe's defaults
# (which bench/bench_seams.py and README's ablation table use) and a stronger smoothness loss.
RECIPE = synthetic.Recipe(steps=600, batch=4, lr=2e-3, lambda_ts=0.6)
SEAMS = ("in", "out")


@torch.no_grad()
def _drifting_infill(model: FacEDiT, motion: torch.Tensor, mask: torch.Tensor, speech: torch.Tensor, seed: int):
    """The sampler before the fix: every frame, known ones too, integrated with the network's velocity."""
    known = model.normalize(motion)[None]
    _, cond = network_input(known, known, torch.zeros(()), mask[None], fill=model.config.context_fill)
    times = sway_timesteps(ODE_STEPS, -1.0)
    x = torch.randn(known.shape, generator=torch.Generator().manual_seed(seed))
    model.eval()
    for step in range(ODE_STEPS):
        out = model(x, cond, speech[None], times[step]).float()
        x = x + (times[step + 1] - times[step]) * read_output(out, x, cond, times[step], model.config.prediction)[0]
    return torch.where(mask[:, None], model.denormalize(x)[0], motion)


@pytest.fixture(scope="module")
def trained():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread is faster than two for this small model on a shared machine
    try:
        world = synthetic.World()
        motion, speech = world.stream(4000, seed=10)
        held = world.stream(HELD_SECONDS, seed=11)
        model = synthetic.make_model(FacEDiTConfig.small(speech_dim=synthetic.SPEECH_DIM), motion)
        losses = synthetic.train(model, motion, speech, RECIPE)
        yield model, held, losses
    finally:
        torch.set_num_threads(threads)


def _checks(scores: dict[str, float]) -> dict[str, bool]:
    blind = min(scores[f"{name}_mouth"] for name in synthetic.BLIND)
    return {
        "a_mouth": 3 * scores["model_mouth"] < blind,
        "b_pose": scores["model_pose"] <= scores["line_pose"],
        "c_seams": max(scores[f"seam_{side}_median"] for side in SEAMS) <= 1.2,
        "c_relative": max(scores[f"seam_{side}"] / scores[f"truth_seam_{side}"] for side in SEAMS) <= 1.2,
    }


def _seam_readings(scores: dict[str, float]) -> str:
    def pair(key: str) -> str:
        return " / ".join(f"{scores[key.format(side)]:.3f}" for side in SEAMS)

    relative = " / ".join(f"{scores[f'seam_{s}'] / scores[f'truth_seam_{s}']:.3f}" for s in SEAMS)
    return (
        f"seams (in / out), median over clips: {pair('seam_{}_median')} (truth {pair('truth_seam_{}_median')}); "
        f"mean: {pair('seam_{}')} (truth {pair('truth_seam_{}')}); mean over the truth's: {relative}"
    )


def test_network_input_is_the_path_in_training_and_pins_known_frames_in_sampling():
    g = torch.Generator().manual_seed(0)
    x0, x1, state = (torch.randn(2, 6, 3, generator=g) for _ in range(3))
    mask = torch.tensor([[0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=torch.bool)
    t = torch.tensor([0.25, 0.75])
    path = (1 - t[:, None, None]) * x0 + t[:, None, None] * x1
    x_t, cond = network_input(x0, x1, t, mask, fill="zeros")
    torch.testing.assert_close(x_t, path)
    x_t, cond = network_input(x0, x1, t, mask, state=state, fill="zeros")
    assert torch.equal(x_t[mask], state[mask]) and torch.equal(x_t[~mask], path[~mask])
    assert torch.equal(cond[~mask], x1[~mask]) and not cond[mask].any()


@pytest.fixture(scope="module")
def scores(trained):
    model, held, _ = trained
    return {
        "pinned": synthetic.span_scores(model, held, synthetic.pinned_sampler(ODE_STEPS), clips=CLIPS),
        "drifting": synthetic.span_scores(model, held, _drifting_infill, clips=CLIPS),
    }


def test_small_model_infills_mouth_from_speech(trained, scores):
    _, _, losses = trained
    assert sum(losses[-20:]) / 20 < 0.3 * sum(losses[:20]) / 20
    print({k: {n: round(v, 4) for n, v in d.items()} for k, d in scores.items()})
    for name, sampler_scores in scores.items():
        print(f"{name}: {_seam_readings(sampler_scores)}")
    assert _checks(scores["pinned"])["a_mouth"] and _checks(scores["drifting"])["a_mouth"]


def test_small_model_continues_the_pose_from_the_context_and_the_old_sampler_fails_the_seams(scores):
    """The issue's criteria (a), (b), (c) for the sampler; the drifting one fails (c) with the same model.

    Measured figures: the module docstring."""
    assert all(_checks(scores["pinned"]).values()), (_checks(scores["pinned"]), scores["pinned"])
    assert not _checks(scores["drifting"])["c_seams"], scores["drifting"]

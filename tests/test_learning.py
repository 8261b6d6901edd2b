"""The small FacEDiT learns to infill motion: the mouth from the speech, the pose from the context.

The synthetic world (`facedit.training.synthetic`): smooth latent signals drive the "speech" and the
mouth-like first 45 motion dims; the 30 pose-like dims are a smooth drift the speech says nothing about,
so only the known frames around a span tell where the pose is going. After a short flow-matching
training on random crops with random masked spans, the model infills a masked one-second span of
held-out clips, and:

(a) its mouth error beats every speech-blind baseline (linear interpolation of the boundary frames,
    holding the nearer boundary frame, the clip's mean known frame) by 3x;
(b) its pose error is no worse than linear interpolation of the boundary frames;
(c) the frame-to-frame change at each seam (both of them) is within 1.2x of the clip's own median.

It can fail: the same trained model also runs through the old
sampler, which integrated the known frames with the network's velocity instead of holding them on
their conditional path; its seams are measurably worse. (b) and (c) are NOT yet met by 600 CPU steps:
that test is a strict xfail until a training recipe that meets them fits the CPU budget.
"""

from __future__ import annotations

import pytest
import torch

from facedit.config import FacEDiTConfig
from facedit.flow import network_input, sway_timesteps
from facedit.model import FacEDiT
from facedit.training import synthetic as synthetic

CLIPS, ODE_STEPS = 8, 16


@torch.no_grad()
def _drifting_infill(model: FacEDiT, motion: torch.Tensor, mask: torch.Tensor, speech: torch.Tensor, seed: int):
    """The sampler before the fix: every frame, known ones too, integrated with the network's velocity."""
    known = model.normalize(motion)[None]
    _, cond = network_input(known, known, torch.zeros(()), mask[None], fill=model.config.context_fill)
    times = sway_timesteps(ODE_STEPS, -1.0)
    x = torch.randn(known.shape, generator=torch.Generator().manual_seed(seed))
    model.eval()
    for step in range(ODE_STEPS):
        x = x + (times[step + 1] - times[step]) * model(x, cond, speech[None], times[step]).float()
    return torch.where(mask[:, None], model.denormalize(x)[0], motion)


@pytest.fixture(scope="module")
def trained():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread is faster than two for this small model on a shared machine
    try:
        world = synthetic.World()
        motion, speech = world.stream(4000, seed=10)
        held = world.stream(200, seed=11)
        model = synthetic.make_model(FacEDiTConfig.small(speech_dim=synthetic.SPEECH_DIM), motion)
        losses = synthetic.train(model, motion, speech)
        yield model, held, losses
    finally:
        torch.set_num_threads(threads)


def _checks(scores: dict[str, float]) -> dict[str, bool]:
    blind = min(scores[f"{name}_mouth"] for name in synthetic.BLIND)
    return {
        "a_mouth": 3 * scores["model_mouth"] < blind,
        "b_pose": scores["model_pose"] <= scores["line_pose"],
        "c_seams": max(scores["seam_in"], scores["seam_out"]) <= 1.2,
    }


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


def test_small_model_infills_mouth_from_speech_and_pinning_smooths_the_seams(trained, scores):
    """Measured (600 steps, one thread, context_fill "line"): mouth 0.08 against 0.99 for the best blind
    baseline; worst seam 1.41x the clip's median change with the known frames pinned, 3.5x with the old
    drifting sampler."""
    _, _, losses = trained
    assert sum(losses[-20:]) / 20 < 0.3 * sum(losses[:20]) / 20
    print({k: {n: round(v, 4) for n, v in d.items()} for k, d in scores.items()})
    assert _checks(scores["pinned"])["a_mouth"] and _checks(scores["drifting"])["a_mouth"]
    seam = {k: max(d["seam_in"], d["seam_out"]) for k, d in scores.items()}
    assert seam["pinned"] < 0.85 * seam["drifting"], seam


@pytest.mark.xfail(
    strict=True,
    reason="not yet met: after 600 CPU steps the small model (context_fill 'line') has pose error 0.15 against "
    "0.10 for linear interpolation and seams 1.3-1.4x the clip's median change (issue 19 asks <= 1.0x and <= 1.2x)",
)
def test_small_model_continues_the_pose_from_the_context(scores):
    """The issue's full criteria (a), (b), (c) for the fixed sampler; strict, so it reports when it starts passing."""
    assert _checks(scores["pinned"]) == {"a_mouth": True, "b_pose": True, "c_seams": True}, scores["pinned"]

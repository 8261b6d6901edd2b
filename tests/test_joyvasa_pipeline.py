"""The editing path with the JoyVASA prior in place of FacEDiT: found in models/joyvasa, no WavLM needed."""

from __future__ import annotations

import numpy as np
import pytest
from _joyvasa_helpers import random_net, write_joyvasa
from test_pipeline import FACE_BOX, _clip, _speech

from facedit.pipeline import EditOptions, edit, generate, infill_timeline
from facedit.priors import JoyVASA


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from facedit.models import load_models

    root = tmp_path_factory.mktemp("models")
    write_joyvasa(root / "joyvasa", random_net(2))
    return load_models(root, allow_random=True, seed=0)


def test_joyvasa_is_found_and_replaces_facedit_and_wavlm(models):
    assert isinstance(models.facedit, JoyVASA)
    assert models.wavlm is None
    assert set(models.random) == {"liveportrait"}


def test_infill_timeline_with_joyvasa_touches_only_masked_rows(models):
    rng = np.random.default_rng(0)
    motion = np.zeros((60, 75), np.float32)
    motion[:, :63] = rng.normal(0, 0.02, (60, 63))
    motion[:, 63:72] = np.eye(3).reshape(9)
    mask = np.zeros(60, bool)
    mask[20:30] = True
    motion[:5] = np.nan  # far from the edit: never read
    speech = models.facedit.speech_input(_speech(2.4))
    out = infill_timeline(models.facedit, motion, mask, 30.0, speech, EditOptions(steps=3, motion_context_s=0.4))
    np.testing.assert_array_equal(out[~mask], motion[~mask])
    assert np.isfinite(out[mask]).all() and not np.allclose(out[mask], motion[mask])


def test_edit_with_joyvasa_changes_only_the_edited_span(models):
    fps = 25.0
    n = 40
    frames = _clip(n)
    options = EditOptions(steps=3, context_frames=2, motion_context_s=0.3, face_box=FACE_BOX, stitching=False)
    result = edit(frames, fps, _speech(1.9), models, spans=[(0.6, 0.8, 0.5)], original_duration_s=n / fps,
                  options=options)  # fmt: skip
    plan = result.plan
    touched = plan.infill_mask | plan.retimed_mask
    for k in np.flatnonzero(~touched):
        assert np.array_equal(result.frames[k], frames[int(plan.source_time[k])]), k
    masked = np.flatnonzero(plan.infill_mask)
    assert masked.size and all(not np.array_equal(result.frames[k], frames[int(round(plan.source_time[k]))])
                               for k in masked)  # fmt: skip


def test_generate_with_joyvasa_keeps_the_portrait_as_frame_zero(models):
    portrait = _clip(1)[0]
    result = generate(portrait, _speech(0.6), models, fps=25.0,
                      options=EditOptions(steps=3, face_box=FACE_BOX, stitching=False))  # fmt: skip
    assert result.frames.shape == (15, 128, 128, 3)
    assert np.array_equal(result.frames[0], portrait)
    assert not np.array_equal(result.frames[5], portrait)

"""Native F5-TTS speech editing on tiny random-weight models written in the published file layouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _tts_helpers import write_f5, write_vocos
from safetensors.torch import load_file, save_file

from facedit.timestamps import Word
from facedit.tts import WeightError, edit_speech, load_f5tts, load_vocos

SR = 16000
WORDS = [Word("hello", 0.10, 0.50), Word("big", 0.60, 0.90), Word("world", 1.00, 1.50)]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tts")
    ckpt, vocab = write_f5(root / "f5")
    write_vocos(root / "vocos")
    return load_f5tts(ckpt, vocab), load_vocos(root / "vocos")


def _audio(channels: int = 2, seconds: float = 2.0) -> dict:
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(0)
    rows = [0.2 * np.sin(2 * np.pi * (200 + 50 * c) * t) + 0.01 * rng.standard_normal(t.size) for c in range(channels)]
    return {"waveform": torch.from_numpy(np.stack(rows).astype(np.float32))[None], "sample_rate": SR}


def test_loaders_read_the_published_layouts(models, tmp_path):
    f5, vocoder = models
    assert f5.model.config.depth == 2 and f5.model.config.text_dim == 16 and len(f5.vocab) == 59
    assert vocoder.config.dim == 32 and vocoder.config.padding == "center"
    ckpt, vocab = write_f5(tmp_path / "bad")
    state = load_file(str(ckpt))
    state["ema_model.transformer.extra.weight"] = torch.zeros(1)
    save_file(state, str(ckpt))
    with pytest.raises(WeightError, match="unexpected keys.*extra.weight"):
        load_f5tts(ckpt, vocab)
    del state["ema_model.transformer.extra.weight"], state["ema_model.transformer.proj_out.bias"]
    save_file(state, str(ckpt))
    with pytest.raises(WeightError, match="missing keys.*proj_out.bias"):
        load_f5tts(ckpt, vocab)
    (tmp_path / "short.txt").write_text(" \na\n", encoding="utf-8")
    with pytest.raises(WeightError, match="3 tokens|2 tokens"):
        load_f5tts(write_f5(tmp_path / "ok")[0], tmp_path / "short.txt")


def test_vocos_output_length(models):
    _, vocoder = models
    with torch.no_grad():
        wave = vocoder(torch.randn(1, 100, 30) - 4)
    assert wave.shape == (1, 29 * 256)
    assert torch.isfinite(wave).all()


def test_substitution_keeps_original_samples_outside_the_seams(models):
    f5, vocoder = models
    audio = _audio()
    result = edit_speech(audio, WORDS, "hello small world", f5, vocoder, steps=3, seed=1, crossfade_ms=5)
    out, orig = result.audio["waveform"][0].numpy(), audio["waveform"][0].numpy()
    assert result.audio["sample_rate"] == SR and out.shape[0] == 2 and out.dtype == np.float32
    (edit,) = result.edits
    assert edit.type == "substitution" and edit.original_words == ("big",) and edit.edited_words == ("small",)
    fade = round(0.005 * SR)
    a, b = round(edit.original[0] * SR), round(edit.original[1] * SR)
    new_a, new_b = round(edit.edited[0] * SR), round(edit.edited[1] * SR)
    assert new_a == a  # nothing before the edit moves
    np.testing.assert_array_equal(out[:, : a - fade], orig[:, : a - fade])
    shift = new_b - b
    np.testing.assert_array_equal(out[:, new_b + fade :], orig[:, b + fade :])
    assert out.shape[1] == orig.shape[1] + shift
    assert not np.array_equal(out[:, new_a:new_b][:, : b - a], orig[:, a:b])
    # F5-TTS's rule: seconds per UTF-8 byte of the reference transcript times the bytes of the new words
    expected = 2.0 / len("hello big world") * len("small")
    assert abs((edit.edited[1] - edit.edited[0]) - expected) < 1.5 / 93.75
    texts = [w.text for w in result.words]
    assert texts == ["hello", "small", "world"]
    assert result.words[0] == WORDS[0]
    assert result.words[1].start == pytest.approx(edit.edited[0]) and result.words[1].end == pytest.approx(
        edit.edited[1]
    )
    assert result.words[2].start == pytest.approx(WORDS[2].start + shift / SR)
    assert result.words[2].end - result.words[2].start == pytest.approx(0.5)


def test_deterministic_and_seeded(models):
    f5, vocoder = models
    first = edit_speech(_audio(1), WORDS, "hello small world", f5, vocoder, steps=2, seed=4)
    again = edit_speech(_audio(1), WORDS, "hello small world", f5, vocoder, steps=2, seed=4)
    other = edit_speech(_audio(1), WORDS, "hello small world", f5, vocoder, steps=2, seed=5)
    assert torch.equal(first.audio["waveform"], again.audio["waveform"])
    assert not torch.equal(first.audio["waveform"], other.audio["waveform"])


def test_duration_override_and_insertion(models):
    f5, vocoder = models
    result = edit_speech(_audio(1), WORDS, "hello big red world", f5, vocoder, steps=2, durations=[0.4])
    (edit,) = result.edits
    assert edit.type == "insertion" and edit.edited_words == ("red",)
    assert edit.edited[1] - edit.edited[0] == pytest.approx(0.4, abs=1.5 / 93.75)
    red = result.words[2]
    assert edit.edited[0] <= red.start < red.end <= edit.edited[1]
    assert result.words[3].start == pytest.approx(
        1.0 + (edit.edited[1] - edit.edited[0]) - (edit.original[1] - edit.original[0]), abs=2 / SR
    )


def test_deletion_needs_no_model_and_keeps_samples():
    audio = _audio(1)
    result = edit_speech(audio, WORDS, "hello world", None, None, crossfade_ms=5)
    out, orig = result.audio["waveform"][0, 0].numpy(), audio["waveform"][0, 0].numpy()
    (edit,) = result.edits
    a, b = round(edit.original[0] * SR), round(edit.original[1] * SR)
    fade = round(0.005 * SR)
    assert out.shape[0] == orig.shape[0] - (b - a)
    np.testing.assert_array_equal(out[: a - fade], orig[: a - fade])
    np.testing.assert_array_equal(out[a:], orig[b:])
    assert [w.text for w in result.words] == ["hello", "world"]
    assert result.words[1].start == pytest.approx(1.0 - (b - a) / SR)


def test_no_change_returns_the_input_and_bad_inputs_are_named(models):
    f5, vocoder = models
    audio = _audio(1)
    same = edit_speech(audio, WORDS, "Hello, big world.", f5, vocoder)
    assert torch.equal(same.audio["waveform"], audio["waveform"]) and same.edits == []
    with pytest.raises(ValueError, match="edited_text"):
        edit_speech(audio, WORDS, "  ", f5, vocoder)
    with pytest.raises(ValueError, match="words"):
        edit_speech(audio, [], "hello", f5, vocoder)
    with pytest.raises(ValueError, match="durations"):
        edit_speech(audio, WORDS, "hello small world", f5, vocoder, durations=[1.0, 2.0])
    with pytest.raises(ValueError, match="needs the F5-TTS model"):
        edit_speech(audio, WORDS, "hello small world", None, None)


def test_a_whole_new_line_gets_times_an_edit_plan_accepts(models):
    """Every word replaced: the span's outer edges are the synthesis's own, so the plan has real boundaries."""
    from facedit.edits import plan_edit

    f5, vocoder = models
    audio = _audio(1)
    result = edit_speech(audio, WORDS, "we meet at noon", f5, vocoder, steps=2)
    new = result.words
    assert [w.interpolated for w in new] == [False, True, True, False]
    (span,) = result.edits
    assert (new[0].start, new[-1].end) == pytest.approx(span.edited)
    seconds = result.audio["waveform"].shape[-1] / SR
    plan = plan_edit(WORDS, new, original_duration_s=2.0, edited_duration_s=seconds, fps=25, source_frames=50)
    (edit,) = plan.edits
    assert edit.type == "substitution" and list(edit.edited_words) == ["we", "meet", "at", "noon"]

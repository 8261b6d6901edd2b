"""FacEDiT F5-TTS Loader + FacEDiT Speech Edit through the node adapters (tiny models in models/f5tts, models/vocos)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from _node_helpers import audio_dict, load_pack, pack_module
from _tts_helpers import write_f5, write_vocos

WORDS = json.dumps([{"word": "one", "start": 0.2, "end": 0.5}, {"word": "two", "start": 0.7, "end": 1.0},
                    {"word": "three", "start": 1.2, "end": 1.6}])  # fmt: skip


@pytest.fixture(scope="module")
def tts_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tts_models")
    write_f5(root / "f5tts" / "F5TTS_v1_Base")
    write_vocos(root / "vocos" / "vocos-mel-24khz")
    before = os.environ.get("FACEDIT_MODELS_DIR")
    os.environ["FACEDIT_MODELS_DIR"] = str(root)
    yield root
    if before is None:
        del os.environ["FACEDIT_MODELS_DIR"]
    else:
        os.environ["FACEDIT_MODELS_DIR"] = before


def run(name: str, *args, **kwargs):
    with torch.inference_mode():
        return load_pack().NODE_CLASS_MAPPINGS[name].execute(*args, **kwargs)


def test_speech_edit_node(tts_models):
    loaded = run("FacEDiTF5TTSLoader", "F5TTS_v1_Base/model_1250000.safetensors", "vocos-mel-24khz", "fp32", "cpu")[0]
    audio = audio_dict(2.0, rate=22050, channels=2)
    out_audio, out_words = run("FacEDiTSpeechEdit", loaded, audio, WORDS, "one four three", steps=2, seed=3)
    assert out_audio["sample_rate"] == 22050 and out_audio["waveform"].shape[:2] == (1, 2)
    words = json.loads(out_words)
    assert [w["word"] if "word" in w else w["text"] for w in words] == ["one", "four", "three"]
    fade = round(0.005 * 22050)
    cut = round(round(0.7 * 93.75) / 93.75 * 22050)
    assert torch.equal(out_audio["waveform"][..., : cut - fade], audio["waveform"][..., : cut - fade].float())
    again = run("FacEDiTSpeechEdit", loaded, audio, WORDS, "one four three", steps=2, seed=3)[0]
    assert torch.equal(again["waveform"], out_audio["waveform"])


def test_node_errors_name_the_input(tts_models):
    loaded = run("FacEDiTF5TTSLoader", "F5TTS_v1_Base/model_1250000.safetensors", "vocos-mel-24khz", "fp32", "cpu")[0]
    audio = audio_dict(2.0)
    with pytest.raises(ValueError, match="^words"):
        run("FacEDiTSpeechEdit", loaded, audio, "", "one")
    with pytest.raises(ValueError, match="durations: item 2"):
        run("FacEDiTSpeechEdit", loaded, audio, WORDS, "one four three", durations="1.0, soon")
    (tts_models / "f5tts" / "F5TTS_v1_Base" / "vocab.txt").rename(tts_models / "vocab.bak")
    try:
        with pytest.raises(FileNotFoundError, match="vocab.txt"):
            run("FacEDiTF5TTSLoader", "F5TTS_v1_Base/model_1250000.safetensors", "vocos-mel-24khz", "fp16", "cpu")
    finally:
        (tts_models / "vocab.bak").rename(tts_models / "f5tts" / "F5TTS_v1_Base" / "vocab.txt")
    assert np.isfinite(audio["waveform"].numpy()).all()


def test_unload_models_releases_f5tts_and_a_failing_release_never_stops_comfyui(tts_models, monkeypatch, caplog):
    """ComfyUI's "Unload models" / POST /free runs the pack's release from its prompt worker thread: the
    F5-TTS + Vocos bundle goes to the meta device like every other model, and an error in a release is
    logged, never raised (it would end ComfyUI's worker and stop the queue)."""
    import types

    comfy_, loaders = pack_module("nodes._comfy"), pack_module("nodes.loaders")
    monkeypatch.setattr(loaders, "_CACHE", {})
    loaded = run("FacEDiTF5TTSLoader", "F5TTS_v1_Base/model_1250000.safetensors", "vocos-mel-24khz", "fp32", "cpu")[0]
    assert isinstance(loaded.module(), torch.nn.Module)
    fake_mm = types.SimpleNamespace(unload_all_models=lambda: None)
    monkeypatch.setattr(comfy_, "model_management", fake_mm)
    monkeypatch.setattr(comfy_, "_unload_hooks", [])
    comfy_.on_unload_models(loaders.release_models)
    fake_mm.unload_all_models()
    assert {p.device.type for p in loaded.module().parameters()} == {"meta"}

    def broken():
        raise RuntimeError("boom")

    comfy_.on_unload_models(broken)
    with caplog.at_level("ERROR", logger="FacEDiT"):
        fake_mm.unload_all_models()
    assert "releasing the pack's models failed" in caplog.text and "boom" in caplog.text

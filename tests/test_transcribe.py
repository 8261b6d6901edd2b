"""Transcription: chunk cuts, a tiny random-weight Whisper loaded from its files (timing and plumbing only: random
weights give meaningless words), CTC refinement and alignment of a given transcript."""

import json

import numpy as np
import pytest
import torch
from _whisper_helpers import write_tiny_whisper
from test_align import _save_ctc_folder, _tiny_ctc

from facedit.audio import to_mono
from facedit.speech.align import load_aligner
from facedit.speech.transcribe import align_transcript, chunk_bounds, load_whisper, refine_words
from facedit.timestamps import Word


@pytest.fixture(scope="module")
def whisper(tmp_path_factory):
    return load_whisper(write_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny"))


def _speechlike(seconds, rate=22050, channels=2, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate))) / rate
    voice = np.sin(2 * np.pi * 170 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 2.1 * t))
    wave = np.stack([0.4 * voice + 0.02 * rng.normal(size=t.shape) for _ in range(channels)])
    return {"waveform": torch.from_numpy(wave).float()[None], "sample_rate": rate}


def test_chunk_bounds_cover_the_audio_and_cut_in_silence():
    rng = np.random.default_rng(0)
    x = rng.normal(size=16000 * 50).astype(np.float32)
    x[16000 * 19 : 16000 * 19 + 640] = 0  # a 40 ms pause inside the first window's search zone (17..20 s)
    bounds = chunk_bounds(x, 20.0)
    assert bounds[0][0] == 0 and bounds[-1][1] == x.size
    assert all(b == c for (_, b), (c, _) in zip(bounds[:-1], bounds[1:], strict=True))
    assert all(0 < b - a <= 20 * 16000 for a, b in bounds)
    assert 16000 * 19 <= bounds[0][1] <= 16000 * 19 + 640
    assert chunk_bounds(x[:16000], 30.0) == [(0, 16000)]
    with pytest.raises(ValueError, match="chunk_s"):
        chunk_bounds(x, 45.0)


def test_tiny_whisper_words_follow_the_pipeline(whisper):
    audio = _speechlike(3.0)
    words = whisper.transcribe(audio, max_new_tokens=12)
    assert words and all(isinstance(w, Word) for w in words)
    assert all(0 <= w.start <= w.end <= 3.0 for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)
    mono = to_mono(audio).samples
    out = whisper.pipeline(
        {"raw": mono, "sampling_rate": 16000},
        return_timestamps="word",
        generate_kwargs={"max_new_tokens": 12, "task": "transcribe"},
    )
    expected = [(t, c["timestamp"]) for c in out["chunks"] for t in c["text"].split()]
    assert [w.text for w in words] == [t for t, _ in expected]
    for w, (_, (start, end)) in zip(words, expected, strict=True):
        if start is not None and end is not None and 0 <= start <= end <= 3.0:
            assert (w.start, w.end, w.interpolated) == (start, end, False)
        else:
            assert w.interpolated  # Whisper pointed outside the audio: placed between its neighbours
    assert whisper.transcribe(audio, max_new_tokens=12) == words


def test_long_audio_is_transcribed_in_windows_with_their_offsets(whisper):
    audio = _speechlike(26.0, rate=16000, channels=1, seed=1)
    calls = []
    words = whisper.transcribe(audio, chunk_s=10.0, max_new_tokens=8, progress=lambda d, t: calls.append((d, t)))
    bounds = chunk_bounds(to_mono(audio).samples, 10.0)
    assert len(bounds) == 3 and calls == [(0, 3), (1, 3), (2, 3), (3, 3)]
    per_window = []
    for a, b in bounds:
        piece = {"waveform": audio["waveform"][..., a:b], "sample_rate": 16000}
        per_window.append(
            [(w.text, w.start + a / 16000, w.end + a / 16000) for w in whisper.transcribe(piece, max_new_tokens=8)]
        )
    flat = [x for window in per_window for x in window]
    assert [w.text for w in words] == [t for t, _, _ in flat]
    timed = [(w, s, e) for w, (_, s, e) in zip(words, flat, strict=True) if not w.interpolated]
    assert timed and all(
        w.start == pytest.approx(s, abs=1e-9) and w.end == pytest.approx(e, abs=1e-9) for w, s, e in timed
    )
    assert all(0 <= w.start <= w.end <= 26.0 for w in words)


def test_ctc_refines_and_aligns(tmp_path):
    aligner = load_aligner(_save_ctc_folder(_tiny_ctc("wav2vec2"), tmp_path / "ctc"))
    audio = _speechlike(2.0)
    rough = [Word("tea", 0.1, 0.5), Word("at", 0.6, 0.9), Word("one", 1.0, 1.6)]
    refined = refine_words(aligner, audio, rough)
    assert refined == aligner.align(audio, "tea at one")
    assert [w.text for w in refined] == ["tea", "at", "one"]
    assert align_transcript(aligner, audio, "tea at one") == refined
    with pytest.raises(ValueError, match="transcript"):
        align_transcript(aligner, audio, "  ")


def test_whisper_loading_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="lacks config.json"):
        load_whisper(tmp_path / "none")
    folder = write_tiny_whisper(tmp_path / "w")
    gen = json.loads((folder / "generation_config.json").read_text())
    del gen["alignment_heads"]
    (folder / "generation_config.json").write_text(json.dumps(gen))
    with pytest.raises(ValueError, match="alignment_heads"):
        load_whisper(folder)


def test_transcribe_and_align_nodes(tmp_path, monkeypatch):
    from _node_helpers import pack_module

    write_tiny_whisper(tmp_path / "whisper" / "whisper-small")
    _save_ctc_folder(_tiny_ctc("wav2vec2"), tmp_path / "ctc" / "wav2vec2-base-960h")
    monkeypatch.setenv("FACEDIT_MODELS_DIR", str(tmp_path))
    nodes = pack_module("nodes.transcribe")
    whisper = nodes.FacEDiTWhisperLoader.execute("whisper-small", "fp32", "cpu").result[0]
    aligner = nodes.FacEDiTCTCLoader.execute("wav2vec2-base-960h", "fp32", "cpu").result[0]
    audio = _speechlike(2.0)
    out = nodes.FacEDiTTranscribe.execute(whisper, audio, "", 30.0)
    words_json, text = out.result
    expected = whisper.model.transcribe(audio)
    assert json.loads(words_json) == [
        {"word": w.text, "start": w.start, "end": w.end, "interpolated": w.interpolated} for w in expected
    ]
    assert text == " ".join(w.text for w in expected) and out.ui == {"facedit_transcript": [text]}
    words_json, text = nodes.FacEDiTAlign.execute(aligner, audio, "tea at one").result
    assert [d["word"] for d in json.loads(words_json)] == ["tea", "at", "one"] and text == "tea at one"
    with pytest.raises(ValueError, match="transcript"):
        nodes.FacEDiTAlign.execute(aligner, audio, "")


def test_cli_text_edit_arguments_and_transcription(tmp_path, capsys):
    import soundfile as sf

    from facedit.__main__ import main, transcribe_file

    assert main(["edit", "--video", "v.mp4", "--text", "hello", "--speech", "e.wav", "--out", "o.mp4"]) == 2
    assert main(["edit", "--video", "v.mp4", "--text", " ", "--out", "o.mp4"]) == 2
    assert main(["edit", "--video", "v.mp4", "--out", "o.mp4"]) == 2
    assert "--text" in capsys.readouterr().err
    audio = _speechlike(2.0)
    path = tmp_path / "speech.wav"
    sf.write(str(path), audio["waveform"][0].numpy().T, audio["sample_rate"], subtype="FLOAT")
    with pytest.raises(FileNotFoundError, match="no Whisper model"):
        transcribe_file(path, tmp_path / "models")
    folder = write_tiny_whisper(tmp_path / "models" / "whisper" / "whisper-small")
    words = transcribe_file(path, tmp_path / "models")
    assert words == load_whisper(folder).transcribe(audio)

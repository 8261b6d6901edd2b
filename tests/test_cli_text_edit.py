"""`python -m facedit edit --video in.mp4 --text "..." --out out.mp4` end to end, in process: a tiny random-weight
Whisper, F5-TTS (+ vocab.txt) and Vocos in the models folder, loaded by the CLI's own loaders.

The face side (LivePortrait, WavLM, FacEDiT) is the demo's tiny random stand-ins: the CLI loads LivePortrait at
its official widths only, and those stages have their own CLI tests."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import soundfile as sf
from _node_helpers import SAMPLE_FACE_BOX, SAMPLES, read_wav, sample_frames
from _tts_helpers import write_f5, write_vocos
from _whisper_helpers import retyped_line, write_tiny_whisper

from facedit.__main__ import main, transcribe_file
from facedit.audio import load_audio_file
from facedit.edits import normalize_token
from facedit.timestamps import words_to_list
from facedit.video_io import probe_video, read_audio, write_video

FPS = 10


@pytest.fixture(scope="module")
def text_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_tiny_whisper(root / "whisper" / "whisper-small")
    write_f5(root / "f5tts" / "F5TTS_v1_Base")
    write_vocos(root / "vocos" / "vocos-mel-24khz")
    return root


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """The sample talking head (4 s at 10 fps, 128x128) with the original speech as its AAC track."""
    path = tmp_path_factory.mktemp("input") / "in.mp4"
    speech = read_wav(SAMPLES / "original.wav")["waveform"][0].numpy()
    return write_video(path, sample_frames(40, 128, FPS), FPS, audio=speech, sample_rate=16000, crf=18)


@pytest.fixture
def face_models(monkeypatch, tmp_path):
    from facedit.models import load_models

    monkeypatch.setattr(
        "facedit.__main__._models",
        lambda args, allow_random=False: load_models(tmp_path / "no-face-models", allow_random=True),
    )


def _digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_cli_text_edit_writes_the_edited_video(text_models, clip, face_models, tmp_path, capsys):
    words = words_to_list(transcribe_file(clip, text_models))  # what the user reads first
    line, replaced = retyped_line(words)
    before = _digest(clip)
    out = tmp_path / "out" / "edited.mp4"
    argv = ["edit", "--video", clip, "--text", line, "--out", str(out), "--models", str(text_models),
            "--steps", "2", "--face-box", SAMPLE_FACE_BOX]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err[-3000:]
    err = capsys.readouterr().err
    assert "original transcript: " + " ".join(w["word"] for w in words) in err
    assert _digest(clip) == before, "the input video changed"

    speech, rate = sf.read(str(out.with_suffix(".speech.wav")), dtype="float32", always_2d=True)
    original = load_audio_file(clip)["waveform"][0].numpy().T
    assert rate == 16000 and speech.shape[0] != original.shape[0]
    info = probe_video(out)
    assert float(info.fps) == FPS and info.frame_count == int(np.floor(speech.shape[0] / rate * FPS + 0.5))
    wave, file_rate = read_audio(out)
    assert abs(wave.shape[1] / file_rate - speech.shape[0] / rate) < 0.05

    assert json.loads(out.with_suffix(".original_words.json").read_text()) == words
    edited = json.loads(out.with_suffix(".edited_words.json").read_text())
    assert [w["word"] for w in edited] == line.split()
    # The changed region runs between the real words around the replaced one (symbol-only tokens join it);
    # outside it and a margin (a mel frame + the cross-fade) the speech is the original's samples.
    k = words.index(replaced)
    real = [i for i, w in enumerate(words) if normalize_token(w["word"])]
    before, after = [i for i in real if i < k], [i for i in real if i > k]
    region = (words[before[-1] + 1]["start"] if before else 0.0, words[after[0] - 1]["end"] if after else None)
    (new,) = [w for w in edited if w["word"] == "harbour"]
    assert new["start"] >= region[0] - 0.02 and new["end"] > new["start"]
    head = int((region[0] - 0.02) * rate) if before else 0
    tail = original.shape[0] - int(np.ceil((region[1] + 0.02) * rate)) if after else 0
    assert head > 0 or tail > 0
    assert np.array_equal(speech[:head], original[:head])
    assert tail <= 0 or np.array_equal(speech[-tail:], original[-tail:])
    assert out.with_suffix(".plan.png").is_file()


def _error_line(capsys) -> str:
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1, lines
    return lines[0]


def test_cli_text_edit_bad_use_is_one_line_naming_the_input(text_models, clip, tmp_path, capsys):
    def run(video, models=text_models, out=None):
        out = out or tmp_path / "o.mp4"
        return main(["edit", "--video", str(video), "--text", "a new line", "--out", str(out), "--models", str(models)])

    assert run(tmp_path / "nope.mp4") == 1
    assert _error_line(capsys) == f"error: --video: {tmp_path / 'nope.mp4'} does not exist"
    silent = write_video(tmp_path / "silent.mp4", sample_frames(5, 64, FPS), FPS)
    assert run(silent) == 1
    assert _error_line(capsys).startswith(f"error: --video: {silent} has no audio track")
    assert run(clip, out=clip) == 1
    assert _error_line(capsys).startswith(f"error: out: {clip} is the input file")
    assert run(clip, models=tmp_path / "empty") == 1
    assert _error_line(capsys).startswith(f"error: no Whisper model under {tmp_path / 'empty' / 'whisper'}")
    only_whisper = tmp_path / "only_whisper"
    only_whisper.mkdir()
    (only_whisper / "whisper").symlink_to(text_models / "whisper")
    assert run(clip, models=only_whisper) == 1  # refused before the transcription runs
    assert _error_line(capsys).startswith(f"error: no F5-TTS model in {only_whisper / 'f5tts'}")
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "o.speech.wav").exists()

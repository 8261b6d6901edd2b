"""Node boundaries: a value of the wrong kind on a custom socket, and missing models, get messages that name the
input and what was expected (issue 16)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _node_helpers import FACEDIT_NAME, load_pack, models_dir, pack_module  # noqa: F401 - models_dir is a fixture


def run(name: str, *args):
    with torch.inference_mode():
        return load_pack().NODE_CLASS_MAPPINGS[name].execute(*args)


@pytest.fixture(scope="module")
def loaded(models_dir):  # noqa: F811
    model = run("FacEDiTModelLoader", FACEDIT_NAME, "fp32", "cpu")[0]
    lp = run("FacEDiTLivePortraitLoader", ".", "fp32", "cpu", "none")[0]
    return model, lp


def _motion(t: int):
    MotionTrack = pack_module("facedit.liveportrait").MotionTrack  # the classes the pack's nodes see

    return MotionTrack(torch.zeros(t, 75), torch.zeros(t, 21, 3), torch.ones(t), torch.zeros(t, 3))


def test_infill_with_motion_where_speech_belongs_names_the_input(loaded):
    plan_from_spans = pack_module("facedit.edits").plan_from_spans

    model, _ = loaded
    plan = plan_from_spans(
        [(0.5, 0.7, 0.4)], original_duration_s=2.0, edited_duration_s=2.2, fps=10.0, source_frames=20
    )
    motion = _motion(20)
    with pytest.raises(TypeError, match=r"FacEDiT Infill: input .speech. expects SPEECH features.*got a MotionTrack"):
        run("FacEDiTInfill", model, motion, motion, plan, 2, -1.0, 0.0, 0, 1.0)
    with pytest.raises(TypeError, match=r"input 'model' expects a FacEDiT model .*, got a liveportrait model"):
        run("FacEDiTInfill", loaded[1], motion, motion, plan, 2, -1.0, 0.0, 0, 1.0)


def test_render_and_extract_check_their_custom_inputs(loaded):
    model, lp = loaded
    images = torch.zeros(2, 32, 32, 3)
    with pytest.raises(TypeError, match=r"FacEDiT Extract Motion: input 'liveportrait' expects a LivePortrait model"):
        run("FacEDiTExtractMotion", model, images, None, None, 1.0, 4)
    with pytest.raises(TypeError, match=r"FacEDiT Render: input 'crop' expects a CROP track .*, got a ndarray"):
        run("FacEDiTRender", lp, images, np.zeros(3), _motion(2), _motion(2), None, False, True, 4)


def test_transcribe_speech_edit_and_save_check_their_custom_inputs(loaded):
    model, lp = loaded
    audio = {"waveform": torch.zeros(1, 1, 1600), "sample_rate": 16000}
    with pytest.raises(TypeError, match=r"FacEDiT Transcribe: input 'whisper' expects a Whisper model .*, got a "
                                        r"liveportrait model"):  # fmt: skip
        run("FacEDiTTranscribe", lp, audio)
    with pytest.raises(TypeError, match=r"FacEDiT Align Transcript: input 'aligner' expects a CTC aligner"):
        run("FacEDiTAlign", model, audio, "hello")
    with pytest.raises(TypeError, match=r"FacEDiT Speech Edit: input 'f5tts' expects F5-TTS and Vocos .*, got a "
                                        r"MotionTrack"):  # fmt: skip
        run("FacEDiTSpeechEdit", _motion(2), audio, "[]", "hello")
    with pytest.raises(TypeError, match=r"FacEDiT Save Edited Video: input 'plan' expects an edit PLAN .*, got a "
                                        r"MotionTrack"):  # fmt: skip
        run("FacEDiTSaveEditedVideo", None, _motion(2), torch.zeros(2, 8, 8, 3), audio, "x", "same", "mp4", 18)


def test_missing_models_name_the_expected_files_and_the_download_switch(models_dir):  # noqa: F811
    with pytest.raises(FileNotFoundError) as info:
        run("FacEDiTLivePortraitLoader", "no-such-folder", "fp32", "cpu", "none")
    message = str(info.value)
    assert "no-such-folder" in message and "warping_module.safetensors" in message
    assert "base_models/warping_module.pth" in message and "download='safetensors'" in message
    with pytest.raises(FileNotFoundError, match=r"'nothing-here'.*config\.json.*switch 'download' on"):
        run("FacEDiTWavLMLoader", "nothing-here", "fp32", "cpu", False)
    with pytest.raises(FileNotFoundError, match=r"'missing\.safetensors'.*written by facedit's training"):
        run("FacEDiTModelLoader", "missing.safetensors", "fp32", "cpu")


def test_every_loader_names_the_expected_files_and_how_to_get_them(models_dir):  # noqa: F811
    cases = [
        ("FacEDiTWhisperLoader", ("no-whisper", "fp32", "cpu", False),
         r"'no-whisper'.*generation_config\.json.*switch 'download' on to fetch openai/whisper-small"),
        ("FacEDiTCTCLoader", ("no-ctc", "fp32", "cpu", False),
         r"'no-ctc'.*vocab\.json.*switch 'download' on to fetch facebook/wav2vec2-base-960h"),
        ("FacEDiTF5TTSLoader", ("no-f5.safetensors", "vocos-mel-24khz", "fp32", "cpu", False),
         r"'no-f5\.safetensors'.*vocab\.txt beside it.*switch 'download' on"),
        ("FacEDiTModelLoader", ("JoyVASA prior: no-joyvasa", "fp32", "cpu"),
         r"'no-joyvasa'.*JoyVASA/motion_generator/\*\.pt.*no download switch"),
    ]  # fmt: skip
    for name, args, expected in cases:
        with pytest.raises(FileNotFoundError, match=expected):
            run(name, *args)
    lonely = models_dir / "f5tts" / "lonely.safetensors"  # a checkpoint without its vocab.txt
    lonely.parent.mkdir(exist_ok=True)
    lonely.write_bytes(b"")
    try:
        expected = r"lonely\.safetensors needs its vocab\.txt beside it \(.*f5tts/vocab\.txt is missing\); copy the"
        with pytest.raises(FileNotFoundError, match=expected):
            run("FacEDiTF5TTSLoader", "lonely.safetensors", "vocos-mel-24khz", "fp32", "cpu", False)
    finally:
        lonely.unlink()

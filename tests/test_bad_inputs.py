"""Bad and unusual inputs: each is refused with a message naming the input and what was expected, or handled
without inventing anything (issue 16)."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch
from _lp_helpers import box, tiny_model, write_official
from test_pipeline import FACE_BOX, _clip, _speech

import facedit.liveportrait.crop as crop_module
from facedit.__main__ import main
from facedit.liveportrait.weights import find_weight_files
from facedit.models import find_liveportrait, has_liveportrait, liveportrait_folder
from facedit.pipeline import EditOptions, edit, faceless_frames, iter_edit, make_plan
from facedit.span_text import parse_spans
from facedit.timestamps import TimestampError, load_words
from facedit.training.state import (
    checkpoint_path,
    latest_good_checkpoint,
    list_checkpoints,
    remove_stale_temps,
    save_state,
)

# ------------------------------------------------------------------------------------------ faces missing


class _NoFaceWhereMarked:
    """A face at FACE_BOX, except in frames whose top-left pixel was set to black."""

    box_scale = 1.0

    def __call__(self, image: np.ndarray):
        if not image[0, 0].any():
            return []
        cx, cy = (FACE_BOX[0] + FACE_BOX[2]) / 2, (FACE_BOX[1] + FACE_BOX[3]) / 2
        return [box(cx, cy, FACE_BOX[2] - FACE_BOX[0])]


@pytest.fixture(scope="module")
def models():
    from pathlib import Path

    from facedit.models import load_models

    return load_models(Path(__file__).parent / "no-such-models-folder", allow_random=True, seed=0)


def test_faceless_frames_are_the_frames_next_to_a_missed_source_frame():
    detected = np.array([True, True, False, True, True])
    got = faceless_frames(detected, np.array([0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]))
    assert got.tolist() == [False, False, True, True, True, False, False, False]


def test_frames_without_a_face_in_an_edit_window_stay_original_and_are_named(models, monkeypatch, caplog):
    monkeypatch.setattr(crop_module, "default_detector", _NoFaceWhereMarked)
    fps, n = 25.0, 40
    frames = _clip(n)
    frames[13:15, 0, 0] = 0.0  # no face in source frames 13 and 14 (the context frames before the edit)
    options = EditOptions(steps=2, context_frames=2, motion_context_s=0.3, stitching=False)
    with caplog.at_level(logging.WARNING, logger="facedit"):
        result = edit(frames, fps, _speech(1.9), models, spans=[(0.6, 0.8, 0.5)], original_duration_s=n / fps,
                      options=options)  # fmt: skip
    plan = result.plan
    faceless = [k for k in np.flatnonzero(plan.infill_mask) if plan.source_time[k] in (13.0, 14.0)]
    assert faceless, "the test needs masked frames at the faceless source frames"
    for k in faceless:
        assert np.array_equal(result.frames[k], frames[int(plan.source_time[k])]), k
    others = [k for k in np.flatnonzero(plan.infill_mask) if plan.source_time[k] > 15.0]
    assert any(not np.array_equal(result.frames[k], frames[int(round(plan.source_time[k]))]) for k in others)
    message = " ".join(r.getMessage() for r in caplog.records)
    assert "no face was detected for output frames" in message
    near = [
        k
        for k in np.flatnonzero(plan.infill_mask)
        if {np.floor(plan.source_time[k]), np.ceil(plan.source_time[k])} & {13, 14}
    ]
    assert f"output frames {near[0]}-{near[-1]} (source frames" in message and "kept as they are" in message


def test_no_face_at_all_names_the_input_and_the_frames_searched(models, monkeypatch):
    monkeypatch.setattr(crop_module, "default_detector", lambda: lambda image: [])
    fps, n = 25.0, 40
    plan = make_plan(fps=fps, source_frames=n, original_duration_s=n / fps, edited_duration_s=1.9,
                     spans=[(0.6, 0.8, 0.5)], context_frames=2)  # fmt: skip
    speech = models.wavlm.encode(_speech(1.9))
    with pytest.raises(ValueError, match=r"no face was detected in any frame of talk\.mp4 \(frames \d+-\d+\)"):
        list(iter_edit(_clip(n), plan, models, speech, EditOptions(steps=1), name="talk.mp4"))


def test_no_face_in_the_portrait_names_the_portrait(models, monkeypatch):
    from facedit.pipeline import generate

    monkeypatch.setattr(crop_module, "default_detector", lambda: lambda image: [])
    speech = _speech(0.4)
    with pytest.raises(ValueError, match=r"no face was detected in any frame of face\.png \(1 frames searched\)"):
        generate(_clip(1)[0], speech, models, options=EditOptions(steps=1), name="face.png")


# ------------------------------------------------------------------------------------------ LivePortrait discovery


@pytest.mark.parametrize("layout", ["flat_official", "official_download"])
def test_liveportrait_discovery_finds_the_official_layouts_with_stitching(tmp_path, layout):
    lp_root = tmp_path / "liveportrait"
    if layout == "flat_official":  # base_models/ + retargeting_models/ directly under models/liveportrait
        write_official(tiny_model(), tmp_path)
    else:  # what the official download gives: models/liveportrait/liveportrait/base_models/...
        write_official(tiny_model(), lp_root)
    assert has_liveportrait(tmp_path)
    folder = find_liveportrait(tmp_path)
    assert folder == lp_root == liveportrait_folder(tmp_path)
    files = find_weight_files(folder)
    assert files["stitching_retargeting_module"].name == "stitching_retargeting_module.pth"
    assert files["warping_module"].parent.name == "base_models"


def test_liveportrait_missing_names_the_expected_files(tmp_path):
    (tmp_path / "liveportrait").mkdir()
    assert find_liveportrait(tmp_path) is None
    with pytest.raises(FileNotFoundError, match="warping_module.safetensors") as info:
        liveportrait_folder(tmp_path)
    assert "base_models/warping_module.pth" in str(info.value) and str(tmp_path / "liveportrait") in str(info.value)


# ------------------------------------------------------------------------------------------ training checkpoints


def test_resume_falls_back_past_a_truncated_latest_checkpoint(tmp_path, caplog):
    for step in (8, 16):
        save_state(checkpoint_path(tmp_path, step), {"step": step})
    latest = checkpoint_path(tmp_path, 16)
    latest.write_bytes(latest.read_bytes()[:40])
    with caplog.at_level(logging.WARNING, logger="facedit.train"):
        path, state = latest_good_checkpoint(tmp_path)
    assert path == checkpoint_path(tmp_path, 8) and state["step"] == 8
    assert "step_00000016.pt" in caplog.text and "damaged" in caplog.text
    checkpoint_path(tmp_path, 8).write_bytes(b"")
    with pytest.raises(ValueError, match=r"none of the 2 checkpoint\(s\) in .*checkpoints is readable"):
        latest_good_checkpoint(tmp_path)
    assert latest_good_checkpoint(tmp_path / "empty") is None


def test_partial_checkpoint_files_of_killed_writes_are_removed(tmp_path):
    save_state(checkpoint_path(tmp_path, 8), {"step": 8})
    stale = tmp_path / "checkpoints" / ".step_00000016.pt.1.tmp"
    stale.write_bytes(b"partial")
    assert remove_stale_temps(tmp_path) == [stale] and not stale.exists()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000008.pt"]


# ------------------------------------------------------------------------------------------ WavLM files


def test_wavlm_damaged_files_are_named(tmp_path):
    from fractions import Fraction

    from facedit.speech import load_wavlm

    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header")
    with pytest.raises(ValueError, match=r"broken\.safetensors: not a readable safetensors file"):
        load_wavlm(broken)
    folder = tmp_path / "wavlm-evil"
    folder.mkdir()
    (folder / "config.json").write_text("{broken")
    with pytest.raises(ValueError, match=r"config\.json: not valid JSON"):
        load_wavlm(folder)
    (folder / "config.json").write_text("{}")
    torch.save({"x": Fraction(1, 3)}, folder / "pytorch_model.bin")  # outside the weights_only allow-list
    with pytest.raises(ValueError, match=r"pytorch_model\.bin: cannot be read with torch\.load\(weights_only=True\)"):
        load_wavlm(folder)


# ------------------------------------------------------------------------------------------ words and spans


def test_damaged_json_words_say_invalid_json_with_line_and_column_and_a_short_excerpt(tmp_path):
    path = tmp_path / "words.json"
    body = ",\n".join(f'{{"word": "w{i}", "start": {i}, "end": {i + 0.5}}}' for i in range(20000))
    path.write_text('{"words": [\n' + body + ",\n  {broken}\n]}")
    with pytest.raises(TimestampError) as info:
        load_words(path)
    message = str(info.value)
    assert str(path) in message and "invalid JSON at line 20002 column 4" in message
    assert len(message) < 400


def test_long_text_lines_are_quoted_short(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("0.0 x" + "y" * 100000 + " word\n")
    with pytest.raises(TimestampError, match=r"words\.txt: line 1") as info:
        load_words(path)
    assert len(str(info.value)) < 400


def test_spans_parser_names_the_bad_value():
    with pytest.raises(ValueError, match=r"--spans line 1 '1\.0 abc 2'.*'abc' is not a number"):
        parse_spans("1.0 abc 2", "--spans")
    assert [tuple(vars(s).values()) for s in parse_spans("1 1.5 0.8; 2,2.5,0.3")] == [(1, 1.5, 0.8), (2, 2.5, 0.3)]
    with pytest.raises(ValueError, match=r"spans line 1 '1 2': expected 'start end new_duration'.*2 value"):
        parse_spans("1 2")
    with pytest.raises(ValueError, match=r"--spans line 1 item 2 '2 x 1'"):
        parse_spans("1 2 1; 2 x 1", "--spans")


# ------------------------------------------------------------------------------------------ CLI


def _edit_args(tmp_path, *extra: str) -> list[str]:
    return ["edit", "--video", str(tmp_path / "v.mp4"), "--speech", str(tmp_path / "s.wav"), "--out",
            str(tmp_path / "o.mp4"), *extra]  # fmt: skip


def test_cli_spans_error_is_one_line_naming_the_option(tmp_path, capsys):
    assert main(_edit_args(tmp_path, "--spans", "1.0 abc 2")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --spans line 1 '1.0 abc 2': expected 'start end new_duration' in seconds ('abc' is not a "
                   "number)"]  # fmt: skip


def test_cli_pix_fmt_with_format_same_is_refused_not_ignored(tmp_path, capsys):
    """`same` copies the source's GOPs in its own pixel format, so a pixel format there could only be ignored."""
    assert main(_edit_args(tmp_path, "--spans", "1 2 1", "--pix-fmt", "yuv444p")) == 1
    err = capsys.readouterr().err
    assert "pix_fmt: yuv444p needs a full re-encode, but format 'same' copies the source's GOPs" in err
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a machine without CUDA")
def test_cli_device_without_cuda_is_checked_up_front(tmp_path, capsys):
    assert main(_edit_args(tmp_path, "--spans", "1 2 1", "--device", "cuda")) == 1
    err = capsys.readouterr().err
    assert "--device cuda: this torch build sees no CUDA GPU; use --device cpu" in err and "Traceback" not in err
    assert main(_edit_args(tmp_path, "--spans", "1 2 1", "--device", "gpu")) == 1
    assert "--device: 'gpu' is not a device" in capsys.readouterr().err


def test_cli_any_error_is_one_line_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    import facedit.__main__ as cli

    def boom(args):
        raise RuntimeError(f"{args.portrait}: something unexpected")

    monkeypatch.setattr(cli, "run_generate", boom)
    argv = ["generate", "--portrait", "face.png", "--speech", "s.wav", "--out", str(tmp_path / "o.mp4")]
    assert main(argv) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == "error: RuntimeError: face.png: something unexpected" and "--debug" in lines[1]
    with pytest.raises(RuntimeError, match="face.png"):
        main([*argv, "--debug"])


def test_train_and_preprocess_errors_are_one_line_and_debug_shows_the_traceback(tmp_path, capsys):
    from facedit import preprocess, train

    missing = tmp_path / "run" / "checkpoints" / "step_00000010.pt"
    assert train.main(["--resume", str(missing), "--no-progress"]) == 1
    assert capsys.readouterr().err.strip() == f"train.py: error: training checkpoint not found: {missing}"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        train.main(["--resume", str(missing), "--debug"])
    argv = ["--videos", str(tmp_path / "nothing"), "--out", str(tmp_path / "cache"), "--liveportrait",
            str(tmp_path / "lp"), "--wavlm", str(tmp_path / "wavlm"), "--no-progress"]  # fmt: skip
    assert preprocess.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"preprocess.py: error: --liveportrait: {tmp_path / 'lp'} does not exist"
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "lp")):
        preprocess.main([*argv, "--debug"])
    if not torch.cuda.is_available():  # checked before any file or model
        assert preprocess.main([*argv, "--device", "cuda"]) == 1
        assert "preprocess.py: error: --device cuda: this torch build sees no CUDA GPU" in capsys.readouterr().err


def test_cli_missing_models_name_the_folder_and_the_files(tmp_path, capsys):
    assert main(_edit_args(tmp_path, "--spans", "1 2 1", "--models", str(tmp_path / "m"))) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(
        f"error: LivePortrait weights missing in {tmp_path / 'm' / 'liveportrait'}"
    )
    assert "warping_module.safetensors" in err


def test_library_missing_models_name_the_folder_the_files_and_how_to_get_them(tmp_path, monkeypatch):
    from transformers import WavLMConfig, WavLMModel

    import facedit.models
    from facedit.models import load_models

    write_official(tiny_model(), tmp_path)  # found; loaded as the tiny model (the files hold its sizes)
    monkeypatch.setattr(facedit.models, "load_liveportrait", lambda *a, **k: tiny_model())
    with pytest.raises(FileNotFoundError, match=rf"no WavLM model in {tmp_path / 'wavlm'}: expected a Hugging Face "
                                                r"WavLM folder there \(config\.json \+ model\.safetensors.*download "
                                                r"microsoft/wavlm-base-plus into .*download=True"):  # fmt: skip
        load_models(tmp_path)
    config = WavLMConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                         conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)  # fmt: skip
    WavLMModel(config).save_pretrained(str(tmp_path / "wavlm" / "tiny"))
    expected = rf"no FacEDiT checkpoint .* in {tmp_path / 'facedit'} and no JoyVASA prior \(JoyVASA/motion_generator/"
    with pytest.raises(FileNotFoundError, match=expected + r".*neither is downloaded"):
        load_models(tmp_path)


# ------------------------------------------------------------------------------------------ video files


def _faststart_mp4(path, frames: int = 30, audio: bool = False) -> bytes:
    """An H.264 .mp4 (a keyframe every 10 frames) with its index first (as downloads are), so a truncated copy
    still opens; ``audio``: interleaved AAC, 40 ms per frame."""
    import av

    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.options = {"g": "10"}
        sound = container.add_stream("aac", rate=16000) if audio else None
        if sound is not None:
            sound.layout = "mono"
        for i in range(frames):
            image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            if sound is not None:
                wave = rng.normal(0, 0.1, (1, 640)).astype(np.float32)
                chunk = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 16000, i * 640
                container.mux(sound.encode(chunk))
        container.mux(stream.encode())
        if sound is not None:
            container.mux(sound.encode())
    return path.read_bytes()


def test_truncated_video_is_named_not_read_short(tmp_path):
    from facedit.video_io import iter_frames, probe_video, read_video

    data = _faststart_mp4(tmp_path / "whole.mp4")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 3 // 5])
    listed = probe_video(cut).frame_count
    with pytest.raises(ValueError, match=rf"{cut}: .*of (its )?{listed} frames.*damaged or truncated"):
        list(iter_frames(cut))
    with pytest.raises(ValueError, match=rf"{cut}: .*damaged or truncated"):
        read_video(cut)
    assert len(list(iter_frames(cut, stop=3))) == 3  # the frames before the damage still read


def test_truncated_audio_is_named_and_a_truncated_source_is_never_copied(tmp_path, caplog):
    from facedit.edits import plan_from_spans
    from facedit.video import write_edited_video
    from facedit.video_io import probe_video, read_audio

    data = _faststart_mp4(tmp_path / "whole.mp4", frames=60, audio=True)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 3 // 5])
    damaged = r"(cannot decode the audio after .* s|truncated: its index lists \d+ audio packets but only \d+ are)"
    with pytest.raises(ValueError, match=rf"{cut}: {damaged} .*the file is damaged or truncated"):
        read_audio(cut)
    with caplog.at_level(logging.WARNING):
        info = probe_video(cut)
    assert info.truncated and f"{cut}: truncated: its index lists 60 video frames but only" in caplog.text
    n = info.frame_count
    plan = plan_from_spans([(0.8, 1.0, 0.2)], original_duration_s=n / 25, fps=25, source_frames=n)
    frames = np.zeros((plan.target_frames, 64, 64, 3), np.uint8)
    report = write_edited_video(tmp_path / "out.mp4", cut, plan, frames)  # its last packet may be cut short
    assert report.mode == "full" and report.copied_frames == 0
    assert any("the source is truncated: its index lists 60 video frames" in m for m in report.messages)


def test_video_outputs_name_the_path_and_what_was_expected(tmp_path):
    from facedit.video_io import write_video

    frames = np.zeros((2, 16, 16, 3), np.uint8)
    expected = rf"out: expected a \.mp4, \.mov, \.m4v or \.mkv file, got '{tmp_path}/o\.avi'"
    with pytest.raises(ValueError, match=expected):
        write_video(tmp_path / "o.avi", frames, 25)
    (tmp_path / "plain-file").write_text("")
    out = tmp_path / "plain-file" / "o.mp4"
    with pytest.raises(OSError, match=rf"out: cannot write {out}: the folder {out.parent} cannot take a new file"):
        write_video(out, frames, 25)
    if os.geteuid() != 0:  # root writes into read-only folders
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        with pytest.raises(PermissionError, match=rf"out: cannot write {locked / 'o.mp4'}: .*choose a writable"):
            write_video(locked / "o.mp4", frames, 25)


# ------------------------------------------------------------------------------------------ other model files


def _truncate(path) -> None:
    path.write_bytes(path.read_bytes()[:200])


@pytest.mark.parametrize("in_checkpoint", [True, False])
def test_hubert_config_with_invalid_json_is_named_with_line_and_column(tmp_path, in_checkpoint):
    from _joyvasa_helpers import write_joyvasa

    from facedit.priors.joyvasa import load_joyvasa

    root = write_joyvasa(tmp_path / "joyvasa", hubert_in_checkpoint=in_checkpoint)
    config = root / "chinese-hubert-base" / "config.json"
    lines = config.read_text().splitlines()
    lines[2] = lines[2].rstrip(",")  # a lost comma, as a hand edit leaves it
    config.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=rf"{config}: not valid JSON \(line 4, column \d+: Expecting ',' delimiter\); "
                                         r"expected the config of a HuBERT folder"):  # fmt: skip
        load_joyvasa(root)
    with pytest.raises(ValueError, match=rf"{config}: not valid JSON \(line 4"):
        load_joyvasa(root, hubert=config.parent)


def test_hubert_f5_and_vocos_damaged_files_are_named(tmp_path):
    from _joyvasa_helpers import write_joyvasa
    from _tts_helpers import write_f5, write_vocos

    from facedit.priors.joyvasa import load_joyvasa
    from facedit.tts import load_f5tts, load_vocos

    root = write_joyvasa(tmp_path / "joyvasa", hubert_in_checkpoint=False)
    weights = root / "chinese-hubert-base" / "model.safetensors"
    _truncate(weights)
    with pytest.raises(ValueError, match=rf"{weights}: not a readable safetensors file .*expected the weights of a "
                                         r"HuBERT folder \(config\.json with model_type hubert"):  # fmt: skip
        load_joyvasa(root)
    checkpoint, vocab = write_f5(tmp_path / "f5")
    _truncate(checkpoint)
    with pytest.raises(ValueError, match=rf"{checkpoint}: not a readable safetensors file .*expected an F5-TTS"):
        load_f5tts(checkpoint, vocab)
    folder = write_vocos(tmp_path / "vocos")
    _truncate(folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"pytorch_model\.bin: cannot be read with torch\.load\(weights_only=True\) "
                                         r".*expected the Vocos state dict"):  # fmt: skip
        load_vocos(folder)
    (folder / "config.yaml").write_text("backbone: [unclosed")
    with pytest.raises(ValueError, match=r"config\.yaml: cannot be loaded \(.*Error.*expected Vocos's config\.yaml"):
        load_vocos(folder)


def test_ctc_and_whisper_damaged_folders_are_named(tmp_path):
    from _whisper_helpers import write_tiny_whisper

    from facedit.speech.align import load_aligner
    from facedit.speech.transcribe import load_whisper

    ctc = tmp_path / "ctc"
    ctc.mkdir()
    (ctc / "vocab.json").write_text('{"<pad>": 0, "a": 1}')
    (ctc / "config.json").write_text('{"model_type": "wav2vec2", ')
    with pytest.raises(ValueError, match=rf"{ctc}: cannot be loaded \(.*\); expected a Hugging Face CTC model folder "
                                         r"\(config\.json, vocab\.json, model\.safetensors"):  # fmt: skip
        load_aligner(ctc)
    whisper = write_tiny_whisper(tmp_path / "whisper")
    _truncate(whisper / "model.safetensors")
    with pytest.raises(ValueError, match=rf"{whisper}: cannot be loaded \(.*\); expected a Hugging Face Whisper "
                                         r"folder \(config\.json, generation_config\.json"):  # fmt: skip
        load_whisper(whisper)
    (whisper / "generation_config.json").write_text("{")
    with pytest.raises(ValueError, match=r"generation_config\.json: cannot be loaded \(JSONDecodeError"):
        load_whisper(whisper)


def test_metric_and_motion_prior_damaged_files_are_named(tmp_path):
    from safetensors.torch import save_file

    from facedit.metrics import load_i3d, load_syncnet
    from facedit.priors.joyvasa.files import read_generator

    for name, load, expected in [
        ("syncnet_v2.safetensors", load_syncnet, "a SyncNet v2 state dict"),
        ("rgb_imagenet.safetensors", load_i3d, "an Inception-I3D state dict"),
    ]:
        path = tmp_path / name
        save_file({"w": torch.zeros(64)}, str(path))
        _truncate(path)
        with pytest.raises(ValueError, match=rf"{path}: not a readable safetensors file \(.*\); expected {expected}"):
            load(str(path))
    generator = tmp_path / "motion_generator_hubert_chinese.pt"
    torch.save({"args": {}, "model": {"w": torch.zeros(4096)}}, generator)
    _truncate(generator)
    with pytest.raises(ValueError, match=rf"{generator}: cannot be read with torch\.load\(weights_only=True\) \(.*\); "
                                         r"expected JoyVASA's motion generator checkpoint"):  # fmt: skip
        read_generator(generator)

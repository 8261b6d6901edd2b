"""Preprocessing: a synthetic talking clip through tiny random LivePortrait and WavLM models saved to files and
loaded by the real loaders; bad clips skipped with reasons; resume; worker processes; frame-rate resampling."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from _lp_helpers import smooth_frames
from _train_helpers import SAMPLES, read_wav, save_tiny_liveportrait, save_tiny_wavlm, write_talking_clip

from facedit.data import read_manifest, read_shard, read_shard_info
from facedit.liveportrait import LivePortraitConfig, crop_faces, detect_face_track, extract_motion, load_liveportrait
from facedit.preprocess import PreprocessOptions, find_videos, frame_indices, preprocess
from facedit.speech import load_wavlm
from facedit.video_io import probe_video, read_audio, read_video, write_video

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = PreprocessOptions(min_seconds=1.0, detect_every=4)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Built at whatever thread count torch has now (the shards record it); a test that recomputes a reference
    bit for bit does so at the recorded count."""
    root = tmp_path_factory.mktemp("preprocess")
    videos = root / "videos"
    (videos / "talks").mkdir(parents=True)
    write_talking_clip(videos / "talks" / "speaker.mp4", 2.4, fps=30)
    write_talking_clip(videos / "silent.mp4", 1.6, audio=False)
    write_talking_clip(videos / "short.mp4", 0.6)
    wave, rate = read_wav(SAMPLES / "original.wav")
    write_video(videos / "noface.mp4", smooth_frames(30, 96, 128), 25, audio=wave[: int(1.2 * rate)], sample_rate=rate)
    (videos / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 12)
    lp = save_tiny_liveportrait(root / "lp")
    wavlm = save_tiny_wavlm(root / "wavlm.safetensors")
    threads = torch.get_num_threads()
    summary = preprocess(videos, root / "cache", liveportrait=lp, wavlm=wavlm, options=OPTIONS,
                         liveportrait_size="tiny", progress=False)  # fmt: skip
    assert torch.get_num_threads() == threads
    return SimpleNamespace(root=root, videos=videos, cache=root / "cache", lp=lp, wavlm=wavlm, summary=summary,
                           threads=threads)  # fmt: skip


def test_manifest_lists_the_good_clip_and_the_bad_ones_are_skipped_with_reasons(prepared):
    entries = read_manifest(prepared.cache)
    assert [e.id for e in entries] == ["talks__speaker"]
    entry = entries[0]
    source_frames = probe_video(prepared.videos / "talks" / "speaker.mp4").frame_count
    assert source_frames == 72
    assert entry.frames == len(frame_indices(72, 30, 25)) == 60
    assert (entry.fps, entry.seconds) == (25.0, pytest.approx(2.4))
    assert entry.shard == "shards/talks__speaker.safetensors" and Path(entry.source).name == "speaker.mp4"
    reasons = {s["id"]: s["reason"] for s in prepared.summary.skipped}
    assert reasons == {"broken": "decode error", "silent": "no audio", "short": "too short", "noface": "no face"}
    stored = [json.loads(line) for line in (prepared.cache / "skipped.jsonl").read_text().splitlines()]
    assert {s["id"]: s["reason"] for s in stored} == reasons
    report = prepared.summary.report()
    assert "processed 1 clip(s), skipped 4" in report and "no face: 1" in report and "broken" in report


def test_shard_matches_the_in_memory_reference(prepared):
    """Streaming decode + replayed detections + chunked extraction == the plain library calls on the whole clip."""
    entry = read_manifest(prepared.cache)[0]
    path = prepared.cache / entry.shard
    info = read_shard_info(path)
    motion, speech = read_shard(path)
    video = read_video(prepared.videos / "talks" / "speaker.mp4")
    select = frame_indices(len(video.frames), video.fps, 25)
    track = detect_face_track(video.frames, detect_every=OPTIONS.detect_every, smoothing=OPTIONS.smoothing)
    crops = crop_faces(video.frames[select], track.select(select))
    lp = load_liveportrait(prepared.lp, config=LivePortraitConfig.tiny())
    expected = extract_motion(lp, crops).motion.numpy()
    assert motion.shape == (60, 75)
    np.testing.assert_allclose(motion, expected, rtol=0, atol=1e-5)
    assert np.abs(np.diff(motion, axis=0)).max() > 1e-4  # the head moves, and so does the motion

    wave, rate = read_audio(prepared.videos / "talks" / "speaker.mp4")
    samples = round(wave.shape[1] * 16000 / rate)
    assert info.speech_frames == (samples - 400) // 320 + 1 == entry.speech_frames
    with __import__("safetensors").safe_open(str(path), "pt") as handle:
        stored = handle.get_tensor("speech")
    assert info.metadata["threads"] == str(prepared.threads)
    before = torch.get_num_threads()
    torch.set_num_threads(int(info.metadata["threads"]))  # float sums depend on the thread split
    try:
        features = load_wavlm(prepared.wavlm).encode(wave, rate).features
    finally:
        torch.set_num_threads(before)
    assert stored.dtype == torch.float16 and torch.equal(stored, features.half())
    assert (info.fps, info.speech_frame_rate, info.speech_offset_s) == (Fraction(25), 50.0, 0.0125)
    assert info.metadata["source_fps"] == "30" and info.metadata["source_frames"] == "72"
    assert json.loads(info.metadata["options"])["detect_every"] == OPTIONS.detect_every
    assert speech.shape == (info.speech_frames, 32)


@pytest.mark.parametrize("threads", [0, 1, 2])
def test_each_clip_runs_at_the_preprocessors_thread_count_and_restores_the_callers(threads):
    from facedit.preprocess import ClipPreprocessor, SkipClip

    torch.set_num_threads(2)
    processor = ClipPreprocessor(None, None, PreprocessOptions(threads=threads), detector=lambda frame: [])
    assert processor.threads == (threads or 2)
    seen = []

    def work(path, clip_id, out):
        seen.append(torch.get_num_threads())
        raise SkipClip("too short", "stand-in")

    processor._process = work
    torch.set_num_threads(1)  # changed by someone else between making the preprocessor and using it
    for _ in range(2):
        with pytest.raises(SkipClip):
            processor.process("clip.mp4", "clip", "out")
        assert torch.get_num_threads() == 1
    assert seen == [threads or 2] * 2


def test_rerun_skips_done_and_known_bad_clips(prepared):
    manifest = (prepared.cache / "manifest.jsonl").read_text()
    again = preprocess(prepared.videos, prepared.cache, liveportrait=prepared.lp, wavlm=prepared.wavlm, options=OPTIONS,
                       liveportrait_size="tiny", progress=False)  # fmt: skip
    assert (len(again.done), len(again.skipped), again.already_done, again.skipped_before) == (0, 0, 1, 4)
    assert (prepared.cache / "manifest.jsonl").read_text() == manifest


def test_cli_with_worker_processes_adds_new_clips_and_retries_skipped(prepared):
    """`python facedit/preprocess.py --workers 2`: spawned workers load the models themselves and give the same
    motion as the in-process run; --retry-skipped tries the bad clips again (and skips them again)."""
    for name in ("copy1", "copy2"):
        shutil.copy(prepared.videos / "talks" / "speaker.mp4", prepared.videos / f"{name}.mp4")
    command = [
        sys.executable, str(ROOT / "facedit" / "preprocess.py"), "--videos", str(prepared.videos), "--out",
        str(prepared.cache), "--liveportrait", str(prepared.lp), "--wavlm", str(prepared.wavlm), "--workers", "2",
        "--threads", str(prepared.threads), "--detect-every", str(OPTIONS.detect_every), "--liveportrait-size", "tiny",
        "--retry-skipped", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": "", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, cwd=prepared.root, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "processed 2 clip(s), skipped 4, already done 1" in result.stdout
    entries = {e.id: e for e in read_manifest(prepared.cache)}
    assert sorted(entries) == ["copy1", "copy2", "talks__speaker"]
    reference, _ = read_shard(prepared.cache / entries["talks__speaker"].shard)
    for name in ("copy1", "copy2"):
        motion, _ = read_shard(prepared.cache / entries[name].shard)
        np.testing.assert_array_equal(motion, reference)
    stored = [json.loads(line) for line in (prepared.cache / "skipped.jsonl").read_text().splitlines()]
    assert sorted(s["id"] for s in stored) == ["broken", "noface", "short", "silent"]  # retried, not duplicated


@pytest.mark.parametrize(
    "count, src, dst, expected",
    [
        (12, 30, 25, [0, 1, 2, 4, 5, 6, 7, 8, 10, 11]),
        (5, 24, 25, [0, 1, 2, 3, 4, 4]),
        (4, 25, 25, [0, 1, 2, 3]),
        (10, Fraction(30000, 1001), 25, [0, 1, 2, 4, 5, 6, 7, 8, 9]),
        (6, 50, 25, [0, 2, 4]),
        (7, 50, 25, [0, 2, 4, 6]),
        (0, 30, 25, []),
    ],
)
def test_frame_indices_pick_the_nearest_source_frame(count, src, dst, expected):
    got = frame_indices(count, src, dst)
    assert got.tolist() == expected
    source_times = np.asarray(got) / float(Fraction(src))
    target_times = np.arange(len(got)) / dst
    inside = np.asarray(got) < count - 1  # the clamped last frame may sit further away
    assert np.all(np.abs(source_times - target_times)[inside] <= 0.5 / float(Fraction(src)) + 1e-12)


def test_find_videos_from_folders_and_list_files(tmp_path):
    for name in ("a/x.mp4", "b/x.mp4", "c.MOV", "notes.txt", "a/deep/y.webm"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = find_videos(tmp_path)
    assert [clip for clip, _ in found] == ["a__deep__y", "a__x", "b__x", "c"]
    listing = tmp_path / "list.txt"
    listing.write_text("# training clips\na/x.mp4\n\nb/x.mp4\n")
    assert [(c, p.name) for c, p in find_videos(listing)] == [("a__x", "x.mp4"), ("b__x", "x.mp4")]
    same_names = find_videos([tmp_path / "a" / "x.mp4", tmp_path / "b" / "x.mp4"])
    assert len({c for c, _ in same_names}) == 2
    with pytest.raises(FileNotFoundError, match="--videos"):
        find_videos(tmp_path / "missing")


def test_bad_arguments_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="--liveportrait"):
        preprocess(tmp_path, tmp_path / "out", liveportrait=tmp_path / "nope", wavlm=tmp_path)
    with pytest.raises(ValueError, match="speech_dtype"):
        PreprocessOptions(speech_dtype="int8")
    with pytest.raises(ValueError, match="min_face_fraction"):
        PreprocessOptions(min_face_fraction=2)

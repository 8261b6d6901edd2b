"""Builders for the preprocessing and training tests: a synthetic talking clip, tiny model files, synthetic caches."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from _lp_helpers import tiny_model, write_safetensors

from facedit.data import MANIFEST_NAME, SHARD_DIR, ManifestEntry, write_shard
from facedit.speech import save_wavlm_safetensors

SAMPLES = Path(__file__).resolve().parents[1] / "facedit" / "samples"


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    import soundfile

    wave, rate = soundfile.read(str(path), dtype="float32")
    return wave, rate


def talking_frames(frames: int, size: tuple[int, int] = (192, 160), seed: int = 0) -> np.ndarray:
    """The sample portrait, shrunk, with a small smooth head motion (shift, rotation, zoom): (T, H, W, 3) 0..1."""
    image = cv2.cvtColor(cv2.imread(str(SAMPLES / "portrait.jpg")), cv2.COLOR_BGR2RGB)
    h, w = size
    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, size=3)
    out = np.empty((frames, h, w, 3), np.float32)
    for i in range(frames):
        angle = 3.0 * np.sin(0.21 * i + phase[0])
        dx, dy = 3.0 * np.sin(0.13 * i + phase[1]), 2.0 * np.sin(0.17 * i + phase[2])
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0 + 0.02 * np.sin(0.11 * i))
        matrix[:, 2] += (dx, dy)
        out[i] = cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
    return np.clip(out, 0.0, 1.0)


def write_talking_clip(path: Path, seconds: float, fps: float = 25.0, audio: bool = True, seed: int = 0) -> Path:
    """An mp4 of the moving portrait with the first ``seconds`` of the sample speech (AAC, 16 kHz)."""
    from facedit.video_io import write_video

    frames = int(round(seconds * fps))
    wave = None
    rate = None
    if audio:
        wave, rate = read_wav(SAMPLES / "original.wav")
        wave = wave[: int(round(seconds * rate))]
    write_video(path, talking_frames(frames, seed=seed), fps, audio=wave, sample_rate=rate, preset="ultrafast")
    return path


def save_tiny_liveportrait(folder: Path, seed: int = 0) -> Path:
    """Random tiny-config LivePortrait networks saved in the ComfyUI .safetensors layout."""
    return write_safetensors(tiny_model(seed), folder)


def save_tiny_wavlm(path: Path, seed: int = 0, hidden: int = 32) -> Path:
    """A random WavLM with the standard conv stack (exact timing) but tiny widths, as one .safetensors file."""
    from transformers import WavLMConfig, WavLMModel

    torch.manual_seed(seed)
    config = WavLMConfig(
        hidden_size=hidden, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, num_buckets=32,
    )  # fmt: skip
    return save_wavlm_safetensors(WavLMModel(config).eval(), path)


def synthetic_clip(frames: int, speech_dim: int, rng: np.random.Generator, fps: float = 25.0, rate: float = 50.0):
    """Speech features that are smooth random curves and motion that follows them: motion frame i is a fixed
    linear map of the speech at its time plus a slow per-clip drift. Learnable, so training losses must fall."""
    speech_frames = int(frames * rate / fps) + 1
    t = np.arange(speech_frames) / rate
    freqs = rng.uniform(0.5, 3.0, size=(1, speech_dim))
    phases = rng.uniform(0, 2 * np.pi, size=(1, speech_dim))
    speech = np.sin(2 * np.pi * freqs * t[:, None] + phases).astype(np.float32)
    mixing = np.random.default_rng(1234).normal(size=(speech_dim, 75)).astype(np.float32) / np.sqrt(speech_dim)
    at_frames = speech[np.round(np.arange(frames) * rate / fps).astype(int)]
    drift = rng.normal(size=(1, 75)) * 0.3
    motion = (at_frames @ mixing + drift).astype(np.float32)
    return motion, speech


def write_synthetic_cache(
    cache: Path, clips: int = 6, frames: tuple[int, int] = (60, 120), speech_dim: int = 16, seed: int = 0
) -> list[ManifestEntry]:
    """A cache as preprocess.py writes it, from synthetic_clip data (25 fps motion, 50 Hz speech)."""
    rng = np.random.default_rng(seed)
    cache.mkdir(parents=True, exist_ok=True)
    entries = []
    for index in range(clips):
        n = int(rng.integers(frames[0], frames[1] + 1))
        motion, speech = synthetic_clip(n, speech_dim, rng)
        clip_id = f"clip{index:03d}"
        shard = f"{SHARD_DIR}/{clip_id}.safetensors"
        write_shard(cache / shard, motion, speech, fps=25, speech_frame_rate=50.0, speech_offset_s=0.0125)
        entries.append(ManifestEntry(clip_id, n, n / 25, 25.0, f"synthetic/{clip_id}", shard, len(speech)))
    (cache / MANIFEST_NAME).write_text("".join(e.to_json() + "\n" for e in entries), encoding="utf-8")
    return entries

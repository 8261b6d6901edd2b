"""Audio in any layout and rate -> mono float32 at the rate a speech model wants.

Accepts a ComfyUI AUDIO dict ``{"waveform": [B, C, T], "sample_rate": int}`` or a plain numpy / torch array
([T] or [C, T], channels first) with its sample rate given separately. Resampling uses soxr (high quality
polyphase), which returns round(T * new_rate / old_rate) samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SPEECH_SAMPLE_RATE = 16000
_MAX_CHANNELS = 16


@dataclass(frozen=True)
class MonoAudio:
    """Mono samples at ``sample_rate`` and the true duration of the input they came from."""

    samples: np.ndarray  # float32 [N]
    sample_rate: int
    duration_s: float


def _as_numpy(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().to("cpu")
        if str(x.dtype) in ("torch.bfloat16", "torch.float16"):
            x = x.float()
        x = x.numpy()
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception as err:  # noqa: BLE001 - any conversion failure becomes one clear message
            raise TypeError(f"{name}: expected an array of samples, got {type(x).__name__}") from err
    if x.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected numeric samples, got dtype {x.dtype}")
    if x.dtype.kind in "iu":
        scale = float(np.iinfo(x.dtype).max) + 1.0
        x = x.astype(np.float32) / scale
    return x


def unpack_audio(audio: Any, sample_rate: int | None = None, batch_index: int | None = None) -> tuple[np.ndarray, int]:
    """Return (samples [C, T] float, sample_rate) from a ComfyUI AUDIO dict or an array.

    A ComfyUI batch with more than one item needs ``batch_index``: picking one silently would drop the others.
    """
    if isinstance(audio, dict):
        if "waveform" not in audio or "sample_rate" not in audio:
            raise ValueError(f"audio: expected a dict with 'waveform' and 'sample_rate', got keys {sorted(audio)}")
        if sample_rate is not None and int(sample_rate) != int(audio["sample_rate"]):
            raise ValueError(f"audio: sample_rate {sample_rate} given, but the AUDIO dict says {audio['sample_rate']}")
        sample_rate = audio["sample_rate"]
        wave = _as_numpy(audio["waveform"], "audio['waveform']")
        if wave.ndim != 3:
            raise ValueError(f"audio['waveform']: expected [batch, channels, samples], got shape {wave.shape}")
        if batch_index is None:
            if wave.shape[0] != 1:
                raise ValueError(
                    f"audio['waveform'] holds a batch of {wave.shape[0]} clips; pass batch_index to choose one"
                )
            batch_index = 0
        if not -wave.shape[0] <= batch_index < wave.shape[0]:
            raise ValueError(f"batch_index {batch_index} is outside the batch of {wave.shape[0]} clips")
        wave = wave[batch_index]
    else:
        if sample_rate is None:
            raise ValueError("audio: a plain array needs its sample_rate")
        wave = _as_numpy(audio, "audio")
        if wave.ndim == 1:
            wave = wave[None]
        elif wave.ndim == 2:
            if wave.shape[0] > _MAX_CHANNELS and wave.shape[1] <= _MAX_CHANNELS:
                raise ValueError(
                    f"audio: shape {wave.shape} looks like [samples, channels]; pass [channels, samples] (transpose it)"
                )
        else:
            raise ValueError(f"audio: expected [samples] or [channels, samples], got shape {wave.shape}")
    if isinstance(sample_rate, bool) or not float(sample_rate).is_integer() or int(sample_rate) <= 0:
        raise ValueError(f"sample_rate: expected a positive integer, got {sample_rate!r}")
    if wave.shape[-1] == 0:
        raise ValueError("audio: the clip has no samples")
    if not np.isfinite(wave).all():
        raise ValueError("audio: the samples contain NaN or infinity")
    return wave, int(sample_rate)


def resample(samples: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Resample [T] or [C, T] with soxr (high quality); output length is round(T * new_rate / orig_rate)."""
    import soxr

    if orig_rate == new_rate:
        return samples.astype(np.float32, copy=False)
    x = np.ascontiguousarray(samples.T if samples.ndim == 2 else samples, dtype=np.float32)
    y = soxr.resample(x, orig_rate, new_rate, quality="HQ")
    return np.ascontiguousarray(y.T if samples.ndim == 2 else y, dtype=np.float32)


def to_mono(
    audio: Any,
    sample_rate: int | None = None,
    target_rate: int = SPEECH_SAMPLE_RATE,
    batch_index: int | None = None,
) -> MonoAudio:
    """Any AUDIO dict or array -> mono float32 at ``target_rate`` (channels averaged, then resampled)."""
    wave, rate = unpack_audio(audio, sample_rate, batch_index)
    if wave.shape[0] == 1:  # the same values as the float64 mean of one channel, without two copies of a long clip
        mono = np.array(wave[0], dtype=np.float32)
    else:
        mono = wave.astype(np.float64).mean(axis=0).astype(np.float32)
    return MonoAudio(resample(mono, rate, target_rate), target_rate, wave.shape[-1] / rate)


def normalize_wave(samples: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance, as transformers' Wav2Vec2FeatureExtractor does when ``do_normalize`` is set."""
    x = samples.astype(np.float64)
    return ((x - x.mean()) / np.sqrt(x.var() + 1e-7)).astype(np.float32)


def audio_duration(audio: Any, sample_rate: int | None = None, batch_index: int | None = None) -> float:
    """Duration in seconds of a ComfyUI AUDIO dict or an array (samples / sample rate), without resampling."""
    wave, rate = unpack_audio(audio, sample_rate, batch_index)
    return wave.shape[-1] / rate


def load_audio_file(path: Any) -> dict[str, Any]:
    """A sound file (wav/flac/ogg via soundfile; mp3/m4a/video containers via PyAV) as a ComfyUI AUDIO dict."""
    from pathlib import Path

    import soundfile as sf
    import torch

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"audio file {path} does not exist")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        wave = data.T
    except (RuntimeError, sf.LibsndfileError):
        from .video_io import read_audio

        found = read_audio(path)
        if found is None:
            raise ValueError(f"{path} has no audio stream") from None
        wave, rate = found
    return {"waveform": torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None], "sample_rate": int(rate)}

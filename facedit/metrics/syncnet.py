"""Lip sync: LSE-D (lower is better) and LSE-C (higher is better) with SyncNet.

The model is the standard ``syncnet_v2.model`` of joonson/syncnet_python (used by Wav2Lip's evaluation
and most talking-face papers), supplied by the user: a state dict of tensors loaded with
``torch.load(weights_only=True)``, or the same tensors in a ``.safetensors`` file.

The scores follow syncnet_python's ``SyncNetInstance.evaluate`` (Wav2Lip ``scores_LSE``):

- video: 25 fps face crops, 224x224, BGR, pixel values 0..255 (not normalised); a window of 5 frames
  per embedding; window ``i`` covers frames ``i .. i+4``.
- audio: 16 kHz mono at int16 scale; MFCC as python_speech_features' ``mfcc`` (13 coefficients, 25 ms
  window, 10 ms hop, 26 mel filters, NFFT 512, pre-emphasis 0.97, lifter 22, c0 replaced by the log
  frame energy); window ``i`` covers MFCC frames ``4i .. 4i+19``.
- ``N = min(video frames, floor(audio samples / 640)) - 5`` windows.
- ``d[i, j]`` = Euclidean distance between video embedding ``i`` and audio embedding ``i + j - vshift``
  (zero vectors outside ``0..N-1``), ``j = 0..2*vshift`` with ``vshift = 15``.
- ``mdist[j] = mean_i d[i, j]``; **LSE-D** ``= min_j mdist[j]``; **LSE-C** ``= median_j mdist[j] - LSE-D``;
  AV offset ``= vshift - argmin_j mdist[j]`` frames.

Face crops follow syncnet_python's ``crop_video``: box half-size ``s`` and centre (median-filtered
over 13 frames), crop rows ``cy - s .. cy + s(1 + 2c)`` and columns ``cx - s(1 + c) .. cx + s(1 + c)``
with ``c = 0.4``, padding with grey 110, resized to 224x224.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..weight_files import read_state_dict
from .faces import Face, FaceDetector, to_uint8

SYNCNET_FPS = 25
SYNCNET_SAMPLE_RATE = 16000
SYNCNET_VSHIFT = 15


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is always present in ComfyUI
        raise ImportError("LSE-D/LSE-C need torch") from exc
    return torch


def build_syncnet(embedding_dim: int = 1024):
    """SyncNet v2 (syncnet_python's ``S``) with the same parameter names as ``syncnet_v2.model``."""
    torch = _torch()
    nn = torch.nn

    def conv2(cin, cout, k, pad=(1, 1), relu_inplace=True):
        return [nn.Conv2d(cin, cout, k, padding=pad), nn.BatchNorm2d(cout), nn.ReLU(inplace=relu_inplace)]

    def conv3(cin, cout, k, stride=(1, 1, 1), pad=(0, 1, 1)):
        return [nn.Conv3d(cin, cout, k, stride=stride, padding=pad), nn.BatchNorm3d(cout), nn.ReLU(inplace=True)]

    def head():
        return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embedding_dim))

    class SyncNet(nn.Module):
        def __init__(self):
            super().__init__()
            # audio: MFCC (B, 1, 13, 20) -> (B, 512, 1, 1)
            self.netcnnaud = nn.Sequential(
                *conv2(1, 64, 3),
                nn.MaxPool2d(1, 1),
                *conv2(64, 192, 3),
                nn.MaxPool2d(3, (1, 2)),
                *conv2(192, 384, 3),
                *conv2(384, 256, 3),
                *conv2(256, 256, 3),
                nn.MaxPool2d(3, 2),
                *conv2(256, 512, (5, 4), pad=(0, 0), relu_inplace=False),
            )
            self.netfcaud = head()
            self.netfclip = head()
            # video: 5 BGR frames (B, 3, 5, 224, 224) -> (B, 512, 1, 1, 1)
            self.netcnnlip = nn.Sequential(
                *conv3(3, 96, (5, 7, 7), stride=(1, 2, 2), pad=0),
                nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
                *conv3(96, 256, (1, 5, 5), stride=(1, 2, 2)),
                nn.MaxPool3d((1, 3, 3), (1, 2, 2), padding=(0, 1, 1)),
                *conv3(256, 256, (1, 3, 3)),
                *conv3(256, 256, (1, 3, 3)),
                *conv3(256, 256, (1, 3, 3)),
                nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
                *conv3(256, 512, (1, 6, 6), pad=0),
            )

        def forward_aud(self, x):
            return self.netfcaud(self.netcnnaud(x).flatten(1))

        def forward_lip(self, x):
            return self.netfclip(self.netcnnlip(x).flatten(1))

    return SyncNet()


def load_syncnet(path: str, device: str = "cpu"):
    """SyncNet v2 from a user-supplied ``syncnet_v2.model`` (torch state dict) or ``.safetensors`` file."""
    _torch()  # a clear ImportError without torch
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"SyncNet weights not found: {path} (syncnet_v2.model from joonson/syncnet_python; LSE-D/LSE-C "
            "are skipped without it)"
        )
    state = read_state_dict(path, "a SyncNet v2 state dict (syncnet_v2.model from joonson/syncnet_python)")
    model = build_syncnet(
        embedding_dim=int(state["netfcaud.3.weight"].shape[0]) if "netfcaud.3.weight" in state else 1024
    )
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]  # absent from older checkpoints
    if missing or unexpected:
        raise ValueError(f"{path}: not SyncNet v2 weights (missing {missing[:4]}, unexpected {unexpected[:4]})")
    return model.eval().to(device)


# ---------------------------------------------------------------- MFCC (python_speech_features conventions)


def _mel_filterbank(nfilt: int, nfft: int, sample_rate: int) -> np.ndarray:
    def hz2mel(hz):
        return 2595 * np.log10(1 + hz / 700.0)

    def mel2hz(mel):
        return 700 * (10 ** (mel / 2595.0) - 1)

    mels = np.linspace(hz2mel(0), hz2mel(sample_rate / 2), nfilt + 2)
    bins = np.floor((nfft + 1) * mel2hz(mels) / sample_rate)
    fbank = np.zeros((nfilt, nfft // 2 + 1))
    for j in range(nfilt):
        lo, mid, hi = bins[j], bins[j + 1], bins[j + 2]
        for i in range(int(lo), int(mid)):
            fbank[j, i] = (i - lo) / (mid - lo)
        for i in range(int(mid), int(hi)):
            fbank[j, i] = (hi - i) / (hi - mid)
    return fbank


def syncnet_mfcc(audio: np.ndarray, sample_rate: int = SYNCNET_SAMPLE_RATE) -> np.ndarray:
    """MFCC [13, frames] of a mono signal at int16 scale, as python_speech_features.mfcc with its defaults."""
    from scipy.fft import dct

    signal = np.asarray(audio, np.float64)
    if signal.ndim != 1 or signal.size == 0:
        raise ValueError(f"audio: expected a non-empty mono signal [S], got shape {signal.shape}")
    signal = np.append(signal[0], signal[1:] - 0.97 * signal[:-1])
    frame_len, step, nfft = round(0.025 * sample_rate), round(0.01 * sample_rate), 512
    count = 1 if signal.size <= frame_len else 1 + math.ceil((signal.size - frame_len) / step)
    padded = np.concatenate([signal, np.zeros((count - 1) * step + frame_len - signal.size)])
    frames = padded[np.arange(frame_len)[None] + step * np.arange(count)[:, None]]
    power = np.abs(np.fft.rfft(frames, nfft)) ** 2 / nfft
    eps = np.finfo(float).eps
    energy = power.sum(1)
    energy = np.where(energy == 0, eps, energy)
    feat = power @ _mel_filterbank(26, nfft, sample_rate).T
    feat = np.where(feat == 0, eps, feat)
    cep = dct(np.log(feat), type=2, axis=1, norm="ortho")[:, :13]
    cep *= 1 + 11.0 * np.sin(np.pi * np.arange(13) / 22)
    cep[:, 0] = np.log(energy)
    return cep.T.astype(np.float32)


# ---------------------------------------------------------------- scores


@dataclass(frozen=True)
class LipSyncScore:
    lse_d: float
    lse_c: float
    offset: int
    windows: int


def lse_from_distances(mdist: np.ndarray, vshift: int = SYNCNET_VSHIFT) -> tuple[float, float, int]:
    """(LSE-D, LSE-C, offset) from the per-offset mean distances ``mdist`` [2*vshift+1]."""
    mdist = np.asarray(mdist, np.float64)
    if mdist.shape != (2 * vshift + 1,):
        raise ValueError(f"mdist: expected {2 * vshift + 1} offsets, got shape {mdist.shape}")
    j = int(np.argmin(mdist))
    lse_d = float(mdist[j])
    median = float(np.sort(mdist)[(mdist.size - 1) // 2])  # torch.median: the lower middle value
    return lse_d, median - lse_d, vshift - j


def offset_distances(video_emb: np.ndarray, audio_emb: np.ndarray, vshift: int = SYNCNET_VSHIFT) -> np.ndarray:
    """``d[i, j]`` = ||v_i - a_{i+j-vshift}|| with zero audio vectors outside the sequence, [N, 2*vshift+1]."""
    torch = _torch()
    v = torch.as_tensor(np.asarray(video_emb, np.float32))
    a = torch.as_tensor(np.asarray(audio_emb, np.float32))
    if v.ndim != 2 or v.shape != a.shape:
        raise ValueError(f"embeddings: expected two [N, D] arrays of one shape, got {tuple(v.shape)}, {tuple(a.shape)}")
    win = 2 * vshift + 1
    padded = torch.nn.functional.pad(a, (0, 0, vshift, vshift))
    windows = padded.unfold(0, win, 1).permute(0, 2, 1)  # (N, win, D)
    d = torch.nn.functional.pairwise_distance(v[:, None, :].expand_as(windows), windows)
    return d.numpy()


def lse_from_embeddings(
    video_emb: np.ndarray, audio_emb: np.ndarray, vshift: int = SYNCNET_VSHIFT
) -> tuple[float, float, int]:
    """(LSE-D, LSE-C, offset) from per-window video and audio embeddings [N, D]."""
    return lse_from_distances(offset_distances(video_emb, audio_emb, vshift).mean(0), vshift)


def syncnet_crops(frames: Sequence[np.ndarray], faces: Sequence[Face | None], crop_scale: float = 0.4) -> np.ndarray:
    """224x224 RGB uint8 face crops [T, 224, 224, 3]; frames without a face take the nearest detection."""
    import cv2

    if len(frames) != len(faces):
        raise ValueError(f"faces: expected one entry per frame ({len(frames)}), got {len(faces)}")
    known = [i for i, f in enumerate(faces) if f is not None]
    if not known:
        raise ValueError("no face was found in any frame of the segment")
    filled = [faces[min(known, key=lambda k, i=i: abs(k - i))] for i in range(len(faces))]
    boxes = np.array([f.box for f in filled], np.float64)
    size = np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2
    cy, cx = (boxes[:, 1] + boxes[:, 3]) / 2, (boxes[:, 0] + boxes[:, 2]) / 2
    if len(frames) >= 13:
        from scipy.signal import medfilt

        size, cy, cx = (medfilt(x, 13) for x in (size, cy, cx))
    out = np.empty((len(frames), 224, 224, 3), np.uint8)
    for i, frame in enumerate(frames):
        img = to_uint8(frame)
        bs = float(size[i])
        pad = int(bs * (1 + 2 * crop_scale))
        padded = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), constant_values=110)
        my, mx = cy[i] + pad, cx[i] + pad
        face = padded[
            int(my - bs) : int(my + bs * (1 + 2 * crop_scale)),
            int(mx - bs * (1 + crop_scale)) : int(mx + bs * (1 + crop_scale)),
        ]
        out[i] = cv2.resize(face, (224, 224))
    return out


def resample_frame_indices(count: int, fps: float, target_fps: float = SYNCNET_FPS) -> np.ndarray:
    """Indices of the source frames shown at ``target_fps`` (nearest frame, like ffmpeg ``-r 25``)."""
    duration = count / float(fps)
    n = int(math.floor(duration * target_fps + 1e-9))
    return np.minimum(np.rint(np.arange(n) * float(fps) / target_fps).astype(int), count - 1)


def audio_for_syncnet(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """[C, S] or [S] float -1..1 at any rate -> mono 16 kHz at int16 scale (float64), as syncnet reads wavs."""
    wave = np.asarray(audio, np.float64)
    if wave.ndim == 2:
        wave = wave.mean(0)
    if wave.ndim != 1:
        raise ValueError(f"audio: expected [C, S] or [S], got shape {np.shape(audio)}")
    if sample_rate != SYNCNET_SAMPLE_RATE:
        import soxr

        wave = soxr.resample(wave, sample_rate, SYNCNET_SAMPLE_RATE)
    return np.clip(np.rint(wave * 32768.0), -32768, 32767)


def lip_sync_score(
    model,
    frames: Sequence[np.ndarray],
    fps: float,
    audio: np.ndarray,
    sample_rate: int,
    detector: FaceDetector,
    device: str = "cpu",
    batch_size: int = 20,
    vshift: int = SYNCNET_VSHIFT,
) -> LipSyncScore:
    """LSE-D/LSE-C of a video segment (RGB frames at ``fps``) against its speech (``audio`` from frame 0)."""
    torch = _torch()
    index = resample_frame_indices(len(frames), fps)
    picked = [frames[i] for i in index]
    crops = syncnet_crops(picked, [detector(to_uint8(f)) for f in picked])
    pcm = audio_for_syncnet(audio, sample_rate)
    mfcc = syncnet_mfcc(pcm)
    windows = min(len(crops), pcm.size // 640) - 5
    if windows < 1:
        raise ValueError(
            f"segment too short for SyncNet: {len(crops)} frames at 25 fps and {pcm.size / 16000:.2f} s of audio "
            "give no 5-frame window"
        )
    video = torch.from_numpy(np.ascontiguousarray(crops[..., ::-1].transpose(3, 0, 1, 2))).float()  # (3, T, H, W) BGR
    cc = torch.from_numpy(mfcc).float()
    v_out, a_out = [], []
    with torch.inference_mode():
        for start in range(0, windows, batch_size):
            idx = range(start, min(windows, start + batch_size))
            v_in = torch.stack([video[:, i : i + 5] for i in idx]).to(device)
            a_in = torch.stack([cc[None, :, 4 * i : 4 * i + 20] for i in idx]).to(device)
            v_out.append(model.forward_lip(v_in).float().cpu())
            a_out.append(model.forward_aud(a_in).float().cpu())
    lse_d, lse_c, offset = lse_from_embeddings(torch.cat(v_out).numpy(), torch.cat(a_out).numpy(), vshift)
    return LipSyncScore(lse_d, lse_c, offset, windows)

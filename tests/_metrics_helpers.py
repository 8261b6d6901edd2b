"""Synthetic videos for the metrics and evaluation tests: a smooth texture panning one pixel per frame."""

from __future__ import annotations

import cv2
import numpy as np


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.random((h, w, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.5)
    lo, hi = smooth.min(), smooth.max()
    return 0.15 + 0.7 * (smooth - lo) / (hi - lo)


def panning_video(
    t: int, h: int = 48, w: int = 64, speed: float = 1.0, seed: int = 0, start: float = 0.0
) -> np.ndarray:
    """``t`` frames of a texture seen through a window moving ``speed`` pixels right per frame."""
    canvas = texture(h + 8, w + 256, seed)  # fixed size: the same seed gives the same scene
    frames = []
    for i in range(t):
        x = 4 + (start + i) * speed
        m = np.float32([[1, 0, -x], [0, 1, -4]])
        frames.append(cv2.warpAffine(canvas, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return np.stack(frames).astype(np.float32)


def mouth_patch(frames: np.ndarray, strengths: np.ndarray) -> np.ndarray:
    """Add a soft dark blob (a 'mouth' that opens) with a per-frame strength: a smooth local edit."""
    h, w = frames.shape[1:3]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    blob = np.exp(-(((x - w / 2) / 6) ** 2 + ((y - 0.7 * h) / 3) ** 2))[..., None]
    out = frames.copy()
    for i, s in enumerate(strengths):
        out[i] = np.clip(out[i] - 0.3 * s * blob, 0, 1)
    return out

"""Write the short sample clip the example workflows load: the sample portrait with a small synthetic head motion
and the sample original speech (facedit/samples), as an H.264 + AAC mp4.

    python workflows/make_sample_video.py OUT.mp4 [--size 256] [--fps 25]

Copy OUT.mp4 to ComfyUI/input/facedit_sample.mp4 (and facedit/samples/*.wav, portrait.jpg to ComfyUI/input/).
"""

from __future__ import annotations

import argparse
import math
import sys
import wave
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "facedit" / "samples"


def portrait_square(size: int) -> np.ndarray:
    """The sample portrait, centre-cropped to a square around the face, RGB float32 (size, size, 3)."""
    image = cv2.imread(str(SAMPLES / "portrait.jpg"), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(SAMPLES / "portrait.jpg")
    h, w = image.shape[:2]
    side = min(h, w)
    top = max(0, (h - side) // 3)  # the face sits in the upper part of the photograph
    square = image[top : top + side, (w - side) // 2 : (w - side) // 2 + side]
    square = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(square, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def sample_frames(n_frames: int, size: int = 256, fps: float = 25.0) -> np.ndarray:
    """(n_frames, size, size, 3) float32: the portrait turning and nodding slightly (a second or two per cycle)."""
    base = portrait_square(size)
    centre = (size / 2, size * 0.45)
    frames = np.empty((n_frames, size, size, 3), np.float32)
    for i in range(n_frames):
        t = i / fps
        angle = 2.0 * math.sin(2 * math.pi * 0.6 * t)
        matrix = cv2.getRotationMatrix2D(centre, angle, 1.0 + 0.01 * math.sin(2 * math.pi * 0.4 * t))
        matrix[0, 2] += 0.015 * size * math.sin(2 * math.pi * 0.5 * t)
        matrix[1, 2] += 0.01 * size * math.sin(2 * math.pi * 0.8 * t + 1.0)
        frames[i] = cv2.warpAffine(base, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return np.clip(frames, 0.0, 1.0)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as f:
        rate, n, channels, width = f.getframerate(), f.getnframes(), f.getnchannels(), f.getsampwidth()
        data = np.frombuffer(f.readframes(n), dtype={2: np.int16, 4: np.int32}[width])
    return (data.reshape(-1, channels).T.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)), rate


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    from facedit.video_io import write_video

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the mp4 to write")
    parser.add_argument("--size", type=int, default=256, help="frame width and height in pixels (even)")
    parser.add_argument("--fps", type=float, default=25.0, help="frame rate")
    parser.add_argument("--seconds", type=float, default=None, help="cut the clip (and its speech) to this length")
    args = parser.parse_args(argv)
    audio, rate = read_wav(SAMPLES / "original.wav")
    duration = audio.shape[1] / rate if args.seconds is None else min(args.seconds, audio.shape[1] / rate)
    n_frames = int(math.floor(duration * args.fps + 0.5))
    audio = audio[:, : int(round(duration * rate))]
    # a keyframe every second: the smart render then copies the GOPs away from the edit, as with a camera's file
    write_video(
        args.out,
        sample_frames(n_frames, args.size, args.fps),
        args.fps,
        audio=audio,
        sample_rate=rate,
        keyframe_interval=round(args.fps),
    )
    print(
        f"wrote {args.out}: {n_frames} frames {args.size}x{args.size} at {args.fps:g} fps, {duration:.3f} s of speech"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Edit cost is the edit's, not the clip's: one 3 s edit in a 10 s clip and in a 10 min clip, end to end.

    python bench/bench_edit.py                        # 10 s and 10 min at 256x256, 25 fps
    python bench/bench_edit.py --minutes 2            # a shorter long clip
    python bench/bench_edit.py --size 3840x2160 --minutes 0     # memory of a 4K edit: the short clip only

Each clip runs through ``facedit.pipeline.edit_file`` (what ``python -m facedit edit`` calls: plan, speech
encoding, motion extraction and infill of the edit windows, LivePortrait render, smart render of the file) with
random-weight stand-in models (``load_models(allow_random=True)``: LivePortrait ``tiny``, a small WavLM, FacEDiT
``tiny``), so the figures are the pack's own costs, not a real network's. The face box is given, as
``--face-box`` would be, since a random picture has no face to detect. The edited speech is what a speech edit
(``facedit.tts.edit_speech``) gives back: the clip's own track, decoded, with the 3 s span re-spoken, as a 16-bit
wav, so the smart render copies the track's AAC packets outside the edit (``--speech resynthesized``: speech
with none of the track's samples, as an editor that re-synthesises everything gives it, so every packet is
encoded). Every clip runs in its own process, so its peak resident memory is its own. Sources and speech are made
once and cached in ``--work``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FPS = 25
SPAN = (4.0, 7.0)
SAMPLE_RATE = 16000


def _speech_like(t: np.ndarray, pitch: float) -> np.ndarray:
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t)
    return (0.2 * envelope * np.sin(2 * np.pi * pitch * t * (1 + 0.1 * np.sin(t)))).astype(np.float32)


def make_speech(video: Path, speech: Path, resynthesized: bool = False) -> None:
    """The edited speech as a speech edit gives it back (16-bit wav): the clip's own track, decoded, with the 3 s
    span re-spoken (here another pitch); resynthesized: as an editor that re-synthesises the whole track gives
    it back (the source's wave before its AAC encoding, none of the track's decoded samples)."""
    import soundfile as sf

    from facedit.video_io import read_audio

    wave, rate = read_audio(video)
    if resynthesized:
        wave = _speech_like(np.arange(wave.shape[-1]) / rate, 180.0)[None]
    a, b = int(SPAN[0] * rate), int(SPAN[1] * rate)
    wave[:, a:b] = _speech_like(np.arange(b - a) / rate, 240.0)
    tmp = speech.with_name(speech.stem + ".partial" + speech.suffix)
    sf.write(str(tmp), wave.T, rate, subtype="PCM_16")
    tmp.replace(speech)


def make_clip(video: Path, seconds: float, width: int, height: int) -> None:
    """A moving-gradient x264 clip (keyint 250, B-frames) with a speech-like AAC track."""
    import av

    frames = int(round(seconds * FPS))
    wave = _speech_like(np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE, 180.0)
    x, y = np.arange(width + 4 * frames) % 512, np.arange(height + 2 * frames) % 512
    red = (127 + 100 * np.sin(x / 60.0)).astype(np.uint8)
    green = (127 + 100 * np.cos(y / 50.0)).astype(np.uint8)
    tmp = video.with_name(video.stem + ".partial" + video.suffix)
    with av.open(str(tmp), "w") as c:
        s = c.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "23", "g": "250", "bf": "2"}
        a = c.add_stream("aac", rate=SAMPLE_RATE)
        a.layout = "mono"
        for i in range(frames):
            rgb = np.empty((height, width, 3), np.uint8)
            rgb[..., 0] = red[4 * i : 4 * i + width][None, :]
            rgb[..., 1] = green[2 * i : 2 * i + height][:, None]
            rgb[..., 2] = 90
            for packet in s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
        step = 1024
        for k in range(0, len(wave), step):
            chunk = wave[None, k : k + step]
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = SAMPLE_RATE, k
            for packet in a.encode(frame):
                c.mux(packet)
        for packet in a.encode():
            c.mux(packet)
    tmp.replace(video)


def run_one(video: Path, speech: Path, out: Path, width: int, height: int, threads: int) -> dict:
    """One edit in this process: seconds per stage, total, peak resident memory."""
    import torch

    from facedit.edits import SpanEdit
    from facedit.models import load_models
    from facedit.pipeline import EditOptions, edit_file

    torch.set_num_threads(threads)
    models = load_models(out.parent / "no-models", allow_random=True)
    side = min(width, height) * 0.6
    box = ((width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2)
    options = EditOptions(face_box=box, steps=8)
    spent: dict[str, float] = {}
    clock = [time.perf_counter()]

    def progress(stage: str, done: int, total: int) -> None:
        # The stages interleave (frames are rendered as the writer asks for them): the time since the previous
        # report went into the work this report announces.
        now = time.perf_counter()
        spent[stage] = spent.get(stage, 0.0) + now - clock[0]
        clock[0] = now

    start, cpu_start = clock[0], _cpu_seconds()
    edit_file(video, speech, out, models, spans=[SpanEdit(SPAN[0], SPAN[1], SPAN[1] - SPAN[0])], options=options,
              progress=progress)  # fmt: skip
    total = time.perf_counter() - start
    stages = {**spent, "after the last report": time.perf_counter() - clock[0]}
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"total_s": total, "cpu_s": _cpu_seconds() - cpu_start, "stages": stages, "peak_mib": peak_kib / 1024}


def _cpu_seconds() -> float:
    """CPU time of this process, all threads: unlike wall time, barely moved by other work on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="length of the long clip (default 10; 0: none)")
    p.add_argument("--short", type=float, default=10.0, help="seconds of the short clip (default 10)")
    p.add_argument("--size", default="256x256", help="frame size WxH (default 256x256)")
    p.add_argument("--threads", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    p.add_argument("--work", default="bench_edit_work", help="where sources are cached")
    p.add_argument("--speech", choices=("spliced", "resynthesized"), default="spliced",
                   help="edited speech: the track with the span re-spoken (default; its AAC packets outside the edit "
                   "are copied) or all of it synthesised anew (every packet encoded)")  # fmt: skip
    p.add_argument("--one", nargs=3, metavar=("VIDEO", "SPEECH", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        p.error(f"--size must be WxH, e.g. 3840x2160, got {args.size!r}")
    if args.one:
        video, speech, out = (Path(v) for v in args.one)
        print(json.dumps(run_one(video, speech, out, width, height, args.threads)))
        return
    if args.short < SPAN[1] + 1 or 0 < args.minutes * 60 < SPAN[1] + 1:
        p.error(f"both clips must last at least {SPAN[1] + 1:.0f} s (the edit spans {SPAN[0]}-{SPAN[1]} s)")

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"one {SPAN[1] - SPAN[0]:.0f} s edit ({SPAN[0]}-{SPAN[1]} s), {width}x{height} at {FPS} fps, "
          f"{args.threads} threads, random-weight stand-in models, 8 sampler steps, {args.speech} speech; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip
    results = {}
    for seconds in (args.short, args.minutes * 60) if args.minutes > 0 else (args.short,):
        tag = f"{width}x{height}_{seconds:g}s"
        video, speech = work / f"edit_src_{tag}.mp4", work / f"edit_speech_{args.speech}_{tag}.wav"
        if not video.exists():
            t = time.perf_counter()
            make_clip(video, seconds, width, height)
            print(f"  made the {seconds:g} s source in {time.perf_counter() - t:.0f} s")
        if not speech.exists():
            make_speech(video, speech, resynthesized=args.speech == "resynthesized")
        out = work / f"edit_out_{tag}.mp4"
        cmd = [sys.executable, os.path.abspath(__file__), "--one", str(video), str(speech), str(out),
               "--size", args.size, "--threads", str(args.threads)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"the {seconds:g} s edit failed:\n{done.stderr[-3000:]}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
        results[seconds] = r
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in r["stages"].items())
        print(f"{seconds:>7g} s clip: {r['total_s']:6.1f} s total ({r['cpu_s']:.1f} s CPU), peak memory "
              f"{r['peak_mib']:.0f} MiB  ({stages})")  # fmt: skip
    if args.minutes <= 0:
        return
    short, long = results[args.short], results[args.minutes * 60]
    ratio = long["total_s"] / short["total_s"]
    print(f"time ratio long/short: {ratio:.2f} (target <= 1.2; CPU time {long['cpu_s'] / short['cpu_s']:.2f}); "
          f"memory ratio: {long['peak_mib'] / short['peak_mib']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()

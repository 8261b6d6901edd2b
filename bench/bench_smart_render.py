"""Time to write an edited clip with one edit: smart render (copy untouched GOPs) vs a full re-encode.

    python bench/bench_smart_render.py                # 10 minutes of 1080p at 25 fps (slow to prepare)
    python bench/bench_smart_render.py --minutes 0.5  # a shorter run
    python bench/bench_smart_render.py --skip-full --source-preset ultrafast  # 10 minutes, smart render only

The source is encoded once with x264 (keyint 250, B-frames) and cached beside --work. The rendered frames are
the source frames with a changed mouth region inside the edit's mask; both writers read them lazily. The peak
resident memory is the process's so far (run with a cached source for the smart render's own).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from facedit.edits import plan_from_spans  # noqa: E402
from facedit.video import OutputFormat, write_edited_video  # noqa: E402
from facedit.video_io import VideoFrames  # noqa: E402


def make_source(path: str, frames: int, fps: int, width: int, height: int, preset: str = "veryfast") -> None:
    import av

    x, y = np.arange(width + 4 * frames), np.arange(height + 2 * frames)
    red = (127 + 100 * np.sin(x / 60.0)).astype(np.uint8)  # moving gradients, sliced per frame (cheap)
    green = (127 + 100 * np.cos((y - 2 * frames) / 50.0)).astype(np.uint8)
    with av.open(path, "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"preset": preset, "crf": "20", "g": "250", "bf": "3"}
        for i in range(frames):
            rgb = np.empty((height, width, 3), np.uint8)
            rgb[..., 0] = red[4 * i : 4 * i + width][None, :]
            rgb[..., 1] = green[2 * frames - 2 * i : 2 * frames - 2 * i + height][:, None]
            rgb[..., 2] = (i * 3) % 256
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))


class Rendered:
    """Target frames on demand: the mapped source frame, with a brighter mouth box where the plan infills."""

    def __init__(self, source: VideoFrames, plan):
        self.source, self.plan = source, plan

    def __len__(self) -> int:
        return self.plan.target_frames

    def __getitem__(self, k: int) -> np.ndarray:
        frame = np.array(self.source[int(round(self.plan.source_time[k]))])
        if self.plan.infill_mask[k]:
            h, w = frame.shape[:2]
            frame[h // 2 : h // 2 + h // 6, w // 3 : 2 * w // 3] *= 0.8
        return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--work", default="bench_smart_render_work")
    parser.add_argument("--skip-full", action="store_true", help="time the smart render only")
    parser.add_argument("--source-preset", default="veryfast", help="x264 preset that prepares the source")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    frames = round(args.minutes * 60 * args.fps)
    src = os.path.join(args.work, f"source_{args.width}x{args.height}_{frames}.mp4")
    if not os.path.exists(src):
        t0 = time.perf_counter()
        make_source(src + ".tmp.mp4", frames, args.fps, args.width, args.height, args.source_preset)
        os.replace(src + ".tmp.mp4", src)
        print(f"prepared {src} in {time.perf_counter() - t0:.1f} s")
    duration = frames / args.fps
    mid = duration / 2
    plan = plan_from_spans([(mid, mid + 0.4, 0.6)], original_duration_s=duration, fps=args.fps, source_frames=frames)
    print(f"{args.minutes:g} min {args.width}x{args.height} @ {args.fps} fps: {frames} -> {plan.target_frames} frames, "
          f"one edit of {int(plan.infill_mask.sum())} masked frames")  # fmt: skip
    audio = np.zeros((1, round(plan.target_frames / args.fps * 16000)), np.float32)
    runs = [("smart", OutputFormat())] + ([] if args.skip_full else [("full h264 crf 18", OutputFormat(kind="h264"))])
    times = {}
    for name, output in runs:
        out = os.path.join(args.work, f"out_{name.split()[0]}.mp4")
        rendered = Rendered(VideoFrames(src), plan)
        frames_in = rendered if output.kind == "same" else (rendered[k] for k in range(len(rendered)))
        t0 = time.perf_counter()
        report = write_edited_video(out, src, plan, frames_in, audio=audio, sample_rate=16000, output=output)
        seconds = times[name] = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{name:>17}: {seconds:8.1f} s  {plan.target_frames / seconds:7.1f} frames/s  "
              f"{os.path.getsize(out) / 1e6:8.1f} MB  peak {peak:.0f} MiB  {report.summary()}")  # fmt: skip
    if len(times) == 2:
        smart, full = times.values()
        print(f"smart render: {full / smart:.1f}x faster than the full re-encode")


if __name__ == "__main__":
    main()

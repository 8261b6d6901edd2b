"""Command line: ``python -m facedit edit | generate | demo``.

edit      re-animate the edited span of a talking-head video to new speech (mp4 with the speech muxed in)
generate  a talking clip from a portrait and speech
demo      the whole editing path on the built-in sample data, in one command
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

SAMPLES = Path(__file__).resolve().parent / "samples"


def _load_image(path: str | Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path} is not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


_last_report = [0.0]


def _bar(stage: str, done: int, total: int) -> None:
    now = time.monotonic()
    if done < total and now - _last_report[0] < 0.5:
        return
    _last_report[0] = now
    width = 30
    filled = int(width * done / max(total, 1))
    end = "\n" if done >= total else "\r"
    print(f"  {stage:<9} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end=end, file=sys.stderr, flush=True)


def _options(args: argparse.Namespace):
    from .pipeline import EditOptions

    box = tuple(float(v) for v in args.face_box.split(",")) if args.face_box else None
    if box is not None and len(box) != 4:
        raise ValueError(f"--face-box must be x0,y0,x1,y1, got {args.face_box!r}")
    return EditOptions(
        context_frames=args.context_frames, motion_context_s=args.motion_context, steps=args.steps, sway=args.sway,
        guidance=args.guidance, seed=args.seed, rerender_all=args.rerender_all, face_index=args.face_index,
        face_box=box,
    )  # fmt: skip


def _models(args: argparse.Namespace, allow_random: bool = False):
    import torch

    from .models import load_models

    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.precision]
    return load_models(args.models, device=args.device, dtype=dtype, allow_random=allow_random)


def _spans(text: str | None) -> list[tuple[float, float, float]] | None:
    if not text:
        return None
    spans = []
    for item in text.split(";"):
        parts = item.replace(",", " ").split()
        if len(parts) != 3:
            raise ValueError(f"--spans: each edit is 'start end new_duration' in seconds, got {item!r}")
        spans.append(tuple(float(p) for p in parts))
    return spans


def _plan_audio(video: str, speech: str) -> dict:
    """The waveforms the plan picture draws: the video's own speech (where it has an audio stream) and the edited."""
    from .audio import load_audio_file
    from .video_io import read_audio

    audio = {"edited_audio": load_audio_file(speech)}
    found = read_audio(Path(video))
    if found is not None:
        audio["original_audio"] = (found[0], found[1])
    return audio


def run_edit(args: argparse.Namespace, allow_random: bool = False) -> Path:
    from .pipeline import edit_file
    from .plan_preview import save_plan_png
    from .timestamps import load_words

    spans = _spans(args.spans)
    out = Path(args.out)
    models = _models(args, allow_random)
    plan = edit_file(
        args.video, args.speech, out, models, spans=spans, original_duration_s=args.original_duration,
        original_words=None if spans else load_words(args.original_words),
        edited_words=None if spans else load_words(args.edited_words), options=_options(args), progress=_bar,
    )  # fmt: skip
    save_plan_png(plan, str(out.with_suffix(".plan.png")), **_plan_audio(args.video, args.speech))
    print(f"plan: {plan.source_frames} -> {plan.target_frames} frames at {plan.fps:g} fps; {len(plan.edits)} edit(s): "
          + ", ".join(f"{e.type} {' '.join(e.edited_words or e.original_words)!r}" for e in plan.edits),
          file=sys.stderr)  # fmt: skip
    for warning in plan.warnings:
        print(f"plan warning: {warning}", file=sys.stderr)
    print(f"wrote {out} and {out.with_suffix('.plan.png')}", file=sys.stderr)
    return out


def run_generate(args: argparse.Namespace) -> Path:
    from .audio import load_audio_file
    from .pipeline import generate, write_clip

    result = generate(_load_image(args.portrait), load_audio_file(args.speech), _models(args), fps=args.fps,
                      options=_options(args), progress=_bar)  # fmt: skip
    out = Path(args.out)
    write_clip(out, result.frames, len(result.frames), args.fps, result.audio, _bar)
    print(f"wrote {out} ({len(result.frames)} frames at {args.fps:g} fps)", file=sys.stderr)
    return out


def run_demo(args: argparse.Namespace) -> Path:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    video = SAMPLES / "facedit_sample.mp4"
    print(f"sample recording: {video} ('we will meet at the station at noon')", file=sys.stderr)
    print("edited speech:    'we will meet at the old harbour at noon'", file=sys.stderr)
    from .models import find_facedit, find_wavlm, has_liveportrait

    models_dir = Path(args.models)
    missing = [name for name, ok in (("LivePortrait", has_liveportrait(models_dir)),
                                     ("WavLM", find_wavlm(models_dir) is not None),
                                     ("FacEDiT", find_facedit(models_dir) is not None)) if not ok]  # fmt: skip
    if missing:
        print(f"NOTE: no weights for {', '.join(missing)} in {models_dir}: the demo uses small RANDOM-initialised "
              "stand-ins for them, so every stage runs but the re-animated face is meaningless. Put the real "
              "weights there (see README) for real results.", file=sys.stderr)  # fmt: skip
    args.video = str(video)
    args.speech = str(SAMPLES / "edited.wav")
    args.original_words = str(SAMPLES / "original_words.json")
    args.edited_words = str(SAMPLES / "edited_words.json")
    args.original_duration = None
    args.spans = None
    return run_edit(args, allow_random=True)


def _common(p: argparse.ArgumentParser, out_default: str | None = None) -> None:
    p.add_argument("--out", required=out_default is None, default=out_default, help="output .mp4")
    p.add_argument("--models", default="models", help="folder with liveportrait/, wavlm/, facedit/ (default ./models)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps (default cpu)")
    p.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default="fp32")
    p.add_argument("--steps", type=int, default=32, help="Euler steps of the flow-matching sampler (default 32)")
    p.add_argument("--sway", type=float, default=-1.0, help="Sway time-step coefficient (default -1)")
    p.add_argument("--guidance", type=float, default=0.0, help="classifier-free guidance strength (default 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--context-frames", type=int, default=3, help="frames regenerated each side of an edit")
    p.add_argument("--motion-context", type=float, default=1.0, help="seconds of known motion the model sees")
    p.add_argument("--rerender-all", action="store_true", help="re-render every frame (uniform look, slower)")
    p.add_argument("--face-index", type=int, default=0, help="which face when several (0 = largest)")
    p.add_argument("--face-box", help="manual face box x0,y0,x1,y1 instead of detection")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m facedit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("edit", help="edit a talking-head video to new speech")
    p.add_argument("--video", required=True, help="original video (mp4/mov/mkv/webm)")
    p.add_argument("--speech", required=True, help="edited speech (wav/flac/mp3/...)")
    p.add_argument("--original-words", help="word timestamps of the original speech (WhisperX/whisper JSON, text)")
    p.add_argument("--edited-words", help="word timestamps of the edited speech")
    p.add_argument("--spans", help="manual edits instead of timestamps: 'start end new_duration;...' (seconds)")
    p.add_argument("--original-duration", type=float, help="seconds of the original speech (default: its audio)")
    _common(p)
    p = sub.add_parser("generate", help="a talking clip from a portrait and speech")
    p.add_argument("--portrait", required=True)
    p.add_argument("--speech", required=True)
    p.add_argument("--fps", type=float, default=25.0)
    _common(p)
    p = sub.add_parser("demo", help="the whole editing path on built-in sample data")
    _common(p, out_default="facedit_demo/demo_edited.mp4")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    if args.command == "edit" and not args.spans and not (args.original_words and args.edited_words):
        print("edit: give --original-words and --edited-words, or --spans", file=sys.stderr)
        return 2
    try:
        {"edit": run_edit, "generate": run_generate, "demo": run_demo}[args.command](args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Command line: ``python -m facedit edit | generate | demo``.

edit      re-animate the edited span of a talking-head video to new speech (mp4 with the speech muxed in)
generate  a talking clip from a portrait and speech
demo      the whole editing path on the built-in sample data, in one command
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from .cli import check_device, run_reporting

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

    if args.precision == "fast":  # LivePortrait's fast mode; the other models fp32
        return load_models(args.models, device=args.device, allow_random=allow_random, liveportrait_precision="fast")
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.precision]
    return load_models(args.models, device=args.device, dtype=dtype, allow_random=allow_random)


def _spans(text: str | None) -> list | None:
    from .span_text import parse_spans

    return parse_spans(text, "--spans") if text else None


def _plan_audio(video: str, speech: str) -> dict:
    """The waveforms the plan picture draws: the video's own speech (where it has an audio stream) and the edited."""
    from .audio import load_audio_file
    from .video_io import read_audio

    audio = {"edited_audio": load_audio_file(speech)}
    found = read_audio(Path(video))
    if found is not None:
        audio["original_audio"] = (found[0], found[1])
    return audio


def _words(path: str, option: str, duration_s: float, against: str) -> list:
    """A words file checked against its speech's duration, as the Edit Plan node checks it."""
    from .timestamps import TimestampError, load_words

    try:
        return load_words(path, duration_s=duration_s)
    except TimestampError as err:
        raise ValueError(f"{option} (checked against {against}, {duration_s:.3f} s): {err}") from err


def _show_plan(plan) -> None:
    """The plan in one line and every warning it carries, before the long stages start."""
    print(f"plan: {plan.source_frames} -> {plan.target_frames} frames at {plan.fps:g} fps; {len(plan.edits)} edit(s): "
          + ", ".join(f"{e.type} {' '.join(e.edited_words or e.original_words)!r}" for e in plan.edits),
          file=sys.stderr)  # fmt: skip
    for warning in plan.warnings:
        print(f"plan warning: {warning}", file=sys.stderr)


def run_edit(args: argparse.Namespace, allow_random: bool = False) -> Path:
    from .audio import audio_duration, load_audio_file
    from .pipeline import edit_file, original_speech_duration
    from .plan_preview import save_plan_png
    from .video import OutputFormat, check_output_path, write_plan_file
    from .video_io import probe_video

    check_output_path(args.out, args.video, args.speech)
    output = OutputFormat(kind=args.format, crf=args.crf, pix_fmt=args.pix_fmt)
    spans = _spans(args.spans)
    out = Path(args.out)
    models = _models(args, allow_random)
    video_fps = getattr(args, "fps", None)
    info = probe_video(args.video, video_fps)
    original_s, against = args.original_duration, "--original-duration"
    if original_s is None:
        original_s = original_speech_duration(args.video, info.frame_count, float(info.fps))
        against = "the video's audio track" if info.has_audio else "the video's duration"
    original_words = edited_words = None
    if not spans:
        edited_s = audio_duration(load_audio_file(args.speech))
        original_words = _words(args.original_words, "--original-words", original_s, against)
        edited_words = _words(args.edited_words, "--edited-words", edited_s, "--speech")
    plan = edit_file(
        args.video, args.speech, out, models, spans=spans, original_duration_s=original_s,
        original_words=original_words, edited_words=edited_words, options=_options(args), progress=_bar,
        output=output, fps=video_fps, on_plan=_show_plan,
    )  # fmt: skip
    save_plan_png(plan, str(out.with_suffix(".plan.png")), **_plan_audio(args.video, args.speech))
    write_plan_file(plan, out, out.with_suffix(".plan.json"))  # read by facedit.evaluate: the real seams
    print(f"wrote {out}, {out.with_suffix('.plan.png')} and {out.with_suffix('.plan.json')}", file=sys.stderr)
    return out


def _hf_folder(root: Path, what: str, required: bool) -> Path | None:
    """The first Hugging Face model folder (config.json) at or under ``root``."""
    found = sorted(p.parent for p in root.rglob("config.json")) if root.is_dir() else []
    if not found and required:
        raise FileNotFoundError(f"no {what} model under {root}: put a Hugging Face folder there (config.json, weights)")
    return found[0] if found else None


def transcribe_file(path: str | Path, models_dir: Path, device: str = "cpu", language: str | None = None) -> list:
    """Word timestamps of a media file's speech: Whisper from models/whisper, refined by models/ctc when present."""
    from .audio import load_audio_file
    from .speech.align import load_aligner
    from .speech.transcribe import load_whisper

    audio = load_audio_file(path)
    whisper = load_whisper(_hf_folder(models_dir / "whisper", "Whisper", True), device=device)
    ctc = _hf_folder(models_dir / "ctc", "CTC", False)
    aligner = load_aligner(ctc, device=device) if ctc is not None else None
    return whisper.transcribe(audio, language=language, aligner=aligner, progress=lambda d, t: _bar("transcribe", d, t))


def _speech_edit_files(models_dir: Path) -> tuple[Path, Path]:
    """(F5-TTS checkpoint with vocab.txt beside it, Vocos folder) under ``models_dir``."""
    f5_dir = models_dir / "f5tts"
    checkpoints = sorted(f5_dir.rglob("*.safetensors")) if f5_dir.is_dir() else []
    if not checkpoints or not (checkpoints[0].parent / "vocab.txt").is_file():
        raise FileNotFoundError(f"no F5-TTS model in {f5_dir}: put model_1250000.safetensors and vocab.txt there")
    vocos_dir = models_dir / "vocos"
    configs = sorted(vocos_dir.rglob("config.yaml")) if vocos_dir.is_dir() else []
    if not configs:
        raise FileNotFoundError(f"no Vocos vocoder in {vocos_dir}: put vocos-mel-24khz/ (config.yaml, weights) there")
    return checkpoints[0], configs[0].parent


def speak_edited_text(
    video: str | Path, words: list, text: str, models_dir: Path, out: Path, device: str
) -> tuple[Path, list]:
    """The video's speech re-spoken as ``text`` with F5-TTS (models/f5tts: *.safetensors + vocab.txt; models/vocos),
    written to ``out`` (wav, the original sample rate); returns its path and the edited words."""
    import soundfile as sf

    from .audio import load_audio_file
    from .tts import edit_speech, load_f5tts, load_vocos

    checkpoint, vocos = _speech_edit_files(models_dir)
    f5 = load_f5tts(checkpoint, checkpoint.parent / "vocab.txt", device=device)
    edited = edit_speech(load_audio_file(video), words, text, f5, load_vocos(vocos, device=device),
                         progress=lambda d, t: _bar("speech edit", d, t))  # fmt: skip
    wave = edited.audio["waveform"][0].numpy().T
    sf.write(str(out), wave, int(edited.audio["sample_rate"]), subtype="FLOAT")
    return out, list(edited.words)


def run_text_edit(args: argparse.Namespace) -> Path:
    """--text: transcribe the video's speech, re-speak it as the new text, then edit to that speech."""
    from .timestamps import words_to_list
    from .video import check_output_path
    from .video_io import probe_video

    check_output_path(args.out, args.video)
    if not Path(args.video).is_file():
        raise FileNotFoundError(f"--video: {args.video} does not exist")
    if not probe_video(args.video).has_audio:
        raise ValueError(f"--video: {args.video} has no audio track; --text re-speaks the video's own speech")
    models_dir = Path(args.models)
    _hf_folder(models_dir / "whisper", "Whisper", True)  # every model is found before the first one runs
    _speech_edit_files(models_dir)
    device = "cpu" if args.device in (None, "auto") else args.device
    words = transcribe_file(args.video, models_dir, device, args.language)
    print("original transcript: " + " ".join(w.text for w in words), file=sys.stderr)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    speech, edited_words = speak_edited_text(
        args.video, words, args.text, models_dir, out.with_suffix(".speech.wav"), device
    )
    args.speech = str(speech)
    for name, found in (("original", words), ("edited", edited_words)):
        path = out.with_suffix(f".{name}_words.json")
        path.write_text(json.dumps(words_to_list(found), indent=1))
        setattr(args, f"{name}_words", str(path))
    print(f"wrote {speech} and the word timestamps beside {out}", file=sys.stderr)
    return run_edit(args)


def run_generate(args: argparse.Namespace) -> Path:
    from .audio import load_audio_file
    from .pipeline import generate
    from .video import OutputFormat, check_output_path, write_edited_video

    check_output_path(args.out, args.portrait, args.speech)

    result = generate(_load_image(args.portrait), load_audio_file(args.speech), _models(args), fps=args.fps,
                      options=_options(args), progress=_bar, name=str(args.portrait))  # fmt: skip
    out = Path(args.out)
    wave = result.audio["waveform"][0].float().numpy()
    write_edited_video(out, None, result.plan, result.frames, audio=wave, sample_rate=result.audio["sample_rate"],
                       output=OutputFormat(kind="h264", crf=args.crf, pix_fmt=args.pix_fmt))  # fmt: skip
    print(f"wrote {out} ({len(result.frames)} frames at {args.fps:g} fps)", file=sys.stderr)
    return out


def run_demo(args: argparse.Namespace) -> Path:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    video = SAMPLES / "facedit_sample.mp4"
    print(f"sample recording: {video} ('we will meet at the station at noon')", file=sys.stderr)
    print("edited speech:    'we will meet at the old harbour at noon'", file=sys.stderr)
    from .models import find_facedit, find_wavlm, has_liveportrait
    from .priors import find_joyvasa

    models_dir = Path(args.models)
    prior = find_facedit(models_dir) is None and find_joyvasa(models_dir / "joyvasa") is not None
    missing = [name for name, ok in (("LivePortrait", has_liveportrait(models_dir)),
                                     ("WavLM", prior or find_wavlm(models_dir) is not None),
                                     ("FacEDiT", prior or find_facedit(models_dir) is not None)) if not ok]  # fmt: skip
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
    p.add_argument("--out", required=out_default is None, default=out_default, help="output .mp4 / .mov / .mkv")
    p.add_argument("--models", default="models",
                   help="folder with liveportrait/, wavlm/, facedit/ or joyvasa/ (default ./models)")  # fmt: skip
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps (default cpu)")
    p.add_argument("--debug", action="store_true", help="on an error, show the full traceback")
    p.add_argument("--precision", choices=("fp32", "fp16", "bf16", "fast"), default="fp32",
                   help="fast: LivePortrait warp + decode in bf16 on a CPU with native bf16 (fp16 autocast on CUDA), "
                   "face features, motion and the other models fp32 (default fp32)")  # fmt: skip
    p.add_argument("--steps", type=int, default=32, help="Euler steps of the flow-matching sampler (default 32)")
    p.add_argument("--sway", type=float, default=-1.0, help="Sway time-step coefficient (default -1)")
    p.add_argument("--guidance", type=float, default=0.0, help="classifier-free guidance strength (default 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--context-frames", type=int, default=3, help="frames regenerated each side of an edit")
    p.add_argument("--motion-context", type=float, default=1.0, help="seconds of known motion the model sees")
    p.add_argument("--rerender-all", action="store_true", help="re-render every frame (uniform look, slower)")
    p.add_argument("--face-index", type=int, default=0, help="which face when several (0 = largest)")
    p.add_argument("--face-box", help="manual face box x0,y0,x1,y1 instead of detection")


def _output_options(p: argparse.ArgumentParser) -> None:
    from .video import OUTPUT_KINDS

    p.add_argument(
        "--format",
        choices=OUTPUT_KINDS,
        default="same",
        help="same: copy every GOP the edit does not touch, re-encode the rest like the source (default); "
        "lossless: FFV1 (.mkv) or x264 qp 0 yuv444p; prores_hq/prores_4444 (.mov); h264/h265 with --crf",
    )
    p.add_argument("--crf", type=int, default=18, help="quality for --format h264/h265 (default 18)")
    p.add_argument("--pix-fmt", help="encoder pixel format, e.g. yuv444p for odd sizes (default: fits the source)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m facedit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("edit", help="edit a talking-head video to new speech")
    p.add_argument("--video", required=True, help="original video (mp4/mov/mkv/webm)")
    p.add_argument("--speech", help="edited speech (wav/flac/mp3/...)")
    p.add_argument(
        "--text",
        help="instead of --speech: the edited transcript; the video's speech is transcribed "
        "(models/whisper, refined by models/ctc) and re-spoken with F5-TTS (models/f5tts, models/vocos)",
    )
    p.add_argument("--language", help="with --text: the language Whisper should hear (default: detected)")
    p.add_argument("--original-words", help="word timestamps of the original speech (WhisperX/whisper JSON, text)")
    p.add_argument("--edited-words", help="word timestamps of the edited speech")
    p.add_argument("--spans", help="manual edits instead of timestamps: 'start end new_duration;...' (seconds)")
    p.add_argument("--original-duration", type=float, help="seconds of the original speech (default: its audio)")
    p.add_argument("--fps", help="read the video at this frame rate by its frames' timestamps, e.g. 25 or 30000/1001 "
                   "(default: its own; a variable-frame-rate video is read at its average rate)")  # fmt: skip
    _output_options(p)
    _common(p)
    p = sub.add_parser("generate", help="a talking clip from a portrait and speech")
    p.add_argument("--portrait", required=True)
    p.add_argument("--speech", required=True)
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--crf", type=int, default=18, help="H.264 quality (default 18)")
    p.add_argument("--pix-fmt", help="encoder pixel format, e.g. yuv444p (default: yuv420p, yuv444p for odd sizes)")
    _common(p)
    p = sub.add_parser("demo", help="the whole editing path on built-in sample data")
    _output_options(p)
    _common(p, out_default="facedit_demo/demo_edited.mp4")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    if args.command == "edit" and args.text is not None:
        if args.speech or args.spans or args.original_words or args.edited_words:
            print("edit: --text replaces --speech, --spans and the word files; give it alone", file=sys.stderr)
            return 2
        if not args.text.split():
            print("edit: --text is empty; give the edited transcript", file=sys.stderr)
            return 2
        args.command = "text-edit"
    elif args.command == "edit" and not args.speech:
        print("edit: give --speech (the edited speech) or --text (the edited transcript)", file=sys.stderr)
        return 2
    elif args.command == "edit" and not args.spans and not (args.original_words and args.edited_words):
        print("edit: give --original-words and --edited-words, or --spans", file=sys.stderr)
        return 2

    def run() -> int:
        check_device(args.device)
        {"text-edit": run_text_edit, "edit": run_edit, "generate": run_generate, "demo": run_demo}[args.command](args)
        return 0

    try:
        return run_reporting(run, args.debug)
    except KeyboardInterrupt:
        print("interrupted: nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

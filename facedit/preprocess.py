"""Preprocess talking-face videos into a FacEDiT training cache: one shard per clip plus a manifest.

    python facedit/preprocess.py --videos DIR|LIST --out CACHE --liveportrait DIR --wavlm PATH \\
        [--fps 25] [--workers N] [--device cuda]
    python -m facedit.preprocess ...   (the same)

For every clip: decode (PyAV), detect and follow the face (``detect_face_track``; dlib by default), crop it
(LivePortrait geometry), extract the 75-d motion of every output frame (``extract_motion``) and the WavLM
features of the audio; write ``CACHE/shards/<id>.safetensors`` (see ``facedit.data``) and append a line to
``CACHE/manifest.jsonl``. Clips are ids made from their path below the input folder.

Frame rate. Output frame k stands at time k / fps and is the source frame nearest in time:
index = floor(k * source_fps / fps + 1/2) (exact rational arithmetic, ties to the later frame), for
k = 0 .. ceil(N * fps / source_fps) - 1, where N is the number of decoded frames. Going down (30 -> 25)
drops frames, going up (24 -> 25) repeats some; nothing is interpolated, so every motion vector is one
real frame's. Audio is not touched: speech features carry their own times.

Long clips stream: the video is decoded twice (detection, then crops), never held whole in memory.
Face detection runs on every ``--detect-every``-th source frame and the last; the crop track is
interpolated and smoothed between (as ``detect_face_track`` does).

Robustness: a clip that cannot be decoded, has no audio, is shorter than ``--min-seconds``, or shows no
face in enough frames is skipped with its reason, listed in ``CACHE/skipped.jsonl`` and the final summary;
anything else that goes wrong with one clip is skipped as "error" with the message. A worker process that
dies takes only the clips it was working on (each gets a second try). Resumable: clips already in the
manifest (and clips skipped before, unless ``--retry-skipped``) are not processed again; shards are
written atomically and listed only when complete.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: python facedit/preprocess.py (also spawn workers of that script)
    _here = Path(__file__).resolve().parent  # on sys.path for scripts; its modules must not shadow top-level names
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))
    __package__ = "facedit"  # noqa: A001

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable, Iterator, Sequence  # noqa: E402
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait  # noqa: E402
from concurrent.futures.process import BrokenProcessPool  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from fractions import Fraction  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from .cli import check_device, run_reporting  # noqa: E402
from .data import MANIFEST_NAME, SHARD_DIR, ManifestEntry, read_manifest, write_shard  # noqa: E402
from .liveportrait import (  # noqa: E402
    CropTrack,
    FaceDetection,
    FaceDetector,
    LivePortrait,
    LivePortraitConfig,
    crop_faces,
    detect_face_track,
    extract_motion,
    load_liveportrait,
)
from .liveportrait.detect import default_detector  # noqa: E402
from .speech import WavLM, load_wavlm  # noqa: E402
from .video_io import fps_to_fraction, iter_frames, probe_video, read_audio  # noqa: E402

log = logging.getLogger("facedit.preprocess")

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
SKIP_REASONS = ("decode error", "no audio", "too short", "no face", "error")
SKIPPED_NAME = "skipped.jsonl"
SPEECH_DTYPES = {"float16": torch.float16, "float32": torch.float32}
LIVEPORTRAIT_SIZES = {"official": LivePortraitConfig.official, "tiny": LivePortraitConfig.tiny}


@dataclass(frozen=True)
class PreprocessOptions:
    """What every clip goes through; recorded in each shard's metadata."""

    fps: float = 25.0
    min_seconds: float = 1.0
    detect_every: int = 5
    smoothing: float = 2.0  # crop track smoothing, Gaussian sigma in source frames
    face_index: int = 0
    face_order: str = "largest"
    min_face_fraction: float = 0.5  # share of detection frames that must show the chosen face
    speech_dtype: str = "float16"
    wavlm_layer: str | int = "last"
    chunk_size: int = 16
    device: str = "cpu"
    threads: int = 0  # torch threads per process; 0: the count torch had when the preprocessor was made

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.detect_every < 1 or self.chunk_size < 1:
            raise ValueError(f"detect_every and chunk_size must be >= 1, got {self.detect_every}, {self.chunk_size}")
        if not 0.0 <= self.min_face_fraction <= 1.0:
            raise ValueError(f"min_face_fraction must be in [0, 1], got {self.min_face_fraction}")
        if self.speech_dtype not in SPEECH_DTYPES:
            raise ValueError(f"speech_dtype must be one of {sorted(SPEECH_DTYPES)}, got {self.speech_dtype!r}")
        if self.face_order not in ("largest", "left_to_right"):
            raise ValueError(f"face_order must be 'largest' or 'left_to_right', got {self.face_order!r}")
        if self.min_seconds < 0 or self.threads < 0:
            raise ValueError(f"min_seconds and threads must be >= 0, got {self.min_seconds}, {self.threads}")


class SkipClip(Exception):
    """A clip that cannot become a training shard, with one of SKIP_REASONS."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


# ---------------------------------------------------------------------------------------------- inputs


def _clip_id(relative: Path) -> str:
    text = "__".join(relative.with_suffix("").parts)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "clip"


def find_videos(videos: str | os.PathLike | Sequence[str | os.PathLike]) -> list[tuple[str, Path]]:
    """(id, path) of every video: a folder (searched recursively for VIDEO_EXTENSIONS), a text file with
    one path per line (relative to the file; blank lines and lines starting with # are ignored), or a list."""
    if isinstance(videos, (str, os.PathLike)):
        root = Path(videos).expanduser()
        if root.is_dir():
            paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
            base = root
        elif root.is_file() and root.suffix.lower() not in VIDEO_EXTENSIONS:
            lines = [line.strip() for line in root.read_text(encoding="utf-8").splitlines()]
            paths = [(root.parent / line).expanduser() for line in lines if line and not line.startswith("#")]
            base = root.parent
        elif root.is_file():
            paths, base = [root], root.parent
        else:
            raise FileNotFoundError(f"--videos: {root} is neither a folder, a list file nor a video")
    else:
        paths = [Path(p).expanduser() for p in videos]
        base = Path(os.path.commonpath([str(p.resolve().parent) for p in paths])) if paths else Path(".")
    found: list[tuple[str, Path]] = []
    ids: dict[str, Path] = {}
    for path in paths:
        try:
            relative = path.resolve().relative_to(base.resolve())
        except ValueError:
            relative = Path(path.name)
        clip = _clip_id(relative)
        if clip in ids and ids[clip] != path.resolve():
            clip = f"{clip}-{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]}"
        ids[clip] = path.resolve()
        found.append((clip, path))
    return found


def frame_indices(source_frames: int, source_fps: Fraction | float, fps: Fraction | float) -> np.ndarray:
    """Source frame shown at each output frame k / fps: the nearest in time (see the module docstring)."""
    src, dst = fps_to_fraction(source_fps), fps_to_fraction(fps)
    if source_frames < 0:
        raise ValueError(f"source_frames must be >= 0, got {source_frames}")
    count = math.ceil(Fraction(source_frames) * dst / src)
    k = np.arange(count, dtype=np.int64)
    # floor(k * src / dst + 1/2) = floor((2 k src.num dst.den + src.den dst.num) / (2 src.den dst.num))
    num = 2 * k * src.numerator * dst.denominator + src.denominator * dst.numerator
    index = num // (2 * src.denominator * dst.numerator)
    return np.minimum(index, max(source_frames - 1, 0))


# ------------------------------------------------------------------------------------------ one clip


def _decoded(path: Path, **kwargs: Any) -> Iterator[np.ndarray]:
    """iter_frames with every decoder failure turned into SkipClip("decode error")."""
    frames = iter_frames(path, **kwargs)
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            return
        except Exception as error:  # noqa: BLE001 - any failure of the decoder on this file
            raise SkipClip("decode error", f"{type(error).__name__}: {error}") from error
        yield frame


class _Replay:
    """A FaceDetector that hands back detections made earlier while streaming, in the order asked for."""

    def __init__(self, detections: list[list[FaceDetection]], box_scale: float):
        self.detections, self.box_scale, self.calls = detections, box_scale, 0

    def __call__(self, image: np.ndarray) -> list[FaceDetection]:
        if self.calls >= len(self.detections):
            raise RuntimeError("detect_face_track asked for more frames than were detected while streaming")
        self.calls += 1
        return self.detections[self.calls - 1]


class ClipPreprocessor:
    """Models loaded once (per worker process) and the steps that turn one video into one shard."""

    def __init__(
        self,
        liveportrait: LivePortrait,
        wavlm: WavLM,
        options: PreprocessOptions = PreprocessOptions(),
        detector: FaceDetector | None = None,
        provenance: dict[str, str] | None = None,
    ):
        self.lp, self.wavlm, self.options = liveportrait, wavlm, options
        self.detector = detector if detector is not None else default_detector()
        self.provenance = dict(provenance or {})
        # Float sums depend on how they are split between threads, so a shard is reproducible only at the thread
        # count it was made at: fixed here for every clip (whatever changes torch's count in between), recorded
        # in each shard's metadata, and the caller's count is restored after each clip.
        self.threads = int(options.threads or torch.get_num_threads())

    @classmethod
    def load(
        cls,
        liveportrait: str | os.PathLike,
        wavlm: str | os.PathLike,
        options: PreprocessOptions = PreprocessOptions(),
        *,
        liveportrait_config: LivePortraitConfig | None = None,
        detector: FaceDetector | None = None,
    ) -> ClipPreprocessor:
        lp = load_liveportrait(liveportrait, device=options.device, config=liveportrait_config)
        speech = load_wavlm(wavlm, device=options.device)
        provenance = {
            "liveportrait": str(Path(liveportrait)),
            "wavlm": str(Path(wavlm)),
            "wavlm_variant": speech.variant,
        }
        return cls(lp, speech, options, detector, provenance)

    def _detect(self, path: Path) -> tuple[int, tuple[int, int], dict[int, list[FaceDetection]]]:
        """Stream the clip once: frame count, frame size, detections on every detect_every-th frame and the last."""
        every = self.options.detect_every
        detections: dict[int, list[FaceDetection]] = {}
        count, last, size = 0, None, (0, 0)
        for index, frame in enumerate(_decoded(path, dtype="uint8")):
            if index % every == 0:
                detections[index] = list(self.detector(frame))
            count, last, size = index + 1, frame, frame.shape[:2]
        if count == 0:
            raise SkipClip("decode error", "no video frame could be decoded")
        if count - 1 not in detections:
            detections[count - 1] = list(self.detector(last))
        return count, size, detections

    def _track(self, count: int, size: tuple[int, int], detections: dict[int, list[FaceDetection]], name: str):
        options = self.options
        wanted = sorted(detections)
        replay = _Replay([detections[i] for i in wanted], float(getattr(self.detector, "box_scale", 1.0)))
        blank = np.broadcast_to(np.zeros((1, 1, 1, 3), np.float32), (count, *size, 3))  # no memory
        try:
            track = detect_face_track(
                blank, replay, face_index=options.face_index, face_order=options.face_order,
                smoothing=options.smoothing, detect_every=options.detect_every, name=name,
            )  # fmt: skip
        except ValueError as error:
            if "no face" in str(error) or "face_index" in str(error):
                raise SkipClip("no face", str(error)) from error
            raise
        if replay.calls != len(wanted):
            raise RuntimeError(f"detect_face_track used {replay.calls} of {len(wanted)} streamed detections")
        fraction = float(track.detected[wanted].mean())
        if fraction < options.min_face_fraction:
            raise SkipClip(
                "no face",
                f"the face was found in {fraction:.0%} of the searched frames (< {options.min_face_fraction:.0%})",
            )
        return track, fraction

    def _motion(self, path: Path, track: CropTrack, select: np.ndarray) -> torch.Tensor:
        """Stream the clip again and extract the motion of the selected source frames, chunk by chunk."""
        repeats = Counter(select.tolist())
        crops: list[np.ndarray] = []
        parts: list[torch.Tensor] = []
        last = int(select[-1])
        for index, frame in enumerate(_decoded(path, stop=last + 1)):
            if index not in repeats:
                continue
            crop = crop_faces(frame[None], track, indices=[index])[0]
            crops.extend([crop] * repeats[index])
            if len(crops) >= self.options.chunk_size:
                parts.append(extract_motion(self.lp, np.stack(crops), chunk_size=self.options.chunk_size).motion)
                crops = []
        if crops:
            parts.append(extract_motion(self.lp, np.stack(crops), chunk_size=self.options.chunk_size).motion)
        motion = torch.cat(parts)
        if motion.shape[0] != len(select):
            raise SkipClip("decode error", f"second decoding pass gave {motion.shape[0]} of {len(select)} frames")
        return motion

    def process(self, path: str | os.PathLike, clip_id: str, out: str | os.PathLike) -> ManifestEntry:
        """Write the clip's shard into ``out/shards`` and return its manifest entry; raises SkipClip.

        Runs at ``self.threads`` torch threads (recorded in the shard as ``threads``)."""
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return self._process(Path(path), clip_id, Path(out))
        finally:
            torch.set_num_threads(before)

    def _process(self, path: Path, clip_id: str, out: Path) -> ManifestEntry:
        options = self.options
        try:
            info = probe_video(path)
            audio = read_audio(path)
        except Exception as error:  # noqa: BLE001 - unreadable container, codec or file
            raise SkipClip("decode error", f"{type(error).__name__}: {error}") from error
        if audio is None:
            raise SkipClip("no audio", "the file has no audio stream")
        if info.duration_s < options.min_seconds:
            raise SkipClip("too short", f"{info.duration_s:.2f} s < {options.min_seconds} s")

        count, size, detections = self._detect(path)
        fps = fps_to_fraction(options.fps)
        select = frame_indices(count, info.fps, fps)
        seconds = len(select) / float(fps)
        if seconds < options.min_seconds or len(select) < 2:
            raise SkipClip("too short", f"{len(select)} frames at {float(fps):g} fps = {seconds:.2f} s")
        track, fraction = self._track(count, size, detections, str(path))

        wave, rate = audio
        try:
            speech = self.wavlm.encode(wave, rate, layer=options.wavlm_layer)
        except ValueError as error:
            if "receptive field" in str(error):
                raise SkipClip("too short", f"audio: {error}") from error
            raise
        motion = self._motion(path, track, select)

        features = speech.features.to(SPEECH_DTYPES[options.speech_dtype])
        if not torch.isfinite(features).all():
            raise SkipClip("error", f"speech features overflow {options.speech_dtype}; use --speech-dtype float32")
        shard = Path(SHARD_DIR) / f"{clip_id}.safetensors"
        metadata = {
            **self.provenance,
            "id": clip_id,
            "source": str(path),
            "source_fps": str(info.fps),
            "source_frames": str(count),
            "face_fraction": f"{fraction:.4f}",
            "speech_duration_s": repr(speech.duration_s),
            "options": json.dumps(asdict(options)),
            "threads": str(self.threads),
        }
        write_shard(
            out / shard, motion, features, fps=fps, speech_frame_rate=speech.frame_rate,
            speech_offset_s=speech.offset_s, metadata=metadata,
        )  # fmt: skip
        return ManifestEntry(
            id=clip_id, frames=len(select), seconds=seconds, fps=float(fps), source=str(path), shard=shard.as_posix(),
            speech_frames=speech.num_frames,
        )  # fmt: skip


def _run_one(processor: ClipPreprocessor, clip_id: str, path: Path, out: Path) -> dict[str, Any]:
    try:
        return {"status": "done", "entry": asdict(processor.process(path, clip_id, out))}
    except SkipClip as skip:
        return {"status": "skipped", "id": clip_id, "source": str(path), "reason": skip.reason, "detail": skip.detail}
    except Exception as error:  # noqa: BLE001 - one bad clip never stops the run
        detail = f"{type(error).__name__}: {error}"
        return {"status": "skipped", "id": clip_id, "source": str(path), "reason": "error", "detail": detail}


# -------------------------------------------------------------------------------------- worker processes

_WORKER: ClipPreprocessor | None = None


def _init_worker(liveportrait: str, wavlm: str, options: PreprocessOptions, lp_size: str) -> None:
    global _WORKER
    _WORKER = ClipPreprocessor.load(liveportrait, wavlm, options, liveportrait_config=LIVEPORTRAIT_SIZES[lp_size]())


def _work(clip_id: str, path: str, out: str) -> dict[str, Any]:
    assert _WORKER is not None, "worker used before _init_worker"
    return _run_one(_WORKER, clip_id, Path(path), Path(out))


def _pool_results(todo: list[tuple[str, Path]], out: Path, workers: int, init_args: tuple) -> Iterator[dict[str, Any]]:
    """Results from a pool of worker processes, at most ``workers`` clips in flight; a clip whose worker
    died is retried once in a fresh pool, then skipped."""
    import multiprocessing

    queue = list(reversed(todo))
    attempts: Counter[str] = Counter()
    while queue:
        pool = ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"), _init_worker, init_args)
        running: dict[Future, tuple[str, Path]] = {}
        broken = False
        try:
            while queue or running:
                while queue and len(running) < workers and not broken:
                    clip_id, path = queue.pop()
                    running[pool.submit(_work, clip_id, str(path), str(out))] = (clip_id, path)
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    clip_id, path = running.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        broken = True
                        attempts[clip_id] += 1
                        if attempts[clip_id] >= 2:
                            yield {"status": "skipped", "id": clip_id, "source": str(path), "reason": "error",
                                   "detail": "the worker process died while processing it (twice)"}  # fmt: skip
                        else:
                            queue.append((clip_id, path))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------------------------------------------- driver


@dataclass
class PreprocessSummary:
    done: list[ManifestEntry] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    already_done: int = 0
    skipped_before: int = 0

    def report(self) -> str:
        lines = [
            f"processed {len(self.done)} clip(s), skipped {len(self.skipped)}, "
            f"already done {self.already_done}, skipped in earlier runs {self.skipped_before}"
        ]
        counts = Counter(s["reason"] for s in self.skipped)
        for reason in SKIP_REASONS:
            if counts[reason]:
                lines.append(f"  {reason}: {counts[reason]}")
        for s in self.skipped:
            lines.append(f"  - {s['id']} ({s['source']}): {s['reason']}: {s['detail']}")
        return "\n".join(lines)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def preprocess(
    videos: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    liveportrait: str | os.PathLike,
    wavlm: str | os.PathLike,
    options: PreprocessOptions = PreprocessOptions(),
    workers: int = 1,
    liveportrait_size: str = "official",
    retry_skipped: bool = False,
    detector: FaceDetector | None = None,
    progress: bool = True,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> PreprocessSummary:
    """Preprocess every video not yet in ``out``'s manifest; see the module docstring.

    workers: 1 processes in this process; N > 1 starts N worker processes that each load the models once.
    detector: a custom face detector (only with workers=1; worker processes build the default one).
    """
    out = Path(out)
    if liveportrait_size not in LIVEPORTRAIT_SIZES:
        raise ValueError(f"liveportrait_size must be one of {sorted(LIVEPORTRAIT_SIZES)}, got {liveportrait_size!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if detector is not None and workers > 1:
        raise ValueError("a custom detector object cannot be sent to worker processes; use workers=1")
    for name, value in (("liveportrait", liveportrait), ("wavlm", wavlm)):
        if not Path(value).exists():
            raise FileNotFoundError(f"--{name}: {value} does not exist")
    clips = find_videos(videos)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path, skipped_path = out / MANIFEST_NAME, out / SKIPPED_NAME
    done_ids = {e.id for e in read_manifest(out) if (out / e.shard).is_file()} if manifest_path.is_file() else set()
    skipped_ids = {s["id"] for s in _read_jsonl(skipped_path)} - done_ids
    summary = PreprocessSummary()
    todo = []
    for clip_id, path in clips:
        if clip_id in done_ids:
            summary.already_done += 1
        elif clip_id in skipped_ids and not retry_skipped:
            summary.skipped_before += 1
        else:
            todo.append((clip_id, path))
    if retry_skipped and skipped_path.is_file():
        keep = [s for s in _read_jsonl(skipped_path) if s["id"] not in {c for c, _ in todo}]
        skipped_path.write_text("".join(json.dumps(s) + "\n" for s in keep), encoding="utf-8")

    if not todo:
        return summary
    if workers == 1:
        processor = ClipPreprocessor.load(
            liveportrait, wavlm, options, liveportrait_config=LIVEPORTRAIT_SIZES[liveportrait_size](), detector=detector
        )
        results: Iterator[dict[str, Any]] = (_run_one(processor, c, p, out) for c, p in todo)
    else:
        init = (str(liveportrait), str(wavlm), options, liveportrait_size)
        results = _pool_results(todo, out, min(workers, len(todo)), init)

    from tqdm import tqdm

    with tqdm(total=len(todo), desc="preprocess", unit="clip", disable=not progress) as bar:
        for result in results:
            if result["status"] == "done":
                entry = ManifestEntry.from_dict(result["entry"])
                with manifest_path.open("a", encoding="utf-8") as handle:
                    handle.write(entry.to_json() + "\n")
                summary.done.append(entry)
            else:
                record = {k: result[k] for k in ("id", "source", "reason", "detail")}
                with skipped_path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")
                summary.skipped.append(record)
                bar.write(f"skipped {record['id']}: {record['reason']}: {record['detail']}")
            if on_result is not None:
                on_result(result)
            bar.update(1)
    return summary


def build_parser() -> argparse.ArgumentParser:
    defaults = PreprocessOptions()
    parser = argparse.ArgumentParser(
        prog="python facedit/preprocess.py",
        description="Turn talking-face videos into a FacEDiT training cache (motion + speech shards, manifest).",
    )
    parser.add_argument("--videos", required=True, help="folder of videos (recursive), a list file, or one video")
    parser.add_argument("--out", required=True, help="cache folder (created; re-running resumes)")
    parser.add_argument("--liveportrait", required=True, help="LivePortrait weights folder (official or safetensors)")
    parser.add_argument("--wavlm", required=True, help="WavLM folder (config.json + weights) or .safetensors file")
    parser.add_argument("--fps", type=float, default=defaults.fps, help="motion frame rate of the cache (default 25)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes, each loads the models once")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per worker (default: cores / workers)")
    parser.add_argument("--device", default=defaults.device, help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--min-seconds", type=float, default=defaults.min_seconds, help="skip shorter clips")
    parser.add_argument("--detect-every", type=int, default=defaults.detect_every, help="face detection stride")
    parser.add_argument("--smoothing", type=float, default=defaults.smoothing, help="crop smoothing sigma (frames)")
    parser.add_argument("--face-index", type=int, default=defaults.face_index, help="which face when several")
    parser.add_argument("--face-order", default=defaults.face_order, choices=("largest", "left_to_right"))
    parser.add_argument(
        "--min-face-fraction", type=float, default=defaults.min_face_fraction,
        help="skip a clip whose face is found in fewer of the searched frames",
    )  # fmt: skip
    parser.add_argument("--speech-dtype", default=defaults.speech_dtype, choices=sorted(SPEECH_DTYPES))
    parser.add_argument("--wavlm-layer", default="last", help="'last' or a hidden-state index (must match inference)")
    parser.add_argument(
        "--liveportrait-size", default="official", choices=sorted(LIVEPORTRAIT_SIZES),
        help="network widths of the LivePortrait files ('tiny' only for the test-size files)",
    )  # fmt: skip
    parser.add_argument("--retry-skipped", action="store_true", help="try clips skipped by earlier runs again")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help="on an error, show the full traceback")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_reporting(lambda: _run(args), args.debug, "preprocess.py: error")


def _run(args: argparse.Namespace) -> int:
    check_device(args.device)
    layer: str | int = int(args.wavlm_layer) if args.wavlm_layer.lstrip("-").isdigit() else args.wavlm_layer
    workers = max(1, args.workers)
    threads = args.threads or (max(1, (os.cpu_count() or 1) // workers) if workers > 1 else 0)
    options = PreprocessOptions(
        fps=args.fps, min_seconds=args.min_seconds, detect_every=args.detect_every, smoothing=args.smoothing,
        face_index=args.face_index, face_order=args.face_order, min_face_fraction=args.min_face_fraction,
        speech_dtype=args.speech_dtype, wavlm_layer=layer, device=args.device, threads=threads,
    )  # fmt: skip
    summary = preprocess(
        args.videos, args.out, liveportrait=args.liveportrait, wavlm=args.wavlm, options=options, workers=workers,
        liveportrait_size=args.liveportrait_size, retry_skipped=args.retry_skipped, progress=not args.no_progress,
    )  # fmt: skip
    print(summary.report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Editing and generation composed from the stages: plan, resample, crop, extract, infill, render, paste.

The paper's Fig. 2 (b, c). Work happens only in windows around the edits: a target frame outside every
window is the original frame, bit for bit, read when it is written. That bounds memory by the edits, not the
clip, and keeps the expensive LivePortrait decoder on the frames that changed.
"""

from __future__ import annotations

import bisect
import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from .audio import audio_duration, load_audio_file
from .edits import EditPlan, SpanEdit, plan_edit, plan_from_spans, plan_generation
from .flow import infill
from .liveportrait import CropTrack, LivePortrait, MotionTrack, crop_faces, detect_face_track, extract_motion
from .liveportrait.extract import INPUT_SIZE
from .liveportrait.paste import paste_back
from .liveportrait.render import iter_render
from .models import Models
from .motion import MOTION_DIM
from .priors import is_prior
from .resample import ResampleConfig, iter_resampled_frames
from .speech import SpeechFeatures
from .timeline import Window, from_model_grid, model_grid, to_model_grid, work_windows
from .timestamps import Word
from .video.window import WindowFrames

log = logging.getLogger("facedit")

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): stage names are 'speech', 'faces', 'resample', 'motion', 'infill', 'render'."""
Cancel = Callable[[], None]
"""Raises to stop the run (ComfyUI's interrupt, Ctrl-C handling, a UI cancel button)."""


@dataclass(frozen=True)
class EditOptions:
    """Knobs of an edit; the defaults are the ones we recommend."""

    context_frames: int = 3
    """Frames regenerated on each side of an edit so the transition is generated too (plan)."""
    motion_context_s: float = 1.0
    """Seconds of known motion the model sees on each side of the generated frames."""
    steps: int = 32
    sway: float = -1.0
    guidance: float = 0.0
    seed: int = 0
    compile: bool = False
    """FacEDiT network through torch.compile (`facedit.accel.compiling`); priors ignore it."""
    rerender_all: bool = False
    """Re-render every frame through LivePortrait (uniform look) instead of only the generated ones."""
    stitching: bool = True
    render_chunk: int = 4
    extract_chunk: int = 16
    face_index: int = 0
    face_order: str = "largest"
    face_box: tuple[float, float, float, float] | None = None
    crop_smoothing: float = 2.0
    resample: ResampleConfig = field(default_factory=ResampleConfig)

    def __post_init__(self) -> None:
        for name in ("context_frames", "steps", "render_chunk", "extract_chunk", "face_index"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "steps" else 0):
                raise ValueError(f"{name} must be a non-negative integer (steps >= 1), got {value!r}")
        if self.render_chunk < 1 or self.extract_chunk < 1:
            raise ValueError("render_chunk and extract_chunk must be >= 1")
        if not self.motion_context_s >= 0:
            raise ValueError(f"motion_context_s must be >= 0 seconds, got {self.motion_context_s!r}")


def _noop_progress(stage: str, done: int, total: int) -> None:
    return None


def _stage(progress: Progress | None, stage: str) -> Callable[[int, int], None]:
    report = progress or _noop_progress
    return lambda done, total: report(stage, done, total)


# ---------------------------------------------------------------------------------------------------------------
# Stages that nodes call one by one


def retime_track(track: CropTrack, source_time: np.ndarray) -> CropTrack:
    """The crop track read at fractional source frames: one entry per target frame (linear in between)."""
    times = np.asarray(source_time, dtype=np.float64)
    n = len(track)
    if times.ndim != 1 or (times.size and (times.min() < 0 or times.max() > n - 1)):
        raise ValueError(f"source_time must be 1-D within [0, {n - 1}] for a track of {n} frames")
    lo = np.floor(times).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    w = times - lo

    def mix(values: np.ndarray) -> np.ndarray:
        shape = (-1,) + (1,) * (values.ndim - 1)
        return values[lo] * (1 - w).reshape(shape) + values[hi] * w.reshape(shape)

    detected = track.detected[lo] & (track.detected[hi] | (w == 0))
    return CropTrack(track.frame_size, mix(track.center), mix(track.size), mix(track.angle), mix(track.face_box),
                     detected)  # fmt: skip


def speech_window(speech: SpeechFeatures, start_s: float, end_s: float, pad_s: float) -> tuple[torch.Tensor, float]:
    """Speech frames around [start_s, end_s] and the offset of the first one relative to ``start_s``."""
    times = speech.offset_s + np.arange(speech.num_frames) / speech.frame_rate
    keep = np.flatnonzero((times >= start_s - pad_s) & (times <= end_s + pad_s))
    if keep.size == 0:
        raise ValueError(
            f"the speech ({speech.duration_s:.2f} s) has no features near {start_s:.2f}-{end_s:.2f} s of the video"
        )
    window = speech.features[keep[0] : keep[-1] + 1]
    if not torch.isfinite(window).all():
        raise ValueError(
            f"the speech features near {start_s:.2f}-{end_s:.2f} s were not encoded: encode the speech for the "
            "plan it is used with (encode_speech(..., plan=...)) or all of it"
        )
    return window, float(times[keep[0]] - start_s)


def encode_speech(
    models: Models,
    audio: dict[str, Any],
    progress: Progress | None = None,
    plan: EditPlan | None = None,
    options: EditOptions = EditOptions(),
) -> Any:
    """What the motion model reads: WavLM features for FacEDiT; the audio itself for a prior (its own encoder).

    With ``plan``, only the speech around the plan's edit windows is encoded (a long clip's other speech is
    never read), and the features are cut to the encoded stretch (`encoded_part`).
    """
    if is_prior(models.facedit):
        return models.facedit.speech_input(audio)
    if models.wavlm is None:
        raise ValueError("a FacEDiT model needs WavLM speech features, but no WavLM model was loaded")
    only = None
    if plan is not None:
        pad_s = float(getattr(models.facedit.config, "cross_window_s", 0.5)) + 1.5
        only = [(w.start / plan.fps - pad_s, w.end / plan.fps + pad_s) for w in _windows_for(plan, plan.fps, options)]
    features = models.wavlm.encode(audio, progress=_stage(progress, "speech"), only=only)
    return features if only is None else encoded_part(features)


def encoded_part(speech: SpeechFeatures) -> SpeechFeatures:
    """``speech`` cut to the frames from its first to its last encoded (finite) one, with one NaN frame kept at each
    cut, so that a window reaching past the encoded stretch is still refused (`speech_window`). Encoded with
    ``only``, a long clip's features are otherwise NaN rows held through the whole render: ~90 MB per 10 minutes
    of speech at WavLM's 768 channels."""
    n = speech.num_frames
    encoded = torch.nonzero(torch.isfinite(speech.features).all(dim=1)).flatten()
    if encoded.numel() == 0:
        return speech
    first, stop = max(0, int(encoded[0]) - 1), min(n, int(encoded[-1]) + 2)
    if (first, stop) == (0, n):
        return speech
    return replace(speech, features=speech.features[first:stop].clone(),
                   offset_s=speech.offset_s + first / speech.frame_rate)  # fmt: skip


def infill_timeline(
    model: Any,
    motion: np.ndarray,
    infill_mask: np.ndarray,
    fps: float,
    speech: Any,
    options: EditOptions = EditOptions(),
    *,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> np.ndarray:
    """New motion (T, 75) for the masked frames of a clip at ``fps``; every unmasked row comes back unchanged.

    ``motion`` may hold NaN rows far from the edits (frames never extracted): only the windows of
    ``options.motion_context_s`` around masked runs are read. Each window is carried to the model's fps,
    infilled with the matching slice of speech, and carried back. ``model`` is FacEDiT (``speech``: WavLM
    SpeechFeatures) or a prior from ``facedit.priors`` (``speech``: its ``speech_input(audio)``).
    """
    motion = np.asarray(motion, dtype=np.float32)
    mask = np.asarray(infill_mask, dtype=bool)
    if motion.ndim != 2 or motion.shape[1] != MOTION_DIM:
        raise ValueError(f"motion must be (T, {MOTION_DIM}), got {motion.shape}")
    if mask.shape != (motion.shape[0],):
        raise ValueError(f"infill_mask must have one entry per motion frame ({motion.shape[0]}), got {mask.shape}")
    cfg = model.config
    out = motion.copy()
    windows = work_windows(mask, int(round(options.motion_context_s * fps)))
    report = _stage(progress, "infill")
    total = len(windows) * options.steps
    pad_s = float(getattr(cfg, "cross_window_s", 0.5)) + 0.5
    prior = is_prior(model)
    sampler = model.infill if prior else functools.partial(infill, model, compile=options.compile)
    for n, window in enumerate(windows):
        local_mask = mask[window.start : window.end]
        local = motion[window.start : window.end]
        known = ~local_mask
        if not np.isfinite(local[known]).all():
            raise ValueError(
                f"motion frames {window.start}-{window.end - 1} around an edit are missing (NaN): extract motion for "
                "every frame within the motion context of the edits"
            )
        grid = model_grid(local_mask, fps, cfg.fps)
        t0 = window.start / fps
        if prior:
            feats, offset, rate = speech, speech.offset_s - t0, None
        else:
            feats, offset = speech_window(speech, t0, (window.end - 1) / fps, pad_s)
            rate = speech.frame_rate

        def step(done: int, steps: int, n: int = n) -> None:
            report(n * options.steps + done * options.steps // max(steps, 1), total)

        generated = sampler(
            torch.from_numpy(to_model_grid(local, grid).astype(np.float32)), torch.from_numpy(grid.mask),
            feats, speech_frame_rate=rate, speech_offset_s=offset, steps=options.steps,
            sway=options.sway, guidance=options.guidance, seed=options.seed + n, progress=step, cancel=cancel,
        )  # fmt: skip
        rows = from_model_grid(generated.double().numpy(), grid, local_mask)
        out[window.start + np.flatnonzero(local_mask)] = rows.astype(np.float32)
    return out


def render_frames(
    lp: LivePortrait,
    frames: np.ndarray,
    track: CropTrack,
    source: MotionTrack,
    driving: np.ndarray,
    indices: Sequence[int],
    *,
    crops: np.ndarray | None = None,
    options: EditOptions = EditOptions(),
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> np.ndarray:
    """Frames with ``indices`` re-rendered from their own appearance, driven by ``driving``, pasted back.

    Every other frame is returned unchanged (the same array values). ``crops`` are the 256x256 face crops of
    ``frames`` if already made.
    """
    out = np.array(frames, dtype=np.float32, copy=True)
    idx = [int(i) for i in indices]
    if not idx:
        return out
    src_crops = crops[idx] if crops is not None else crop_faces(out[idx], track.select(idx))
    for i, image in _rendered_faces(lp, src_crops, source, driving, idx, options, progress, cancel):
        out[i] = paste_back(out[i], image, track, i)
    return out


def _rendered_faces(
    lp: LivePortrait,
    src_crops: np.ndarray,
    source: MotionTrack,
    driving: np.ndarray,
    idx: list[int],
    options: EditOptions,
    progress: Progress | None,
    cancel: Cancel | None,
) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, rendered crop) for the frames ``idx`` in their order, each rendered when it is asked for;
    ``src_crops`` are the crops of those frames."""
    report = _stage(progress, "render")
    for start, rendered in iter_render(
        lp, src_crops, source.select(idx), torch.as_tensor(np.asarray(driving, dtype=np.float32)[idx]),
        chunk_size=options.render_chunk, stitching=options.stitching and lp.stitching is not None,
    ):  # fmt: skip
        if cancel is not None:
            cancel()
        for k, image in enumerate(rendered.numpy()):
            yield idx[start + k], image
        report(start + len(rendered), len(idx))


# ---------------------------------------------------------------------------------------------------------------
# Whole edits


@dataclass
class EditResult:
    frames: np.ndarray
    """(T, H, W, 3) float32 target frames at ``fps``."""
    fps: float
    plan: EditPlan
    audio: dict[str, Any]
    """The edited speech as given, to mux with the frames."""


def make_plan(
    *,
    fps: float,
    source_frames: int,
    original_duration_s: float,
    edited_duration_s: float,
    original_words: Sequence[Word] | None = None,
    edited_words: Sequence[Word] | None = None,
    spans: Sequence[SpanEdit | tuple[float, float, float]] | None = None,
    context_frames: int = 3,
    fit: str = "exact",
) -> EditPlan:
    """An edit plan from word timestamps of both speeches, or from manual spans when there are none (``fit``:
    what manual spans do when they do not fit the edited speech, see ``plan_from_spans``)."""
    if spans:
        return plan_from_spans(
            spans, original_duration_s=original_duration_s, edited_duration_s=edited_duration_s, fps=fps,
            source_frames=source_frames, context_frames=context_frames, fit=fit,
        )  # fmt: skip
    if original_words is None or edited_words is None:
        raise ValueError("give the word timestamps of both speeches (original_words, edited_words) or manual spans")
    return plan_edit(
        original_words, edited_words, original_duration_s=original_duration_s, edited_duration_s=edited_duration_s,
        fps=fps, source_frames=source_frames, context_frames=context_frames,
    )  # fmt: skip


def _windows_for(plan: EditPlan, fps: float, options: EditOptions) -> list[Window]:
    context = int(round(options.motion_context_s * fps))
    work = plan.infill_mask | plan.retimed_mask
    windows = work_windows(work, context)
    if not options.rerender_all:
        return windows
    full: list[Window] = []
    cursor = 0
    for w in [*windows, Window(plan.target_frames, plan.target_frames, ())]:
        for start in range(cursor, w.start, 64):
            full.append(Window(start, min(w.start, start + 64), ()))
        if w.end > w.start:
            full.append(w)
        cursor = w.end
    return full


def faceless_frames(detected: np.ndarray, source_time: np.ndarray) -> np.ndarray:
    """Target frames (at ``source_time``, source frame units) next to a source frame where no face was found:
    a face pasted there would be invented, so they are not re-rendered."""
    missing = ~np.asarray(detected, dtype=bool)
    t = np.asarray(source_time, dtype=np.float64)
    lo = np.clip(np.floor(t).astype(np.int64), 0, len(missing) - 1)
    hi = np.clip(np.ceil(t).astype(np.int64), 0, len(missing) - 1)
    return missing[lo] | missing[hi]


def warn_faceless(faceless: np.ndarray, name: str, searched: str, offset: int = 0) -> None:
    """Log the output frames (``offset`` + index of each True in ``faceless``) kept as they are for want of a face."""
    faceless = np.asarray(faceless, dtype=bool)
    if faceless.any():
        runs = ", ".join(f"{offset + a}-{offset + b - 1}" for a, b in _runs(faceless))
        log.warning("%s: no face was detected for output frames %s (%s); those frames are kept as they are "
                    "instead of getting a face pasted in", name, runs, searched)  # fmt: skip


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of every run of True."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def _iter_window(
    frames: Sequence[np.ndarray] | np.ndarray,
    plan: EditPlan,
    window: Window,
    models: Models,
    speech: SpeechFeatures,
    options: EditOptions,
    progress: Progress | None,
    cancel: Cancel | None,
    name: str = "frames",
) -> Iterator[np.ndarray]:
    """The target frames [window.start, window.end) of an edit, one by one.

    Only the window's 256 px face crops and motion are held, never its frames: the source frames come through a
    :class:`WindowFrames` spill (read from ``frames`` once, in order), and each target frame is made twice, once
    for its face crop (the motion of the whole window is needed before any face is rendered) and once to be
    yielded, with its re-rendered face pasted in. Resampling a retimed frame twice costs its flow twice; holding
    the window instead would cost 100 MB per 4K frame (float32), and the output is the same either way.
    """
    times = plan.source_time[window.start : window.end]
    s0, s1 = int(np.floor(times.min())), int(np.ceil(times.max()))
    local_times = times - s0
    with WindowFrames(frames, s0, s1 + 1, name) as source:
        track = detect_face_track(
            source, face_index=options.face_index, face_order=options.face_order, box=options.face_box,
            smoothing=options.crop_smoothing, progress=_stage(progress, "faces"), name=f"{name} (frames {s0}-{s1})",
        )  # fmt: skip
        faceless = faceless_frames(track.detected, local_times)
        warn_faceless(faceless, name, f"source frames {s0}-{s1} searched", offset=window.start)
        target_track = retime_track(track, local_times)

        def targets(report: Callable[[int, int], None] | None = None) -> Iterator[np.ndarray]:
            for chunk in iter_resampled_frames(
                source, local_times, track.face_box, config=options.resample, chunk_size=1, progress=report
            ):
                if cancel is not None:
                    cancel()
                yield chunk[0]

        crops = np.empty((len(times), INPUT_SIZE, INPUT_SIZE, 3), np.float32)
        for k, frame in enumerate(targets(_stage(progress, "resample"))):
            crops[k] = crop_faces(frame[None], target_track, INPUT_SIZE, indices=[k])[0]
        motion = extract_motion(models.liveportrait, crops, chunk_size=options.extract_chunk,
                                progress=_stage(progress, "motion"))  # fmt: skip
        mask = plan.infill_mask[window.start : window.end]
        source_motion = motion.motion.numpy()
        driving = source_motion
        if mask.any():
            driving = infill_timeline(
                models.facedit, source_motion, mask, plan.fps, speech, options, progress=progress, cancel=cancel
            )
        idx = np.flatnonzero(~faceless if options.rerender_all else mask & ~faceless).tolist()
        faces: Iterator[tuple[int, np.ndarray]] = iter(())
        if idx:
            faces = _rendered_faces(models.liveportrait, crops[idx], motion, driving, idx, options, progress, cancel)
        del crops
        pending = next(faces, None)
        for k, frame in enumerate(targets()):
            if pending is not None and pending[0] == k:
                frame = paste_back(frame, pending[1], target_track, k)
                pending = next(faces, None)
            yield frame


class EditedFrames:
    """The edited clip's target frames (H, W, 3) float32 as a lazy sequence, read in increasing order.

    ``frames`` is any indexable sequence of source frames (an array, or a lazy reader such as
    :class:`~facedit.video_io.VideoFrames`): a frame outside every edit window is read only when it is asked for,
    and each window is held as crops and motion only while it is being read. A writer that copies the untouched
    GOPs asks only for the frames it re-encodes, so the rest of a long clip is never converted and a window
    nobody asks for is never rendered. ``fps``: the frames' rate (default: a reader's ``info.fps``); a plan made
    for another rate or frame count, or speech shorter than the plan's, is refused here.
    """

    def __init__(
        self,
        frames: Sequence[np.ndarray] | np.ndarray,
        plan: EditPlan,
        models: Models,
        speech: SpeechFeatures,
        options: EditOptions = EditOptions(),
        *,
        progress: Progress | None = None,
        cancel: Cancel | None = None,
        name: str = "frames",
        fps: float | None = None,
    ):
        if fps is None:
            info = getattr(frames, "info", None)
            fps = float(info.fps) if info is not None else plan.fps
        try:
            plan.check_matches(len(frames), float(fps))
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from err
        if speech.duration_s + 1.0 / plan.fps < plan.edited_duration_s - 1e-6:
            raise ValueError(
                f"the speech features cover {speech.duration_s:.3f} s but the plan's edited speech lasts "
                f"{plan.edited_duration_s:.3f} s: encode the edited speech the plan was built for"
            )
        self._frames, self._plan, self._name = frames, plan, name
        self._window_args = (models, speech, options, progress, cancel, name)
        self._cancel = cancel
        self._windows = _windows_for(plan, plan.fps, options)
        self._starts = [w.start for w in self._windows]
        self._next = 0
        self._open: tuple[Window, Iterator[np.ndarray]] | None = None
        self._open_next = 0  # the open window's next target frame

    def __len__(self) -> int:
        return self._plan.target_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        for k in range(self._next, len(self)):
            yield self[k]

    def __getitem__(self, index: int) -> np.ndarray:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"{self._name}: edited frame {index} is outside the plan's {len(self)} target frames")
        if index < self._next:
            raise IndexError(f"{self._name}: edited frames are made in increasing order; frame {index} was asked for "
                             f"after frame {self._next - 1}")  # fmt: skip
        self._next = index + 1
        at = bisect.bisect_right(self._starts, index) - 1
        window = self._windows[at] if at >= 0 and index < self._windows[at].end else None
        if window is None:
            self._close()
            return np.asarray(self._frames[int(self._plan.source_time[index])], dtype=np.float32)
        if self._open is None or self._open[0] is not window:
            self._close()
            if self._cancel is not None:
                self._cancel()
            self._open = (window, _iter_window(self._frames, self._plan, window, *self._window_args))
            self._open_next = window.start
        while True:
            frame = next(self._open[1])
            self._open_next += 1
            if self._open_next > index:
                if self._open_next == window.end:
                    self._close()
                return frame

    def _close(self) -> None:
        if self._open is not None:
            self._open[1].close()
            self._open = None


def iter_edit(
    frames: Sequence[np.ndarray] | np.ndarray,
    plan: EditPlan,
    models: Models,
    speech: SpeechFeatures,
    options: EditOptions = EditOptions(),
    **keywords: Any,
) -> Iterator[np.ndarray]:
    """Every target frame of :class:`EditedFrames` in order (the same arguments, keywords ``progress``, ``cancel``,
    ``name``, ``fps``; they are checked here, not at the first frame)."""
    return iter(EditedFrames(frames, plan, models, speech, options, **keywords))


def edit(
    frames: Sequence[np.ndarray] | np.ndarray,
    fps: float,
    edited_speech: dict[str, Any],
    models: Models,
    *,
    original_words: Sequence[Word] | None = None,
    edited_words: Sequence[Word] | None = None,
    spans: Sequence[SpanEdit | tuple[float, float, float]] | None = None,
    original_duration_s: float | None = None,
    options: EditOptions = EditOptions(),
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> EditResult:
    """Edit a talking-head clip to new speech: frames on the new timeline plus the edited speech to mux.

    ``edited_speech`` is a ComfyUI-style AUDIO dict ``{"waveform": [B, C, S], "sample_rate": sr}``.
    ``original_duration_s`` defaults to the video's duration.
    """
    n = len(frames)
    plan = make_plan(
        fps=fps, source_frames=n, original_duration_s=original_duration_s or n / fps,
        edited_duration_s=audio_duration(edited_speech), original_words=original_words, edited_words=edited_words,
        spans=spans, context_frames=options.context_frames,
    )  # fmt: skip
    speech = encode_speech(models, edited_speech, progress)
    out = np.stack(list(iter_edit(frames, plan, models, speech, options, progress=progress, cancel=cancel, fps=fps)))
    return EditResult(out, fps, plan, edited_speech)


def generate(
    portrait: np.ndarray,
    speech_audio: dict[str, Any],
    models: Models,
    *,
    fps: float = 25.0,
    options: EditOptions = EditOptions(),
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    name: str = "the portrait",
) -> EditResult:
    """A talking clip from one portrait (H, W, 3) float in 0..1 and speech, at ``fps``; ``name`` (e.g. the image
    file) is what errors call the portrait.

    Frame 0 keeps the portrait's own motion (the prompt); every later frame's motion is generated from the
    speech and rendered from the portrait's appearance.
    """
    image = np.asarray(portrait, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"portrait must be one image (H, W, 3), got shape {image.shape}")
    plan = plan_generation(audio_duration(speech_audio), fps=fps, prompt_frames=1)
    speech = encode_speech(models, speech_audio, progress)
    track = detect_face_track(image[None], face_index=options.face_index, face_order=options.face_order,
                              box=options.face_box, progress=_stage(progress, "faces"), name=name)  # fmt: skip
    crop = crop_faces(image[None], track)
    source = extract_motion(models.liveportrait, crop)
    motion = np.full((plan.target_frames, MOTION_DIM), np.nan, dtype=np.float32)
    motion[~plan.infill_mask] = source.motion.numpy()[0]
    gen_options = EditOptions(**{**options.__dict__, "motion_context_s": plan.target_frames / fps})
    driving = infill_timeline(models.facedit, motion, plan.infill_mask, fps, speech, gen_options,
                              progress=progress, cancel=cancel)  # fmt: skip
    out = np.empty((plan.target_frames, *image.shape), dtype=np.float32)
    out[0] = image
    idx = np.flatnonzero(plan.infill_mask)
    report = _stage(progress, "render")
    for start, rendered in iter_render(
        models.liveportrait, crop, source, torch.from_numpy(driving[idx]), chunk_size=options.render_chunk,
        stitching=options.stitching and models.liveportrait.stitching is not None,
    ):  # fmt: skip
        if cancel is not None:
            cancel()
        for k, img in enumerate(rendered.numpy()):
            out[idx[start + k]] = paste_back(image, img, track, 0)
        report(start + len(rendered), len(idx))
    return EditResult(out, fps, plan, speech_audio)


def write_clip(path: Any, frames: Any, count: int, fps: float, audio: dict[str, Any],
               progress: Progress | None = None) -> None:  # fmt: skip
    """An mp4 (H.264 + AAC) of ``count`` frames at ``fps`` with ``audio`` muxed in from frame 0."""
    from pathlib import Path

    from .video_io import write_video

    wave = audio["waveform"][0].float().numpy()
    if wave.shape[0] > 2:
        wave = wave.mean(0, keepdims=True)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    report = _stage(progress, "write")
    write_video(path, frames, fps, audio=wave, sample_rate=audio["sample_rate"], progress=lambda n: report(n, count))


def original_speech_duration(video: Any, frame_count: int, fps: float) -> float:
    """Seconds of a video's own speech: its audio track's length, else its frames' duration."""
    from .video_io import audio_seconds

    seconds = audio_seconds(video)
    return seconds if seconds is not None else frame_count / fps


def edit_file(
    video: Any,
    speech: Any,
    out: Any,
    models: Models,
    *,
    original_words: Sequence[Word] | None = None,
    edited_words: Sequence[Word] | None = None,
    spans: Sequence[SpanEdit | tuple[float, float, float]] | None = None,
    original_duration_s: float | None = None,
    options: EditOptions = EditOptions(),
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    output: Any = None,
    fps: Any = None,
    on_plan: Callable[[EditPlan], None] | None = None,
) -> EditPlan:
    """Edit a video file to a speech file and write ``out`` (.mp4/.mov/.mkv), streaming frames; returns the plan.

    ``original_duration_s`` defaults to the video's own audio track (else the video's duration). ``output`` is
    a :class:`facedit.video.OutputFormat` (default: smart render, copying every GOP the edit does not touch).
    ``fps``: read the video at this rate by its frames' timestamps (default: its own rate; a variable-rate video
    is read at its average rate, see :mod:`facedit.video.timing`). ``on_plan`` is called with the plan before
    the long stages (to show its warnings). The file appears at ``out`` only when complete; ``out`` may not be
    the input video.
    """
    from .video import OutputFormat, check_output_path, write_edited_video
    from .video_io import VideoFrames

    check_output_path(out, video, speech)
    frames = VideoFrames(video, fps=fps)
    rate = float(frames.info.fps)
    edited = load_audio_file(speech)
    if original_duration_s is None:
        original_duration_s = original_speech_duration(video, len(frames), rate)
    plan = make_plan(
        fps=rate, source_frames=len(frames), original_duration_s=original_duration_s,
        edited_duration_s=audio_duration(edited), original_words=original_words, edited_words=edited_words,
        spans=spans, context_frames=options.context_frames,
    )  # fmt: skip
    if on_plan is not None:
        on_plan(plan)
    features = encode_speech(models, edited, progress, plan, options)
    target = EditedFrames(frames, plan, models, features, options, progress=progress, cancel=cancel, name=str(video))
    wave = edited["waveform"][0].float().numpy()
    write_edited_video(out, video, plan, target, audio=wave, sample_rate=edited["sample_rate"],
                       output=output or OutputFormat(), progress=_stage(progress, "write"), source_fps=fps)  # fmt: skip
    return plan

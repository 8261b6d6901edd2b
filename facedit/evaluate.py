"""Evaluate talking-face edits on a FacEDiT Bench manifest and print the paper's tables.

    python -m facedit.evaluate --manifest bench.jsonl --edited-dir out/ --json scores.json \\
        [--arcface w600k_r50.onnx] [--face-detector yunet.onnx] [--syncnet syncnet_v2.model] \\
        [--i3d rgb_imagenet.pt] [--flow dis|raft] [--raft-weights raft_large.pth]

The edited video of sample ``id`` is the manifest's ``edited_video`` or ``<edited-dir>/<id>.mp4``
(``--run-pipeline`` makes them with :mod:`facedit.pipeline` instead). Per sample (frame ``i`` at ``i / fps``;
spans are ``[round(start * fps), round(end * fps))``, so the seams measured are the transitions into frame
``round(start * fps)`` and into frame ``round(end * fps)``; given the edit's plan, `evaluate_sample` measures
the plan's real seams instead, see `plan_boundaries`. The CLI reads a plan from ``<edited video>.plan.json``
where there is one, and ``--run-pipeline`` writes it; ``details.seams`` in the JSON names the frames compared):

- the original span comes from ``original_start_s/original_end_s``; the edited span from
  ``edited_start_s/edited_end_s`` or, when absent, starts at ``original_start_s`` and ends at
  ``original_end_s + (edited speech duration - original speech duration)``;
- P_continuity / M_continuity at the edit boundaries (see :mod:`facedit.metrics.continuity`);
- the *evaluated segment* of the edited video is the edited span, widened symmetrically to at least
  ``--min-segment`` seconds (a deletion's span is empty: its segment is the seam and its surroundings);
- IDSIM between up to ``--id-frames`` frames spread over the whole original video and up to as many
  frames of the evaluated segment (needs ``--arcface``);
- LSE-D / LSE-C of the evaluated segment against the same stretch of the edited speech file
  (needs ``--syncnet``);
- FVD per table row from one 16-frame I3D clip per sample: around the edited span of the edited video
  and around the original span of the original video (needs ``--i3d``).

Metrics whose model is not given are reported as not computed, with the flag that enables them.
Tables: one row for all samples, one per edit type and one per span class, each with its sample count;
a metric averaged over fewer samples than the row has (no face found, segment too short) shows ``[k/n]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from .bench_manifest import EDIT_TYPES, SPAN_CLASSES, BenchSample, load_manifest
from .cli import check_device, error_line, run_reporting
from .metrics import continuity as cont
from .metrics.faces import CentreFace, YuNetDetector
from .video import atomic_output, plan_path, read_plan_file, write_plan_file
from .video_io import iter_frames, probe_video, read_audio

METRICS = ("LSE-D", "LSE-C", "IDSIM", "FVD", "P_continuity", "M_continuity")
HIGHER_IS_BETTER = ("LSE-C", "IDSIM")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi")


@dataclass(frozen=True)
class EvalOptions:
    """What to compute and with which models (paths are user-supplied files; nothing is downloaded)."""

    flow: str = "dis"
    raft_weights: str | None = None
    flow_max_side: int | None = None
    arcface: str | None = None
    face_detector: str | None = None
    syncnet: str | None = None
    i3d: str | None = None
    device: str = "cpu"
    min_segment_s: float = 0.5
    id_frames: int = 32

    def __post_init__(self):
        if self.flow not in ("dis", "raft"):
            raise ValueError(f"flow: expected 'dis' or 'raft', got {self.flow!r}")
        if not self.min_segment_s >= 0:
            raise ValueError(f"min_segment_s: expected >= 0, got {self.min_segment_s}")
        if self.id_frames < 1:
            raise ValueError(f"id_frames: expected >= 1, got {self.id_frames}")


@dataclass
class SampleResult:
    id: str
    edit_type: str
    span_class: str
    edited_video: str
    metrics: dict[str, float | None] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class EvalReport:
    options: dict[str, Any]
    not_computed: dict[str, str]
    samples: list[SampleResult]
    groups: dict[str, dict[str, Any]]
    counts: dict[str, dict[str, int]]

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(
            {
                "version": 1,
                "options": self.options,
                "not_computed": self.not_computed,
                "groups": self.groups,
                "counts": self.counts,
                "samples": [asdict(s) for s in self.samples],
            }
        )


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, Fraction):
        return f"{x.numerator}/{x.denominator}"
    return x


# ---------------------------------------------------------------- where the edited videos come from


def resolve_edited_videos(samples: Sequence[BenchSample], edited_dir: str | None) -> dict[str, str]:
    """``{id: path}`` from each sample's ``edited_video`` or ``<edited_dir>/<id>.<ext>``; lists all missing."""
    found, missing = {}, []
    for s in samples:
        if s.edited_video is not None:
            path = s.edited_video
        elif edited_dir is not None:
            candidates = [os.path.join(edited_dir, s.id + ext) for ext in VIDEO_EXTENSIONS]
            path = next((c for c in candidates if os.path.isfile(c)), candidates[0])
        else:
            missing.append(f"{s.id}: no edited_video in the manifest and no --edited-dir")
            continue
        if os.path.isfile(path):
            found[s.id] = path
        else:
            missing.append(f"{s.id}: {path}")
    if missing:
        raise FileNotFoundError(f"{len(missing)} edited video(s) not found:\n  " + "\n  ".join(missing))
    return found


def load_plans(edited_videos: dict[str, str]) -> dict[str, Any]:
    """``{id: EditPlan}`` of the edited videos with a plan file beside them (`plan_path`); a bad file, or one
    written for a video that has since been replaced (`read_plan_file`), is an error."""
    plans, bad = {}, []
    for sample_id, video in edited_videos.items():
        path = plan_path(video)
        if not os.path.isfile(path):
            continue
        try:
            plans[sample_id] = read_plan_file(path, video)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            bad.append(f"{sample_id}: {path}: {exc}")
    if bad:
        raise ValueError(f"{len(bad)} edit plan file(s) could not be used:\n  " + "\n  ".join(bad))
    return plans


def run_pipeline_edits(
    samples: Sequence[BenchSample],
    out_dir: str,
    pipeline_kwargs: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """Edit every sample with the FacEDiT pipeline into ``<out_dir>/<id>.mp4``; returns ``{id: path}``.

    Each edit's plan is written beside its video (`plan_path`), so the seams measured are the real ones.

    The manifest's edit span (original start/end, and the edited span's length, given or derived from the two
    speeches' durations) becomes a manual-span edit. ``pipeline_kwargs``: ``models`` (folder, default
    ``models``), ``device``, ``precision`` (fp32/fp16/bf16), and any ``EditOptions`` field (steps, seed, ...).
    """
    import torch

    from .models import load_models
    from .pipeline import EditOptions, edit_file

    kwargs = dict(pipeline_kwargs or {})
    models_dir = kwargs.pop("models", "models")
    device = kwargs.pop("device", "cpu")
    dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    precision = kwargs.pop("precision", "fp32")
    if precision not in dtypes:
        raise ValueError(f"--pipeline-arg precision: expected one of {sorted(dtypes)}, got {precision!r}")
    fields = EditOptions.__dataclass_fields__
    unknown = sorted(set(kwargs) - set(fields))
    if unknown:
        raise ValueError(
            f"--pipeline-arg: unknown keys {unknown}; expected models, device, precision or {sorted(fields)}"
        )
    options = EditOptions(**{k: type(getattr(EditOptions(), k))(v) for k, v in kwargs.items()})
    models = load_models(models_dir, device=device, dtype=dtypes[precision])
    os.makedirs(out_dir, exist_ok=True)
    out = {}
    for s in samples:
        path = os.path.join(out_dir, s.id + ".mp4")
        if progress is not None:
            progress(f"editing {s.id} -> {path}")
        original_speech = s.original_speech or s.original_video
        if s.edited_start_s is not None:
            new_duration = s.edited_end_s - s.edited_start_s
        else:
            new_duration = s.original_end_s - s.original_start_s
            new_duration += _speech_duration(s.edited_speech) - _speech_duration(original_speech)
        if new_duration < 0:
            raise ValueError(
                f"sample {s.id!r}: the edited span would last {new_duration:.3f} s; give edited_start_s/end_s"
            )
        plan = edit_file(
            s.original_video, s.edited_speech, path, models, options=options,
            spans=[(s.original_start_s, s.original_end_s, new_duration)],
            original_duration_s=_speech_duration(original_speech),
        )  # fmt: skip
        write_plan_file(plan, path)
        out[s.id] = path
    return out


# ---------------------------------------------------------------- models


@dataclass
class MetricModels:
    """Loaded once, used for every sample: flow function, face detector, and the optional networks."""

    flow: Any
    detector: Any
    arcface: Any = None
    syncnet: Any = None
    i3d: Any = None


def load_metric_models(options: EvalOptions) -> tuple[MetricModels, dict[str, str]]:
    """The models named in ``options`` and, for each metric left out, the flag that would enable it."""
    from .metrics.identity import ArcFaceONNX

    not_computed = {}
    flow = cont.make_flow(options.flow, options.raft_weights, options.device)
    detector = YuNetDetector(options.face_detector) if options.face_detector else CentreFace()
    models = MetricModels(flow=flow, detector=detector)
    if options.arcface:
        models.arcface = ArcFaceONNX(options.arcface)
    else:
        not_computed["IDSIM"] = "pass --arcface (an ArcFace ONNX model, e.g. w600k_r50.onnx)"
    if options.syncnet:
        from .metrics.syncnet import load_syncnet

        models.syncnet = load_syncnet(options.syncnet, options.device)
    else:
        not_computed["LSE-D"] = not_computed["LSE-C"] = "pass --syncnet (syncnet_v2.model)"
    if options.i3d:
        from .metrics.fvd import load_i3d

        models.i3d = load_i3d(options.i3d, options.device)
    else:
        not_computed["FVD"] = "pass --i3d (Inception-I3D weights, rgb_imagenet.pt)"
    return models, not_computed


# ---------------------------------------------------------------- one sample


def _speech_duration(path: str) -> float:
    audio = read_audio(path)
    if audio is None:
        raise ValueError(f"{path}: has no audio stream")
    return audio[0].shape[1] / audio[1]


def _read_frames(path: str, indices: set[int]) -> dict[int, np.ndarray]:
    """The frames with the given indices, as uint8 (decoded in one pass, nothing else kept)."""
    wanted = sorted(i for i in indices if i >= 0)
    if not wanted:
        return {}
    out = {}
    for i, frame in enumerate(iter_frames(path, 0, wanted[-1] + 1, dtype="uint8")):
        if i in indices:
            out[i] = frame
    return out


def _spread(start: int, end: int, count: int) -> list[int]:
    if end <= start:
        return []
    return sorted(set(np.linspace(start, end - 1, min(count, end - start)).round().astype(int).tolist()))


def edit_spans(
    sample: BenchSample, fps: Fraction, original_frames: int, edited_frames: int
) -> tuple[tuple[int, int], tuple[int, int], dict[str, float]]:
    """(original span, edited span) in frames and the edited span's times in seconds (see module doc)."""
    rate = float(fps)
    os_, oe = sample.original_start_s, sample.original_end_s
    if sample.edited_start_s is not None:
        es, ee = sample.edited_start_s, sample.edited_end_s
    else:
        original_speech = sample.original_speech or sample.original_video
        delta = _speech_duration(sample.edited_speech) - _speech_duration(original_speech)
        es, ee = os_, oe + delta
        if ee < es - 1.0 / rate:
            raise ValueError(
                f"sample {sample.id!r}: derived edited span ends before it starts ({es:.3f}..{ee:.3f} s); "
                "give edited_start_s/edited_end_s in the manifest"
            )
        ee = max(ee, es)
    ospan = (round(os_ * rate), round(oe * rate))
    espan = (round(es * rate), round(ee * rate))
    if ospan[1] > original_frames:
        raise ValueError(
            f"sample {sample.id!r}: original span ends at frame {ospan[1]} but the original video has "
            f"{original_frames} frames"
        )
    if espan[1] > edited_frames:
        raise ValueError(
            f"sample {sample.id!r}: edited span ends at frame {espan[1]} but the edited video has "
            f"{edited_frames} frames"
        )
    return ospan, espan, {"edited_start_s": es, "edited_end_s": ee}


def plan_boundaries(plan: Any, original_frames: int, edited_frames: int) -> list[cont.Boundary]:
    """The true seams of an edit made by this pack: where its plan's re-rendered frames meet kept ones.

    The pack re-renders ``plan.infill_mask`` (the edit, from ``floor(start * fps)`` to
    ``ceil(end * fps)``, plus ``context_frames`` on each side), so the manifest's rounded span can miss
    the real seam by a few frames. For each run ``[a, b)`` of masked target frames: the start seam is
    ``E[a-1] -> E[a]`` against ``O[s] -> O[s+1]`` with ``s = round(source_time[a-1])`` (the kept frame
    before the run and the original frame that followed it); the end seam ``E[b-1] -> E[b]`` against
    ``O[s-1] -> O[s]`` with ``s = round(source_time[b])``. Seams at the very start or end of either
    video are left out, as in `facedit.metrics.continuity.edit_boundaries`.
    """
    mask = np.asarray(plan.infill_mask, dtype=bool)
    if mask.shape != (edited_frames,):
        raise ValueError(
            f"plan: has {mask.shape[0]} target frames but the edited video has {edited_frames}; "
            "evaluate the video this plan made"
        )
    if plan.source_frames != original_frames:
        raise ValueError(
            f"plan: was made for {plan.source_frames} source frames but the original video has {original_frames}"
        )
    source = np.asarray(plan.source_time, dtype=np.float64)
    edges = np.flatnonzero(np.diff(np.concatenate(([False], mask, [False])).astype(np.int8)))
    out = []
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        if a >= 1:
            s = int(round(source[a - 1])) + 1
            if 1 <= s < original_frames:
                out.append(cont.Boundary(int(a), s))
        if b < edited_frames:
            s = int(round(source[b]))
            if 1 <= s < original_frames:
                out.append(cont.Boundary(int(b), s))
    return out


def _segment(span: tuple[int, int], min_frames: int, total: int) -> tuple[int, int]:
    start, end = span
    if end - start < min_frames:
        grow = min_frames - (end - start)
        start, end = start - grow // 2, end + grow - grow // 2
        if start < 0:
            start, end = 0, end - start
        if end > total:
            start, end = max(0, start - (end - total)), total
    return start, end


def evaluate_sample(
    sample: BenchSample,
    edited_video: str,
    options: EvalOptions,
    models: MetricModels | None = None,
    plan: Any = None,
) -> tuple[SampleResult, dict[str, np.ndarray]]:
    """Metrics of one sample, and its I3D clip features (``real``/``generated``) when FVD is on.

    plan: the `facedit.edits.EditPlan` that made ``edited_video`` (optional). With it, continuity is
    measured at the plan's real seams (`plan_boundaries`); without it, at the manifest span's rounded
    frames (`edit_spans`). ``details["seams"]`` lists the frames compared, as
    ``[edited k-1, edited k, original k'-1, original k']``, ``details["seam_P"]`` / ``["seam_M"]`` the score
    at each, and ``details["seam_source"]`` which rule.
    """
    from .metrics.fvd import clip_indices, i3d_features
    from .metrics.identity import face_embeddings, identity_similarity
    from .metrics.syncnet import lip_sync_score

    if models is None:
        models, _ = load_metric_models(options)
    result = SampleResult(sample.id, sample.edit_type, sample.span_class, edited_video)
    oinfo, einfo = probe_video(sample.original_video), probe_video(edited_video)
    if oinfo.fps != einfo.fps:
        raise ValueError(
            f"sample {sample.id!r}: edited video runs at {einfo.fps} fps, the original at {oinfo.fps} fps; "
            "an edit must keep the original frame rate"
        )
    if (oinfo.width, oinfo.height) != (einfo.width, einfo.height):
        raise ValueError(
            f"sample {sample.id!r}: edited video is {einfo.width}x{einfo.height}, the original "
            f"{oinfo.width}x{oinfo.height}; evaluate at the original resolution"
        )
    fps = oinfo.fps
    ospan, espan, times = edit_spans(sample, fps, oinfo.frame_count, einfo.frame_count)
    if plan is None:
        bounds = cont.edit_boundaries(ospan, espan, oinfo.frame_count, einfo.frame_count)
    else:
        bounds = plan_boundaries(plan, oinfo.frame_count, einfo.frame_count)
    segment = _segment(espan, math.ceil(options.min_segment_s * float(fps)), einfo.frame_count)
    result.details.update(
        fps=fps,
        original_frames=oinfo.frame_count,
        edited_frames=einfo.frame_count,
        original_span_frames=list(ospan),
        edited_span_frames=list(espan),
        segment_frames=list(segment),
        boundaries=len(bounds),
        seam_source="manifest" if plan is None else "plan",
        seams=[[b.edited_index - 1, b.edited_index, b.original_index - 1, b.original_index] for b in bounds],
        **times,
    )

    e_need = {i for b in bounds for i in (b.edited_index - 1, b.edited_index)}
    o_need = {i for b in bounds for i in (b.original_index - 1, b.original_index)}
    seg_idx = list(range(*segment))
    if models.arcface is not None or models.syncnet is not None:
        e_need |= set(seg_idx)
    orig_id_idx = _spread(0, oinfo.frame_count, options.id_frames) if models.arcface is not None else []
    o_need |= set(orig_id_idx)
    if models.i3d is not None:
        fake_clip = clip_indices(*espan, einfo.frame_count)
        real_clip = clip_indices(*ospan, oinfo.frame_count)
        e_need |= set(fake_clip.tolist())
        o_need |= set(real_clip.tolist())
    eframes, oframes = _read_frames(edited_video, e_need), _read_frames(sample.original_video, o_need)

    p = cont.photometric_continuity(eframes, oframes, bounds)
    m = cont.motion_continuity(eframes, oframes, bounds, models.flow, options.flow_max_side)
    result.metrics["P_continuity"], result.metrics["M_continuity"] = p.value, m.value
    result.details.update(seam_P=list(p.per_boundary), seam_M=list(m.per_boundary))

    if models.arcface is not None:
        gen_idx = _spread(segment[0], segment[1], options.id_frames)
        ea, _ = face_embeddings((oframes[i] for i in orig_id_idx), models.detector, models.arcface)
        eb, _ = face_embeddings((eframes[i] for i in gen_idx), models.detector, models.arcface)
        result.details.update(id_original_faces=len(ea), id_generated_faces=len(eb))
        result.metrics["IDSIM"] = identity_similarity(ea, eb) if len(ea) and len(eb) else math.nan

    if models.syncnet is not None:
        speech = read_audio(sample.edited_speech)
        if speech is None:
            raise ValueError(f"{sample.edited_speech}: has no audio stream")
        wave, sr = speech
        a0, a1 = round(segment[0] / fps * sr), round(segment[1] / fps * sr)
        try:
            sync = lip_sync_score(
                models.syncnet,
                [eframes[i] for i in seg_idx],
                float(fps),
                wave[:, a0:a1],
                sr,
                models.detector,
                options.device,
            )
            result.metrics["LSE-D"], result.metrics["LSE-C"] = sync.lse_d, sync.lse_c
            result.details.update(sync_offset=sync.offset, sync_windows=sync.windows)
        except ValueError as exc:  # segment too short or no face: reported, not fatal
            result.metrics["LSE-D"] = result.metrics["LSE-C"] = math.nan
            result.details["sync_note"] = str(exc)

    feats = {}
    if models.i3d is not None:
        fake = i3d_features(
            models.i3d, [np.stack([eframes[i] for i in fake_clip]).astype(np.float32) / 255], options.device
        )
        real = i3d_features(
            models.i3d, [np.stack([oframes[i] for i in real_clip]).astype(np.float32) / 255], options.device
        )
        feats = {"generated": fake[0], "real": real[0]}
    return result, feats


# ---------------------------------------------------------------- all samples, tables


def _group_names(result: SampleResult) -> list[str]:
    return ["all", result.edit_type, result.span_class]


def summarize(results: Sequence[SampleResult], features: dict[str, dict[str, np.ndarray]]) -> dict[str, dict]:
    """Per group (all, each edit type, each span class): sample count and each metric's mean and count."""
    from .metrics.fvd import fvd_from_features

    groups: dict[str, dict] = {}
    for name in ("all", *EDIT_TYPES, *SPAN_CLASSES):
        members = [r for r in results if r.error is None and name in _group_names(r)]
        entry: dict[str, Any] = {
            "n": len(members),
            "failed": sum(1 for r in results if r.error and name in _group_names(r)),
        }
        metrics = {}
        for metric in METRICS:
            if metric == "FVD":
                ids = [r.id for r in members if r.id in features]
                value = None
                if len(ids) >= 2:
                    real = np.stack([features[i]["real"] for i in ids])
                    fake = np.stack([features[i]["generated"] for i in ids])
                    value = fvd_from_features(real, fake)
                metrics[metric] = {"mean": value, "n": len(ids)}
                continue
            values = [r.metrics.get(metric) for r in members]
            values = [v for v in values if v is not None and math.isfinite(v)]
            metrics[metric] = {"mean": float(np.mean(values)) if values else None, "n": len(values)}
        entry["metrics"] = metrics
        groups[name] = entry
    return groups


def _counts(results: Sequence[SampleResult]) -> dict[str, dict[str, int]]:
    table = {c: {t: 0 for t in (*EDIT_TYPES, "total")} for c in (*SPAN_CLASSES, "total")}
    for r in results:
        for c in (r.span_class, "total"):
            table[c][r.edit_type] += 1
            table[c]["total"] += 1
    return table


def evaluate_samples(
    samples: Sequence[BenchSample],
    edited_videos: dict[str, str],
    options: EvalOptions,
    progress: Callable[[str], None] | None = None,
    plans: dict[str, Any] | None = None,
    debug: bool = False,
) -> EvalReport:
    """Evaluate every sample (a failing sample is recorded with its error; the others go on; ``debug``: raise).

    plans: ``{id: EditPlan}`` of the samples whose edit plan is known (their seams are taken from it).
    """
    plans = plans or {}
    models, not_computed = load_metric_models(options)
    results, features = [], {}
    for n, sample in enumerate(samples, 1):
        t0 = time.perf_counter()
        try:
            result, feats = evaluate_sample(sample, edited_videos[sample.id], options, models, plans.get(sample.id))
            if feats:
                features[sample.id] = feats
        except Exception as exc:  # any failure of one sample is its error line; the others go on
            if debug:
                raise
            result = SampleResult(
                sample.id, sample.edit_type, sample.span_class, edited_videos[sample.id], error=error_line(exc)
            )
        results.append(result)
        if progress is not None:
            status = "FAILED: " + result.error if result.error else "ok"
            progress(f"[{n}/{len(samples)}] {sample.id}: {status} ({time.perf_counter() - t0:.1f} s)")
    opts = asdict(options)
    opts["face_detector"] = options.face_detector or "centre crop (no detector)"
    return EvalReport(opts, not_computed, results, summarize(results, features), _counts(results))


def format_tables(report: EvalReport) -> str:
    """The paper-style tables as text: metrics per group with sample counts, and the Table 1 counts."""
    arrows = {m: "↑" if m in HIGHER_IS_BETTER else "↓" for m in METRICS}
    header = ["group", "n"] + [m + arrows[m] for m in METRICS]
    rows = []
    for name, entry in report.groups.items():
        cells = [name, str(entry["n"]) + (f" ({entry['failed']} failed)" if entry["failed"] else "")]
        for metric in METRICS:
            if metric in report.not_computed:
                cells.append("n/a")
                continue
            stat = entry["metrics"][metric]
            if stat["mean"] is None:
                cells.append("-")
            else:
                text = f"{stat['mean']:.3f}"
                if metric != "FVD" and stat["n"] != entry["n"]:
                    text += f" [{stat['n']}/{entry['n']}]"
                cells.append(text)
        rows.append(cells)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [
        f"FacEDiT Bench: {report.groups['all']['n']} sample(s) evaluated; flow: {report.options['flow']}; "
        f"faces: {report.options['face_detector']}",
        line(header),
        line(["-" * w for w in widths]),
    ]
    out += [line(r) for r in rows]
    for metric, reason in report.not_computed.items():
        out.append(f"{metric}: not computed ({reason})")
    sources = [s.details.get("seam_source") for s in report.samples if s.error is None]
    if sources:
        out.append(
            f"seams: from the edit plan for {sources.count('plan')} sample(s), from the manifest's rounded span "
            f"for {sources.count('manifest')} (frames compared: details.seams in --json)"
        )
    out.append("")
    ctypes = [*EDIT_TYPES, "total"]
    cheader = ["span \\ type", *ctypes]
    crow = [[c, *(str(report.counts[c][t]) for t in ctypes)] for c in report.counts]
    cw = [max(len(r[i]) for r in [cheader, *crow]) for i in range(len(cheader))]
    out.append("  ".join(c.ljust(w) for c, w in zip(cheader, cw, strict=True)))
    out += ["  ".join(c.ljust(w) for c, w in zip(r, cw, strict=True)) for r in crow]
    failed = [s for s in report.samples if s.error]
    if failed:
        out.append("")
        out.append(f"{len(failed)} sample(s) failed:")
        out += [f"  {s.id}: {s.error}" for s in failed]
    return "\n".join(out)


# ---------------------------------------------------------------- CLI


def _parse_kv(items: Sequence[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--pipeline-arg: expected key=value, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m facedit.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--manifest", required=True, help="bench manifest (JSON Lines or JSON), see facedit.bench_manifest")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--edited-dir", help="folder with the edited videos, <id>.mp4 per sample")
    src.add_argument("--run-pipeline", metavar="OUT_DIR", help="edit every sample with facedit.pipeline into OUT_DIR")
    p.add_argument(
        "--pipeline-arg", action="append", default=[], metavar="KEY=VALUE", help="extra pipeline.edit argument"
    )
    p.add_argument("--json", dest="json_out", help="write all results as JSON here")
    p.add_argument("--samples", help="comma-separated sample ids to evaluate (default: all)")
    p.add_argument(
        "--flow", choices=("dis", "raft"), default="dis", help="optical flow for M_continuity (default: dis)"
    )
    p.add_argument("--raft-weights", help="RAFT-large weights file (torchvision layout) for --flow raft")
    p.add_argument("--flow-max-side", type=int, help="compute flow on frames downscaled to this longer side")
    p.add_argument("--arcface", help="ArcFace ONNX model for IDSIM (e.g. w600k_r50.onnx)")
    p.add_argument("--face-detector", help="YuNet ONNX face detector; default: centre crop (face-cropped videos)")
    p.add_argument("--syncnet", help="syncnet_v2.model for LSE-D / LSE-C")
    p.add_argument("--i3d", help="Inception-I3D weights (rgb_imagenet.pt) for FVD")
    p.add_argument("--device", default="cpu", help="torch device for SyncNet, I3D and RAFT (default: cpu)")
    p.add_argument("--min-segment", type=float, default=0.5, help="shortest evaluated segment in seconds (default 0.5)")
    p.add_argument("--id-frames", type=int, default=32, help="frames per side for IDSIM (default 32)")
    p.add_argument("--debug", action="store_true", help="on an error, show the full traceback")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Exit code 0: all samples evaluated; 1: some samples failed (listed); 2: nothing evaluated (one error line)."""
    args = build_parser().parse_args(argv)
    return run_reporting(lambda: _run(args), args.debug, "evaluate: error", error_code=2)


def _run(args: argparse.Namespace) -> int:
    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    check_device(args.device)
    samples = load_manifest(args.manifest)
    if args.samples:
        wanted = [s.strip() for s in args.samples.split(",") if s.strip()]
        unknown = sorted(set(wanted) - {s.id for s in samples})
        if unknown:
            raise ValueError(f"--samples: not in the manifest: {', '.join(unknown)}")
        samples = [s for s in samples if s.id in wanted]
    options = EvalOptions(
        flow=args.flow,
        raft_weights=args.raft_weights,
        flow_max_side=args.flow_max_side,
        arcface=args.arcface,
        face_detector=args.face_detector,
        syncnet=args.syncnet,
        i3d=args.i3d,
        device=args.device,
        min_segment_s=args.min_segment,
        id_frames=args.id_frames,
    )
    if args.run_pipeline:
        edited = run_pipeline_edits(samples, args.run_pipeline, _parse_kv(args.pipeline_arg), log)
    else:
        edited = resolve_edited_videos(samples, args.edited_dir)
    report = evaluate_samples(samples, edited, options, log, load_plans(edited), debug=args.debug)
    print(format_tables(report))
    if args.json_out:
        with atomic_output(args.json_out) as tmp, open(tmp, "w", encoding="utf-8") as f:
            json.dump(report.to_dict(), f, indent=2, ensure_ascii=False)
        log(f"wrote {args.json_out}")
    return 1 if any(s.error for s in report.samples) else 0


if __name__ == "__main__":
    sys.exit(main())

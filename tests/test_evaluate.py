import json
import math
import wave

import numpy as np
import pytest
from _metrics_helpers import mouth_patch, panning_video

from facedit.bench_manifest import BenchSample, ManifestError, load_manifest, parse_manifest, span_class_for
from facedit.evaluate import main
from facedit.video import write_plan_file
from facedit.video_io import write_video

FPS = 25
SR = 16000

# ---------------------------------------------------------------- manifest


def _record(**over):
    rec = {
        "id": "s1",
        "original_video": "orig.mp4",
        "original_transcript": "the cat sat on the mat",
        "edited_transcript": "the dog sat on the mat",
        "edited_speech": "edited.wav",
        "edit_type": "substitution",
        "original_start_s": 0.4,
        "original_end_s": 0.8,
        "span_words": 1,
    }
    rec.update(over)
    return {k: v for k, v in rec.items() if v is not None}


def test_parse_valid_record_resolves_paths_and_class(tmp_path):
    (s,) = parse_manifest([_record()], str(tmp_path), check_files=False)
    assert isinstance(s, BenchSample)
    assert s.original_video == str(tmp_path / "orig.mp4") and s.span_class == "short" and s.original_speech is None
    assert s.to_dict()["span_words"] == 1


@pytest.mark.parametrize(
    "words, cls", [(1, "short"), (3, "short"), (4, "medium"), (6, "medium"), (7, "long"), (10, "long")]
)
def test_span_classes(words, cls):
    assert span_class_for(words) == cls


@pytest.mark.parametrize(
    "field",
    [
        "id",
        "original_video",
        "original_transcript",
        "edited_transcript",
        "edited_speech",
        "edit_type",
        "original_start_s",
        "original_end_s",
    ],
)
def test_missing_required_field_is_named(field):
    rec = _record()
    del rec[field]
    with pytest.raises(ManifestError, match=f"field '{field}': missing"):
        parse_manifest([rec], check_files=False)


@pytest.mark.parametrize(
    "over, match",
    [
        ({"edit_type": "swap"}, "field 'edit_type': expected one of"),
        ({"edit_type": "insertion"}, "field 'original_end_s': an insertion removes nothing"),
        ({"edit_type": "deletion", "edited_start_s": 0.4, "edited_end_s": 0.6}, "a deletion adds nothing"),
        ({"original_end_s": 0.2}, "field 'original_end_s': ends"),
        ({"original_start_s": -1}, "field 'original_start_s': expected a time"),
        ({"original_start_s": "0.4"}, "field 'original_start_s': expected a time"),
        ({"edited_start_s": 0.4}, "give both edited_start_s and edited_end_s"),
        ({"span_words": 12}, "field 'span_words': expected an integer 1..10"),
        ({"span_words": 5, "span_class": "short"}, "disagrees with span_words=5"),
        ({"span_words": None}, "field 'span_class': missing"),
        ({"span_words": None, "span_class": "huge"}, "field 'span_class': expected one of"),
        ({"colour": "red"}, "field 'colour': unknown field"),
        ({"original_video": 3}, "field 'original_video': expected a string"),
    ],
)
def test_invalid_samples_are_rejected_with_the_field(over, match):
    with pytest.raises(ManifestError, match=match) as info:
        parse_manifest([_record(**over)], check_files=False)
    assert "sample 's1' (record 1)" in str(info.value)


def test_all_problems_reported_at_once_and_duplicates(tmp_path):
    records = [_record(), _record(), _record(id="s3", edit_type="swap"), "not an object"]
    with pytest.raises(ManifestError) as info:
        parse_manifest(records, check_files=False)
    problems = info.value.problems
    assert len(problems) == 3
    assert "duplicate" in problems[0] and "s3" in problems[1] and "record 4: expected a JSON object" in problems[2]


def test_missing_files_are_named(tmp_path):
    with pytest.raises(ManifestError, match=r"field 'edited_speech': file not found: .*edited.wav"):
        parse_manifest([_record()], str(tmp_path))


def test_load_manifest_jsonl_and_json(tmp_path):
    jl = tmp_path / "m.jsonl"
    jl.write_text("# a comment\n\n" + json.dumps(_record()) + "\n" + json.dumps(_record(id="s2")) + "\n")
    assert [s.id for s in load_manifest(jl, check_files=False)] == ["s1", "s2"]
    js = tmp_path / "m.json"
    js.write_text(json.dumps({"samples": [_record()]}))
    assert load_manifest(js, check_files=False)[0].id == "s1"
    js.write_text(json.dumps([_record(id="x")]))
    assert load_manifest(js, check_files=False)[0].id == "x"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_record()) + "\n{oops\n")
    with pytest.raises(ManifestError, match="line 2: not valid JSON"):
        load_manifest(bad, check_files=False)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ManifestError, match="no samples"):
        load_manifest(empty, check_files=False)
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        load_manifest(tmp_path / "none.jsonl")


# ---------------------------------------------------------------- end to end on a tiny synthetic bench


def _write_wav(path, seconds: float, freq: float = 220.0):
    n = int(round(seconds * SR))
    pcm = (0.3 * np.sin(2 * np.pi * freq * np.arange(n) / SR) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())


def _speech(frames: int) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(frames / FPS * SR)) / SR)).astype(np.float32)[None]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """Three samples: a smooth substitution, a hard-cut insertion, a deletion with explicit edited times."""
    root = tmp_path_factory.mktemp("bench")
    edited_dir = root / "edited"
    edited_dir.mkdir()
    orig = panning_video(30)
    write_video(root / "orig.mp4", orig, FPS, audio=_speech(30), sample_rate=SR, crf=10)
    records = []

    # substitution of the same length, frames 10..20, smooth (a mouth opens and closes)
    strength = np.zeros(30)
    strength[10:20] = 0.3 + 0.7 * np.sin(np.linspace(0, np.pi, 10))
    write_video(edited_dir / "smooth_sub.mp4", mouth_patch(orig, strength), FPS, crf=10)
    _write_wav(root / "smooth_sub.wav", 30 / FPS)
    records.append(_record(id="smooth_sub", original_video="orig.mp4", edited_speech="smooth_sub.wav", span_words=2))

    # insertion of 6 frames at frame 15, stitched from elsewhere in the shot: hard cuts at both seams
    ins = np.concatenate([orig[:15], panning_video(6, start=40), orig[15:]])
    write_video(edited_dir / "cut_ins.mp4", ins, FPS, crf=10)
    _write_wav(root / "cut_ins.wav", 36 / FPS)
    records.append(
        _record(
            id="cut_ins",
            edited_speech="cut_ins.wav",
            edit_type="insertion",
            original_start_s=0.6,
            original_end_s=0.6,
            span_words=5,
        )
    )

    # deletion of frames 10..18 (hard jump), edited times given explicitly
    dele = np.concatenate([orig[:10], orig[18:]])
    write_video(root / "del_elsewhere.mp4", dele, FPS, crf=10)
    _write_wav(root / "del.wav", 22 / FPS)
    records.append(
        _record(
            id="del",
            edited_speech="del.wav",
            edit_type="deletion",
            original_start_s=0.4,
            original_end_s=0.72,
            edited_start_s=0.4,
            edited_end_s=0.4,
            span_words=8,
            edited_video="del_elsewhere.mp4",
        )
    )
    manifest = root / "bench.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return root, manifest, edited_dir


def test_cli_end_to_end_on_edited_videos(bench, tmp_path, capsys):
    root, manifest, edited_dir = bench
    out = tmp_path / "scores.json"
    assert main(["--manifest", str(manifest), "--edited-dir", str(edited_dir), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    samples = {s["id"]: s for s in report["samples"]}
    assert all(s["error"] is None for s in samples.values())

    sub, ins, dele = samples["smooth_sub"], samples["cut_ins"], samples["del"]
    assert sub["details"]["original_span_frames"] == [10, 20] and sub["details"]["edited_span_frames"] == [10, 20]
    # insertion: edited span derived from the speech durations (36 vs 30 frames of speech)
    assert ins["details"]["edited_span_frames"] == [15, 21] and ins["details"]["boundaries"] == 2
    assert dele["details"]["original_span_frames"] == [10, 18] and dele["details"]["edited_span_frames"] == [10, 10]
    assert sub["details"]["fps"] == "25/1"

    # the smooth edit scores much better than the hard cuts on both continuity metrics
    for metric in ("P_continuity", "M_continuity"):
        assert sub["metrics"][metric] * 3 < ins["metrics"][metric], metric
        assert sub["metrics"][metric] * 3 < dele["metrics"][metric], metric

    groups = report["groups"]
    assert groups["all"]["n"] == 3 and groups["substitution"]["n"] == 1 and groups["insertion"]["n"] == 1
    assert groups["short"]["n"] == 1 and groups["medium"]["n"] == 1 and groups["long"]["n"] == 1
    mean_p = np.mean([s["metrics"]["P_continuity"] for s in samples.values()])
    assert groups["all"]["metrics"]["P_continuity"]["mean"] == pytest.approx(mean_p)
    assert groups["all"]["metrics"]["P_continuity"]["n"] == 3
    assert set(report["not_computed"]) == {"IDSIM", "LSE-D", "LSE-C", "FVD"}
    assert report["counts"]["medium"]["insertion"] == 1 and report["counts"]["total"]["total"] == 3

    text = capsys.readouterr().out
    assert "P_continuity↓" in text and "IDSIM↑" in text
    for row in ("all", "substitution", "insertion", "deletion", "short", "medium", "long"):
        assert any(line.startswith(row + " ") for line in text.splitlines()), row
    assert "IDSIM: not computed (pass --arcface" in text


def test_cli_identity_and_sync_with_tiny_models(bench, tmp_path):
    pytest.importorskip("onnxruntime")
    import torch
    from test_metrics import _tiny_arcface_onnx

    from facedit.metrics import build_syncnet

    root, manifest, edited_dir = bench
    _tiny_arcface_onnx(tmp_path / "arc.onnx")
    torch.save(build_syncnet().state_dict(), tmp_path / "syncnet_v2.model")
    out = tmp_path / "s.json"
    code = main(
        [
            "--manifest",
            str(manifest),
            "--edited-dir",
            str(edited_dir),
            "--json",
            str(out),
            "--samples",
            "smooth_sub",
            "--arcface",
            str(tmp_path / "arc.onnx"),
            "--syncnet",
            str(tmp_path / "syncnet_v2.model"),
            "--id-frames",
            "4",
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    (sample,) = report["samples"]
    assert 0.9 < sample["metrics"]["IDSIM"] <= 1.0 + 1e-6  # same person (same texture), small local edit
    assert sample["details"]["id_original_faces"] == 4 and sample["details"]["id_generated_faces"] == 4
    assert math.isfinite(sample["metrics"]["LSE-D"]) and sample["metrics"]["LSE-C"] >= 0
    # the 10-frame span is widened to the 0.5 s minimum (13 frames at 25 fps): 13 - 5 SyncNet windows
    assert sample["details"]["segment_frames"] == [9, 22] and sample["details"]["sync_windows"] == 8
    assert set(report["not_computed"]) == {"FVD"}


def test_missing_edited_videos_are_listed(bench, tmp_path, capsys):
    root, manifest, _ = bench
    assert main(["--manifest", str(manifest), "--edited-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "2 edited video(s) not found" in err and "smooth_sub" in err and "cut_ins" in err


def test_sample_with_wrong_fps_fails_alone(bench, tmp_path, capsys):
    root, manifest, edited_dir = bench
    other = tmp_path / "edited"
    other.mkdir()
    for name in ("smooth_sub", "cut_ins"):
        (other / f"{name}.mp4").write_bytes((edited_dir / f"{name}.mp4").read_bytes())
    write_video(other / "smooth_sub.mp4", panning_video(36), 30)
    out = tmp_path / "r.json"
    assert main(["--manifest", str(manifest), "--edited-dir", str(other), "--json", str(out)]) == 1
    report = json.loads(out.read_text())
    errors = {s["id"]: s["error"] for s in report["samples"]}
    assert "30 fps" in errors["smooth_sub"] and errors["cut_ins"] is None and errors["del"] is None
    assert report["groups"]["all"]["n"] == 2 and report["groups"]["all"]["failed"] == 1
    assert "1 sample(s) failed" in capsys.readouterr().out


def test_cuda_without_a_gpu_is_refused_before_the_manifest_is_read(tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["--manifest", str(tmp_path / "absent.jsonl"), "--edited-dir", str(tmp_path), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "evaluate: error: --device cuda: this torch build sees no CUDA GPU; use --device cpu"


def _deny(path_end: str):
    import facedit.evaluate as ev

    real = ev.probe_video

    def probe(path):  # an unreadable file: PermissionError, which the old narrow except let escape
        if str(path).endswith(path_end):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    return probe


def test_unreadable_edited_video_fails_its_sample_alone_naming_the_file(bench, tmp_path, monkeypatch, capsys):
    import facedit.evaluate as ev

    root, manifest, edited_dir = bench
    monkeypatch.setattr(ev, "probe_video", _deny("smooth_sub.mp4"))
    out = tmp_path / "r.json"
    assert main(["--manifest", str(manifest), "--edited-dir", str(edited_dir), "--json", str(out)]) == 1
    errors = {s["id"]: s["error"] for s in json.loads(out.read_text())["samples"]}
    assert errors["cut_ins"] is None and errors["del"] is None
    assert "Permission denied" in errors["smooth_sub"] and str(edited_dir / "smooth_sub.mp4") in errors["smooth_sub"]
    assert "Traceback" not in capsys.readouterr().err


def test_debug_shows_the_traceback_of_a_failing_sample(bench, monkeypatch):
    import facedit.evaluate as ev

    root, manifest, edited_dir = bench
    monkeypatch.setattr(ev, "probe_video", _deny("smooth_sub.mp4"))
    with pytest.raises(PermissionError, match="smooth_sub.mp4"):
        main(["--manifest", str(manifest), "--edited-dir", str(edited_dir), "--debug"])


def test_unexpected_error_is_one_line_with_a_pointer_to_debug(bench, monkeypatch, capsys):
    import facedit.evaluate as ev

    root, manifest, edited_dir = bench

    def broken(options):
        raise KeyError("netcnnaud.0.weight")

    monkeypatch.setattr(ev, "load_metric_models", broken)
    assert main(["--manifest", str(manifest), "--edited-dir", str(edited_dir)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["evaluate: error: KeyError: 'netcnnaud.0.weight'", "(run again with --debug for the traceback)"]


def test_run_pipeline_without_model_weights_is_a_clear_error(bench, tmp_path, capsys):
    root, manifest, _ = bench
    code = main(["--manifest", str(manifest), "--run-pipeline", str(tmp_path / "out"),
                 "--pipeline-arg", f"models={tmp_path / 'empty'}"])  # fmt: skip
    assert code == 2
    assert "LivePortrait weights missing in" in capsys.readouterr().err


def test_run_pipeline_rejects_unknown_pipeline_args(bench, tmp_path, capsys):
    root, manifest, _ = bench
    assert main(["--manifest", str(manifest), "--run-pipeline", str(tmp_path / "out"),
                 "--pipeline-arg", "stepz=3"]) == 2  # fmt: skip
    assert "unknown keys ['stepz']" in capsys.readouterr().err


def test_run_pipeline_edits_every_sample_with_its_span(bench, tmp_path, monkeypatch):
    import shutil

    import facedit.models
    import facedit.pipeline

    root, manifest, _ = bench
    calls = []

    def edit_file(video, speech, out, models, *, spans, original_duration_s, options):
        calls.append((spans, options.steps, models))
        shutil.copy(video, out)  # a 'perfect' no-op edit of a same-length substitution
        return _cut_plan(9, 21)  # frames 10..20 and one context frame on each side

    monkeypatch.setattr(facedit.pipeline, "edit_file", edit_file)
    monkeypatch.setattr(facedit.models, "load_models", lambda folder, device, dtype: f"models from {folder}")
    out = tmp_path / "r.json"
    code = main(["--manifest", str(manifest), "--run-pipeline", str(tmp_path / "out"), "--samples", "smooth_sub",
                 "--pipeline-arg", "steps=8", "--pipeline-arg", "models=M", "--json", str(out)])  # fmt: skip
    assert code == 0
    ((spans, steps, models),) = calls
    ((start, end, new_duration),) = spans
    assert steps == 8 and models == "models from M"
    assert new_duration == pytest.approx(end - start)  # same-length substitution: speeches of equal duration
    (sample,) = json.loads(out.read_text())["samples"]
    assert sample["metrics"]["P_continuity"] == 0.0 and sample["metrics"]["M_continuity"] == 0.0
    assert (tmp_path / "out" / "smooth_sub.plan.json").is_file()  # the plan is kept beside the video ...
    assert sample["details"]["seam_source"] == "plan"  # ... and its seams are the ones measured
    assert sample["details"]["seams"] == [[8, 9, 8, 9], [20, 21, 20, 21]]


def test_fvd_per_group_from_one_clip_per_sample(bench):
    import torch

    from facedit.bench_manifest import load_manifest
    from facedit.evaluate import EvalOptions, MetricModels, evaluate_sample, resolve_edited_videos, summarize
    from facedit.metrics import CentreFace, DISFlow, fvd_from_features

    root, manifest, edited_dir = bench
    seen = []

    def fake_i3d(x):  # (1, 3, 16, 224, 224) in -1..1 -> per-channel mean and spread as 'features'
        seen.append(tuple(x.shape))
        assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
        return torch.cat([x.mean((2, 3, 4)), x.std((2, 3, 4))], 1)

    samples = load_manifest(manifest)
    videos = resolve_edited_videos(samples, str(edited_dir))
    models = MetricModels(flow=DISFlow(), detector=CentreFace(), i3d=fake_i3d)
    results, feats = [], {}
    for s in samples:
        r, f = evaluate_sample(s, videos[s.id], EvalOptions(), models)
        results.append(r)
        feats[s.id] = f
    assert seen[0] == (1, 3, 16, 224, 224) and len(seen) == 6
    groups = summarize(results, feats)
    real = np.stack([feats[s.id]["real"] for s in samples])
    fake = np.stack([feats[s.id]["generated"] for s in samples])
    assert groups["all"]["metrics"]["FVD"] == {"mean": pytest.approx(fvd_from_features(real, fake)), "n": 3}
    assert groups["all"]["metrics"]["FVD"]["mean"] > 0
    assert groups["insertion"]["metrics"]["FVD"] == {"mean": None, "n": 1}  # one clip: no covariance


# ---------------------------------------------------------------- where the seams are measured


@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory):
    """Frames [11, 23) of a 30-frame pan replaced by another stretch of the pan: hard cuts into 11 and 23.

    That is what the pack re-renders for a manifest span of 0.48..0.88 s (frames 12..22) with one
    context frame on each side, so the manifest's rounded frames miss both cuts by one frame.
    """
    root = tmp_path_factory.mktemp("cut")
    orig = panning_video(30)
    write_video(root / "orig.mp4", orig, FPS, audio=_speech(30), sample_rate=SR, crf=10)
    edited = orig.copy()
    edited[11:23] = panning_video(12, start=40)
    write_video(root / "edited.mp4", edited, FPS, crf=10)
    _write_wav(root / "edited.wav", 30 / FPS)
    sample = BenchSample(
        id="cut", original_video=str(root / "orig.mp4"), original_transcript="a b", edited_transcript="a c",
        edited_speech=str(root / "edited.wav"), edit_type="substitution", original_start_s=0.48,
        original_end_s=0.88, span_class="short", edited_start_s=0.48, edited_end_s=0.88,
    )  # fmt: skip
    return sample, str(root / "edited.mp4")


def _cut_plan(lo: int = 11, hi: int = 23):
    from facedit.edits import EditPlan

    mask = np.zeros(30, dtype=bool)
    mask[lo:hi] = True
    return EditPlan(
        mode="edit", fps=25.0, source_frames=30, target_frames=30, source_time=np.arange(30.0), infill_mask=mask,
        edits=(), context_frames=1, original_duration_s=1.2, edited_duration_s=1.2,
    )  # fmt: skip


def test_plan_boundaries_are_the_rerendered_runs():
    from facedit.evaluate import plan_boundaries
    from facedit.metrics.continuity import Boundary

    assert plan_boundaries(_cut_plan(), 30, 30) == [Boundary(11, 11), Boundary(23, 23)]
    with pytest.raises(ValueError, match="plan: has 30 target frames but the edited video has 31"):
        plan_boundaries(_cut_plan(), 30, 31)


def test_seams_come_from_the_plan_when_given_else_from_the_rounded_manifest_span(cut_clip):
    from facedit.evaluate import EvalOptions, MetricModels, evaluate_sample
    from facedit.metrics import CentreFace, DISFlow

    sample, edited = cut_clip
    models = MetricModels(flow=DISFlow(), detector=CentreFace())
    by_plan, _ = evaluate_sample(sample, edited, EvalOptions(), models, plan=_cut_plan())
    by_span, _ = evaluate_sample(sample, edited, EvalOptions(), models)
    assert by_plan.details["seam_source"] == "plan" and by_span.details["seam_source"] == "manifest"
    assert by_plan.details["seams"] == [[10, 11, 10, 11], [22, 23, 22, 23]]
    assert by_span.details["seams"] == [[11, 12, 11, 12], [21, 22, 21, 22]]  # round(0.48 * 25), round(0.88 * 25)
    print(by_plan.metrics, by_span.metrics)
    assert by_plan.metrics["P_continuity"] > 3 * by_span.metrics["P_continuity"]
    assert by_plan.metrics["M_continuity"] > 10 * by_span.metrics["M_continuity"]  # measured: 19 vs 3.8, 3.7 vs 0.02


def test_plan_boundaries_of_the_packs_own_plan_are_floor_ceil_plus_context():
    from facedit.edits import plan_from_spans
    from facedit.evaluate import plan_boundaries
    from facedit.metrics.continuity import Boundary

    # 0.5..0.9 s at 25 fps is frames 12.5..22.5: re-rendered from floor - 3 = 9 to ceil + 3 = 26
    plan = plan_from_spans([(0.5, 0.9, 0.4)], original_duration_s=1.2, fps=25, source_frames=30, context_frames=3)
    assert plan.mask_spans() == [(9, 26)]
    assert plan_boundaries(plan, 30, 30) == [Boundary(9, 9), Boundary(26, 26)]


def test_a_cut_one_frame_inside_the_span_is_seen_with_the_plan_and_missed_by_the_rounded_span(tmp_path):
    """Frames [13, 21) replaced: hard cuts one frame inside the manifest's rounded span [12, 22)."""
    from facedit.evaluate import EvalOptions, MetricModels, evaluate_sample
    from facedit.metrics import CentreFace, DISFlow

    orig = panning_video(30)
    write_video(tmp_path / "orig.mp4", orig, FPS, audio=_speech(30), sample_rate=SR, crf=10)
    edited = orig.copy()
    edited[13:21] = panning_video(8, start=40)
    write_video(tmp_path / "edited.mp4", edited, FPS, crf=10)
    _write_wav(tmp_path / "edited.wav", 30 / FPS)
    sample = BenchSample(
        id="inside", original_video=str(tmp_path / "orig.mp4"), original_transcript="a b", edited_transcript="a c",
        edited_speech=str(tmp_path / "edited.wav"), edit_type="substitution", original_start_s=0.48,
        original_end_s=0.88, span_class="short", edited_start_s=0.48, edited_end_s=0.88,
    )  # fmt: skip
    models = MetricModels(flow=DISFlow(), detector=CentreFace())
    by_plan, _ = evaluate_sample(sample, str(tmp_path / "edited.mp4"), EvalOptions(), models, plan=_cut_plan(13, 21))
    by_span, _ = evaluate_sample(sample, str(tmp_path / "edited.mp4"), EvalOptions(), models)
    assert by_plan.details["seams"] == [[12, 13, 12, 13], [20, 21, 20, 21]]
    assert by_span.details["seams"] == [[11, 12, 11, 12], [21, 22, 21, 22]]  # the documented rule: rounded span
    print(by_plan.details["seam_P"], by_plan.details["seam_M"], by_span.metrics)
    for metric in ("seam_P", "seam_M"):  # each cut is seen on its own, not only on average
        assert min(by_plan.details[metric]) > 0.5, metric
    assert by_plan.metrics["P_continuity"] > 3 * by_span.metrics["P_continuity"]
    assert by_plan.metrics["M_continuity"] > 10 * by_span.metrics["M_continuity"]


def test_cli_reads_the_plan_beside_the_edited_video(cut_clip, tmp_path, capsys):
    import shutil

    sample, edited = cut_clip
    edited_dir = tmp_path / "edited"
    edited_dir.mkdir()
    shutil.copy(edited, edited_dir / "cut.mp4")
    record = {k: v for k, v in sample.to_dict().items() if v is not None}
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps(record) + "\n")
    out = tmp_path / "r.json"
    args = ["--manifest", str(manifest), "--edited-dir", str(edited_dir), "--json", str(out)]

    assert main(args) == 0  # no plan file: the manifest's rounded span
    (result,) = json.loads(out.read_text())["samples"]
    assert result["details"]["seam_source"] == "manifest"
    assert "from the manifest's rounded span for 1" in capsys.readouterr().out

    (edited_dir / "cut.plan.json").write_text(_cut_plan().to_json())
    assert main(args) == 0
    (result,) = json.loads(out.read_text())["samples"]
    assert result["details"]["seam_source"] == "plan"
    assert result["details"]["seams"] == [[10, 11, 10, 11], [22, 23, 22, 23]]
    assert len(result["details"]["seam_P"]) == 2 and len(result["details"]["seam_M"]) == 2
    assert "seams: from the edit plan for 1 sample(s)" in capsys.readouterr().out

    (edited_dir / "cut.plan.json").write_text("{oops")
    assert main(args) == 2
    assert "cut.plan.json: edit plan: not valid JSON" in capsys.readouterr().err

    write_plan_file(_cut_plan(), edited_dir / "cut.mp4")  # as `python -m facedit edit` writes it
    assert main(args) == 0
    assert json.loads(out.read_text())["samples"][0]["details"]["seam_source"] == "plan"
    capsys.readouterr()
    shutil.copy(sample.original_video, edited_dir / "cut.mp4")  # another edit replaces the video, not its plan
    before = out.read_bytes()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "cut.plan.json: stale: written for another" in err and "the video was replaced" in err, err
    assert out.read_bytes() == before


def test_a_failing_json_write_keeps_the_previous_report(bench, tmp_path, monkeypatch, capsys):
    import errno

    import facedit.evaluate

    root, manifest, edited_dir = bench
    out = tmp_path / "scores.json"
    out.write_text('{"previous": "report"}')
    real_dump = json.dump

    def dump_then_disk_full(obj, f, **kwargs):
        real_dump({"partial": list(range(100))}, f)
        f.flush()
        raise OSError(errno.ENOSPC, "No space left on device", f.name)

    monkeypatch.setattr(facedit.evaluate.json, "dump", dump_then_disk_full)
    args = ["--manifest", str(manifest), "--edited-dir", str(edited_dir), "--samples", "smooth_sub", "--json", str(out)]
    assert main(args) == 2
    assert f"the previous {out} is kept as it was" in capsys.readouterr().err
    assert out.read_text() == '{"previous": "report"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.json"]  # no partial file beside it

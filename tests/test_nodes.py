"""The nodes, without ComfyUI: the pack loaded like ComfyUI loads it, tiny random models saved in the real file
layouts under a models folder (FACEDIT_MODELS_DIR), every node executed under torch.inference_mode()."""

from __future__ import annotations

import json
import os
import shutil

import _node_helpers
import numpy as np
import pytest
import torch
from _node_helpers import (
    FACEDIT_NAME,
    SAMPLES,
    WAVLM_NAME,
    audio_dict,
    face_box_or_detect,
    load_pack,
    need_dlib,
    pack_module,
    read_wav,
    sample_frames,
)

FPS = 10.0  # a frame rate the tiny model (25 fps) was not made for: the timeline conversion is always exercised
SIZE = 128


def node(name: str):
    return load_pack().NODE_CLASS_MAPPINGS[name]


def run(name: str, *args, **kwargs):
    with torch.inference_mode():
        return node(name).execute(*args, **kwargs)


@pytest.fixture(scope="module")
def models(models_dir):
    lp = run("FacEDiTLivePortraitLoader", ".", "fp32", "cpu", "none")[0]
    wavlm = run("FacEDiTWavLMLoader", WAVLM_NAME, "fp32", "cpu", False)[0]
    model = run("FacEDiTModelLoader", FACEDIT_NAME, "fp32", "cpu")[0]
    return lp, wavlm, model


@pytest.fixture(scope="module")
def clip():
    """The sample clip at 10 fps, 128x128: 4 s of video, the sample original and edited speech and words."""
    frames = torch.from_numpy(sample_frames(40, SIZE, FPS))
    return {
        "frames": frames,
        "original": read_wav(SAMPLES / "original.wav"),
        "edited": read_wav(SAMPLES / "edited.wav"),
        "original_words": (SAMPLES / "original_words.json").read_text(),
        "edited_words": (SAMPLES / "edited_words.json").read_text(),
    }


@pytest.fixture(scope="module")
def chain(models, clip):
    """Every editing node once, in workflow order; the tests below look at the pieces."""
    torch.set_num_threads(1)
    lp, wavlm, model = models
    frames = clip["frames"]
    crop, crops = run("FacEDiTFaceCrop", frames, 0, "largest", 2.0, 1, face_box_or_detect())
    plan_out = run(
        "FacEDiTEditPlan", clip["original_words"], clip["edited_words"], clip["edited"], frames, FPS, 2
    )  # fmt: skip
    plan = plan_out[0]
    target, target_crop = run("FacEDiTResampleFrames", frames, plan, crop, "fast")
    motion = run("FacEDiTExtractMotion", lp, target, target_crop, plan, 1.0, 8)[0]
    speech = run("FacEDiTSpeechEncode", wavlm, clip["edited"], -1, 20.0)[0]
    driving = run("FacEDiTInfill", model, motion, speech, plan, 2, -1.0, 0.0, 7, 1.0)[0]
    rendered = run("FacEDiTRender", lp, target, target_crop, motion, driving, plan, False, True, 4)[0]
    return dict(crop=crop, crops=crops, plan_out=plan_out, plan=plan, target=target, target_crop=target_crop,
                motion=motion, speech=speech, driving=driving, rendered=rendered)  # fmt: skip


models_dir = _node_helpers.models_dir  # session fixtures shared with the other node tests
one_thread = _node_helpers.one_thread
pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------------------------ schema


def test_every_node_has_a_valid_documented_schema():
    pack = load_pack()
    # 12 + Save Edited Video, F5-TTS Loader, Speech Edit, Whisper / CTC loaders, Transcribe, Align
    assert len(pack.NODE_CLASS_MAPPINGS) == 19
    ids = []
    for key, cls in pack.NODE_CLASS_MAPPINGS.items():
        schema = cls.GET_SCHEMA()
        ids.append(schema.node_id)
        assert key == schema.node_id and key.startswith("FacEDiT")
        assert schema.category.split("/")[0] == "FacEDiT"
        assert (
            schema.display_name.startswith("FacEDiT ") and pack.NODE_DISPLAY_NAME_MAPPINGS[key] == schema.display_name
        )
        assert len(schema.description) > 40, key
        for item in schema.inputs:
            assert item.tooltip and len(item.tooltip) > 10, f"{key}.{item.id} has no tooltip"
        for item in schema.outputs:
            assert item.tooltip, f"{key} output {item.display_name} has no tooltip"
        json.dumps(schema.as_object_info())
    assert len(set(ids)) == len(ids)


def test_links_only_join_sockets_of_the_same_type():
    """Every custom input type is produced by some node's output (else nothing could be connected)."""
    pack = load_pack()
    produced, consumed = set(), set()
    for cls in pack.NODE_CLASS_MAPPINGS.values():
        info = cls.GET_SCHEMA().as_object_info()
        produced.update(info["output"])
        for spec in [*info["input"]["required"].values(), *info["input"]["optional"].values()]:
            consumed.add(spec[0])
    custom = {t for t in consumed if t.startswith("FACEDIT_")}
    assert custom == {
        "FACEDIT_LIVEPORTRAIT", "FACEDIT_WAVLM", "FACEDIT_MODEL", "FACEDIT_CROP", "FACEDIT_MOTION",
        "FACEDIT_SPEECH", "FACEDIT_PLAN", "FACEDIT_WHISPER", "FACEDIT_CTC", "FACEDIT_F5TTS",
    }  # fmt: skip
    assert custom <= produced


def test_model_combos_list_the_models_folder(models_dir, tmp_path):
    loaders = pack_module("nodes.loaders")
    assert loaders.liveportrait_choices() == ["."]
    assert loaders.wavlm_choices() == [WAVLM_NAME]  # its model.safetensors is part of the folder, not a choice
    facedit_options = node("FacEDiTModelLoader").GET_SCHEMA().inputs[0].options
    assert facedit_options == [FACEDIT_NAME]
    (models_dir / "wavlm" / "other.safetensors").write_bytes(b"")
    nested = models_dir / "liveportrait" / "v2"
    shutil.copytree(models_dir / "liveportrait" / "liveportrait" / "base_models", nested)
    try:
        assert loaders.wavlm_choices() == ["other.safetensors", WAVLM_NAME]
        assert loaders.liveportrait_choices() == [".", "v2"]
    finally:
        (models_dir / "wavlm" / "other.safetensors").unlink()
        shutil.rmtree(nested)


# ------------------------------------------------------------------------------------------------ loaders


def test_loaders_cache_until_the_file_changes(models, models_dir):
    lp, wavlm, model = models
    assert run("FacEDiTLivePortraitLoader", ".", "fp32", "cpu", "none")[0] is lp
    assert run("FacEDiTWavLMLoader", WAVLM_NAME, "fp32", "cpu", False)[0] is wavlm
    assert lp.model.stitching is not None and lp.model.cfg.motion.dims == (8, 16, 24, 32)
    assert wavlm.model.hidden_size == model.model.config.speech_dim
    half = run("FacEDiTModelLoader", FACEDIT_NAME, "bf16", "cpu")[0]
    assert half is not model and next(half.model.parameters()).dtype == torch.bfloat16
    again = run("FacEDiTModelLoader", FACEDIT_NAME, "fp32", "cpu")[0]
    assert again is not model  # one model per kind is kept: the bf16 load replaced it
    assert run("FacEDiTModelLoader", FACEDIT_NAME, "fp32", "cpu")[0] is again
    path = models_dir / "facedit" / FACEDIT_NAME
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert run("FacEDiTModelLoader", FACEDIT_NAME, "fp32", "cpu")[0] is not again


def test_loaders_reject_files_of_the_wrong_kind(models_dir):
    wrong = models_dir / "facedit" / "not_facedit.safetensors"
    shutil.copy(models_dir / "wavlm" / WAVLM_NAME / "model.safetensors", wrong)
    wrong_wavlm = models_dir / "wavlm" / "facedit_by_mistake.safetensors"
    shutil.copy(models_dir / "facedit" / FACEDIT_NAME, wrong_wavlm)
    try:
        with pytest.raises(ValueError, match="not_facedit.safetensors"):
            run("FacEDiTModelLoader", "not_facedit.safetensors", "fp32", "cpu")
        with pytest.raises(ValueError, match="facedit_by_mistake.safetensors"):
            run("FacEDiTWavLMLoader", "facedit_by_mistake.safetensors", "fp32", "cpu", False)
    finally:
        wrong.unlink()
        wrong_wavlm.unlink()
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        run("FacEDiTModelLoader", "missing.safetensors", "fp32", "cpu")


def test_liveportrait_loader_names_a_foreign_weight_file(models_dir, tmp_path):
    folder = models_dir / "liveportrait" / "broken"
    shutil.copytree(models_dir / "liveportrait" / "liveportrait" / "base_models", folder)
    shutil.copy(models_dir / "liveportrait" / "liveportrait_config.json", folder)
    torch.save({"not": torch.zeros(3)}, folder / "warping_module.pth")
    try:
        with pytest.raises(ValueError, match="warping_module.pth: does not match the warping_module network"):
            run("FacEDiTLivePortraitLoader", "broken", "fp32", "cpu", "none")
    finally:
        shutil.rmtree(folder)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a machine without CUDA")
def test_loader_device_without_cuda_is_a_clear_error(models_dir):
    with pytest.raises(ValueError, match="device: 'cuda'"):
        run("FacEDiTModelLoader", FACEDIT_NAME, "fp32", "cuda")


# ------------------------------------------------------------------------------------------------ faces


def test_face_crop_follows_the_face_and_previews_crops(chain, clip):
    need_dlib()
    crop, crops = chain["crop"], chain["crops"]
    assert len(crop) == 40 and crop.detected.all()
    assert crops.shape == (40, 256, 256, 3) and crops.dtype == torch.float32
    box = crop.face_box[0]
    assert 30 < (box[0] + box[2]) / 2 < 100 and 20 < (box[1] + box[3]) / 2 < 90  # the portrait's face


def test_face_crop_interpolates_missing_faces_and_names_a_faceless_input(clip):
    need_dlib()
    frames = clip["frames"][:8].clone()
    frames[3:5] = 0.5  # no face in two frames
    crop, _ = run("FacEDiTFaceCrop", frames, 0, "largest", 0.0, 1, "")
    assert crop.detected.tolist() == [True] * 3 + [False] * 2 + [True] * 3
    assert np.allclose(crop.face_box[3], crop.face_box[2] + (crop.face_box[5] - crop.face_box[2]) / 3)
    with pytest.raises(ValueError, match="'images' input of FacEDiT Face Crop"):
        run("FacEDiTFaceCrop", torch.full((3, 64, 64, 3), 0.5), 0, "largest", 2.0, 1, "")


def test_face_crop_takes_a_manual_box(clip):
    crop, crops = run("FacEDiTFaceCrop", clip["frames"][:3], 0, "largest", 2.0, 1, "40, 30 90,80")
    assert np.allclose(crop.face_box, [[40, 30, 90, 80]] * 3) and crops.shape[0] == 3
    for bad in ("40,30,90", "90,30,40,80", "a,b,c,d"):
        with pytest.raises(ValueError, match="face_box"):
            run("FacEDiTFaceCrop", clip["frames"][:3], 0, "largest", 2.0, 1, bad)


# ------------------------------------------------------------------------------------------------ plans


def test_edit_plan_outputs_and_ui(chain, clip):
    plan, mask, preview, target_frames = chain["plan_out"].args
    edited_s = clip["edited"]["waveform"].shape[-1] / 16000
    assert target_frames == plan.target_frames == int(np.floor(edited_s * FPS + 0.5)) == 44
    assert plan.source_frames == 40 and plan.fps == FPS and plan.mode == "edit"
    assert [e.type for e in plan.edits] == ["substitution"] and plan.edits[0].edited_words == ("old", "harbour")
    assert mask.shape == (44, 64, 64)
    assert torch.equal(mask[:, 0, 0].bool(), torch.from_numpy(plan.infill_mask)) and bool(
        (mask == mask[:, :1, :1]).all()
    )
    assert preview.ndim == 4 and preview.shape[0] == 1 and preview.shape[-1] == 3
    ui = chain["plan_out"].ui
    assert set(ui) == {"facedit_plan"}  # one view of the plan on the node: the drawing, no preview image too
    summary = json.loads(json.dumps(ui["facedit_plan"]))  # JSON-safe
    assert summary == [plan.to_dict()] and summary[0]["infill_runs"] == [list(r) for r in plan.mask_spans()]


def test_edit_plan_errors_name_their_input(clip):
    frames, edited, original = clip["frames"], clip["edited"], clip["original"]
    words_o, words_e = clip["original_words"], clip["edited_words"]
    with pytest.raises(ValueError, match="edited_words.*ends after the audio"):
        run("FacEDiTEditPlan", words_o, words_e, audio_dict(3.0), frames, FPS, 3)
    with pytest.raises(ValueError, match="original_words"):
        run("FacEDiTEditPlan", "", words_e, edited, frames, FPS, 3)
    with pytest.raises(ValueError, match="same clip"):  # the speech is far longer than the 1 s video
        run("FacEDiTEditPlan", words_o, words_e, edited, frames[:10], FPS, 3, original)
    with pytest.raises(ValueError, match="edited_audio"):
        run("FacEDiTEditPlan", words_o, words_e, {"waveform": torch.zeros(1, 100)}, frames, FPS, 3)


def test_manual_plan_matches_the_word_plan(chain, clip):
    spans = "# station -> old harbour\n2.193, 2.868, 1.086\n"
    out = run("FacEDiTManualEditPlan", spans, clip["edited"], clip["frames"], FPS, 2)
    plan, words_plan = out[0], chain["plan"]
    assert plan.target_frames == words_plan.target_frames
    assert np.array_equal(plan.infill_mask, words_plan.infill_mask)
    assert np.allclose(plan.source_time, words_plan.source_time)
    assert out.ui["facedit_plan"] == [plan.to_dict()]
    for bad, message in (("1 2", "line 1"), ("", "at least one"), ("3 2 1", "start <= end")):
        with pytest.raises(ValueError, match=message):
            run("FacEDiTManualEditPlan", bad, clip["edited"], clip["frames"], FPS, 2)


def test_generation_plan(clip):
    out = run("FacEDiTGenerationPlan", clip["original"], 25.0, 1)
    plan = out[0]
    assert plan.mode == "generate" and plan.source_frames == 1 and out[3] == plan.target_frames == 100
    assert out[1][0].sum() == 0 and bool(out[1][1:].bool().all())
    assert out.ui["facedit_plan"][0]["mode"] == "generate"


# ------------------------------------------------------------------------------------------------ stages


def test_resample_keeps_unedited_frames_and_retimes_the_crop(chain, clip):
    plan, target, target_crop = chain["plan"], chain["target"], chain["target_crop"]
    frames = clip["frames"]
    assert target.shape == (plan.target_frames, SIZE, SIZE, 3) and len(target_crop) == plan.target_frames
    whole = np.flatnonzero(plan.source_time == np.round(plan.source_time))
    assert len(whole) > 30
    for k in whole:
        assert torch.equal(target[k], frames[int(plan.source_time[k])]), k
        assert np.array_equal(target_crop.center[k], chain["crop"].center[int(plan.source_time[k])])
    with pytest.raises(ValueError, match="plan built for another clip"):
        run("FacEDiTResampleFrames", frames[:30], plan, chain["crop"], "fast")
    with pytest.raises(ValueError, match="crop has 44 frames but images has 40"):
        run("FacEDiTResampleFrames", frames, plan, target_crop, "fast")


def test_extract_reads_only_the_frames_around_the_edits(chain, models):
    plan, motion = chain["plan"], chain["motion"]
    extracted = torch.isfinite(motion.motion).all(1).numpy()
    assert len(motion) == plan.target_frames
    masked = np.flatnonzero(plan.infill_mask)
    context = int(round(1.0 * FPS))
    want = np.zeros(plan.target_frames, bool)
    want[max(0, masked[0] - context) : masked[-1] + 1 + context] = True
    assert np.array_equal(extracted, want)
    assert not torch.isfinite(motion.kp_canonical[torch.from_numpy(~want)]).any()
    full = run("FacEDiTExtractMotion", models[0], chain["target"][:5], chain["target_crop"].select(range(5)), None,
               1.0, 2)[0]  # fmt: skip
    assert torch.isfinite(full.motion).all()
    rows = torch.from_numpy(np.flatnonzero(want[:5]))
    assert torch.allclose(full.motion[rows], motion.motion[rows], atol=1e-5)  # the chunking changes nothing


def test_infill_changes_only_masked_motion(chain):
    plan, motion, driving = chain["plan"], chain["motion"], chain["driving"]
    mask = torch.from_numpy(plan.infill_mask)
    assert driving.motion.shape == (plan.target_frames, 75)
    known = ~mask & torch.isfinite(motion.motion).all(1)
    assert torch.equal(driving.motion[known], motion.motion[known])
    assert torch.isfinite(driving.motion[mask]).all()
    assert not torch.allclose(driving.motion[mask], motion.motion[mask])
    assert torch.equal(driving.kp_canonical[known], motion.kp_canonical[known])


def test_infill_checks_its_inputs(chain, models, clip):
    model = models[2]
    plan, motion, speech = chain["plan"], chain["motion"], chain["speech"]
    with pytest.raises(ValueError, match="speech: the features cover"):
        original_speech = run("FacEDiTSpeechEncode", models[1], clip["original"], -1, 20.0)[0]
        run("FacEDiTInfill", model, motion, original_speech, plan, 2, -1.0, 0.0, 0, 1.0)
    with pytest.raises(ValueError, match="motion has 40 frames"):
        run("FacEDiTInfill", model, motion.select(range(40)), speech, plan, 2, -1.0, 0.0, 0, 1.0)
    with pytest.raises(ValueError, match="missing \\(NaN\\)"):  # more context than was extracted
        run("FacEDiTInfill", model, motion, speech, plan, 2, -1.0, 0.0, 0, 2.5)


def test_infill_is_seeded(chain, models):
    args = (models[2], chain["motion"], chain["speech"], chain["plan"], 2, -1.0, 0.0)
    same = run("FacEDiTInfill", *args, 7, 1.0)[0]
    other = run("FacEDiTInfill", *args, 8, 1.0)[0]
    torch.testing.assert_close(same.motion, chain["driving"].motion, rtol=0, atol=0, equal_nan=True)
    mask = torch.from_numpy(chain["plan"].infill_mask)
    assert not torch.allclose(other.motion[mask], same.motion[mask])


def test_render_changes_only_masked_frames(chain):
    plan, target, rendered = chain["plan"], chain["target"], chain["rendered"]
    mask = torch.from_numpy(plan.infill_mask)
    assert rendered.shape == target.shape and rendered.dtype == torch.float32
    assert torch.equal(rendered[~mask], target[~mask])
    changed = (rendered[mask] - target[mask]).abs().flatten(1).amax(1)
    assert bool((changed > 0).all())


def test_render_errors(chain, models):
    lp = models[0]
    plan, target, crop, motion, driving = (chain[k] for k in ("plan", "target", "target_crop", "motion", "driving"))
    with pytest.raises(ValueError, match="source_motion is empty"):
        run("FacEDiTRender", lp, target, crop, motion, driving, plan, True, True, 4)
    with pytest.raises(ValueError, match="driving_motion has 40 frames"):
        run("FacEDiTRender", lp, target, crop, motion, driving.select(range(40)), plan, False, True, 4)


class _FakeBar:
    updates: list = []

    def __init__(self, total):
        self.total = total

    def update_absolute(self, value, total=None):
        _FakeBar.updates.append((value, total or self.total))


class _Interrupted(Exception):
    pass


class _FakeManagement:
    """comfy.model_management as the nodes use it; it raises on the n-th interruption check."""

    def __init__(self, raise_at: int):
        self.checks, self.raise_at = 0, raise_at

    def throw_exception_if_processing_interrupted(self):
        self.checks += 1
        if self.checks >= self.raise_at:
            raise _Interrupted()

    def get_torch_device(self):
        return torch.device("cpu")

    def unet_offload_device(self):
        return torch.device("cpu")


def test_infill_reports_progress_and_stops_on_interrupt(chain, models, monkeypatch):
    comfy = pack_module("nodes._comfy")
    args = (models[2], chain["motion"], chain["speech"], chain["plan"], 3, -1.0, 0.0, 0, 1.0)
    _FakeBar.updates = []
    monkeypatch.setattr(comfy, "comfy_utils", type("utils", (), {"ProgressBar": _FakeBar}))
    monkeypatch.setattr(comfy, "model_management", _FakeManagement(raise_at=10**6))
    run("FacEDiTInfill", *args)
    assert _FakeBar.updates[-1] == (3, 3) and [u[0] for u in _FakeBar.updates] == [1, 2, 3]
    monkeypatch.setattr(comfy, "model_management", _FakeManagement(raise_at=2))
    with pytest.raises(_Interrupted):
        run("FacEDiTInfill", *args)


def test_liveportrait_loader_offers_fast_and_keeps_the_motion_exact(models):
    lp = models[0]
    inputs = node("FacEDiTLivePortraitLoader").GET_SCHEMA().as_object_info()["input"]["required"]
    assert inputs["precision"][1]["options"] == ["fp32", "fast", "fp16", "bf16"]
    fast = run("FacEDiTLivePortraitLoader", ".", "fast", "cpu", "none")[0]
    assert fast is not lp and fast.model.precision == "fast" and fast.model.fast_plan is not None
    crops = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref, got = lp.model.motion(crops), fast.model.motion(crops)
    assert all(torch.equal(ref[k], got[k]) for k in ref)


def test_render_reports_progress_and_stops_on_interrupt_per_frame(chain, models, monkeypatch):
    """chunk_size 4, but on a CPU the bar moves and Cancel acts after every frame, not every 4 (issues 17, 18)."""
    comfy = pack_module("nodes._comfy")
    lp_class = pack_module("facedit.liveportrait.model").LivePortrait
    plan, target, crop, motion, driving = (chain[k] for k in ("plan", "target", "target_crop", "motion", "driving"))
    args = (models[0], target, crop, motion, driving, plan, False, True, 4)
    rows = int(plan.infill_mask.sum())
    assert rows > 4
    decoded = []
    original = lp_class.warp_decode

    def counting(self, feature, kp_source, kp_driving):
        decoded.append(feature.shape[0])
        return original(self, feature, kp_source, kp_driving)

    monkeypatch.setattr(lp_class, "warp_decode", counting)
    monkeypatch.setattr(comfy, "comfy_utils", type("utils", (), {"ProgressBar": _FakeBar}))
    monkeypatch.setattr(comfy, "model_management", _FakeManagement(raise_at=10**6))
    _FakeBar.updates = []
    out = run("FacEDiTRender", *args)[0]
    assert [u[0] for u in _FakeBar.updates] == list(range(1, rows + 1)) and _FakeBar.updates[-1][1] == rows
    assert decoded == [1] * rows
    assert torch.equal(out, chain["rendered"])
    decoded.clear()
    monkeypatch.setattr(comfy, "model_management", _FakeManagement(raise_at=3))
    with pytest.raises(_Interrupted):
        run("FacEDiTRender", *args)
    assert 1 <= len(decoded) <= 2  # stopped within a frame of the check, not at the end of a chunk of 4


def test_generation_renders_every_frame_from_the_portrait(models, clip):
    lp, wavlm, model = models
    portrait = clip["frames"][:1]
    speech_audio = audio_dict(1.2, seed=3)
    plan = run("FacEDiTGenerationPlan", speech_audio, FPS, 1)[0]
    crop, _ = run("FacEDiTFaceCrop", portrait, 0, "largest", 2.0, 1, face_box_or_detect())
    motion = run("FacEDiTExtractMotion", lp, portrait, crop, plan, 1.0, 16)[0]
    speech = run("FacEDiTSpeechEncode", wavlm, speech_audio, -1, 20.0)[0]
    driving = run("FacEDiTInfill", model, motion, speech, plan, 2, -1.0, 0.0, 0, 1.0)[0]
    assert driving.motion.shape == (12, 75) and torch.equal(driving.motion[0], motion.motion[0])
    out = run("FacEDiTRender", lp, portrait, crop, motion, driving, plan, False, True, 4)[0]
    assert out.shape == (12, SIZE, SIZE, 3)
    assert torch.equal(out[0], portrait[0])
    assert all(not torch.equal(out[k], portrait[0]) for k in range(1, 12))
    # different motion, different frames (some frames of this random model's motion push every keypoint out of the
    # volume and render alike: frames 1 and 11 differed only by batch-size rounding, 4e-7, before per-frame decoding)
    assert max((out[1] - out[k]).abs().max().item() for k in range(2, 12)) > 1e-2


def test_comfyui_unload_models_releases_the_pack_models_and_the_loaders_run_again(monkeypatch):
    import types

    comfy_ = pack_module("nodes._comfy")
    loaders = pack_module("nodes.loaders")
    calls = []
    fake_mm = types.SimpleNamespace(unload_all_models=lambda: calls.append("comfy"))
    monkeypatch.setattr(comfy_, "model_management", fake_mm)
    monkeypatch.setattr(comfy_, "_unload_hooks", [])
    monkeypatch.setattr(loaders, "_CACHE", {})
    net = torch.nn.Linear(4, 4)
    loaded = loaders.LoadedModel("facedit", net, torch.device("cpu"), torch.device("cpu"), torch.float32, "x")
    assert loaders._cached("facedit", ("x",), lambda: loaded) is loaded
    before = node("FacEDiTModelLoader").fingerprint_inputs(checkpoint="x", precision="fp32", device="cpu")

    fake_mm.unload_all_models()  # what ComfyUI's "Unload models" and POST /free call

    assert calls == ["comfy"]
    assert net.weight.device.type == "meta"
    assert loaders._CACHE == {}
    after = node("FacEDiTModelLoader").fingerprint_inputs(checkpoint="x", precision="fp32", device="cpu")
    assert after != before
    loaders._cached("facedit", ("x",), lambda: loaded)
    fake_mm.unload_all_models()
    assert calls == ["comfy", "comfy"]  # wrapped once, however often a model is loaded


def test_render_keeps_frames_without_a_detected_face_and_names_them(models, chain, caplog):
    crop_class = pack_module("facedit.liveportrait.crop").CropTrack
    plan, target, crop, motion, driving = (chain[k] for k in ("plan", "target", "target_crop", "motion", "driving"))
    masked = np.flatnonzero(plan.infill_mask)
    missing = masked[1:3]
    detected = crop.detected.copy()
    detected[missing] = False
    faceless = crop_class(crop.frame_size, crop.center, crop.size, crop.angle, crop.face_box, detected)
    with caplog.at_level("WARNING", logger="facedit"):
        out = run("FacEDiTRender", models[0], target, faceless, motion, driving, plan, False, True, 4)[0]
    for k in missing:
        assert torch.equal(out[k], target[k]), k
    rest = [k for k in masked if k not in missing]
    assert torch.equal(out[rest], chain["rendered"][rest])
    assert f"FacEDiT Render: no face was detected for output frames {missing[0]}-{missing[1]}" in caplog.text

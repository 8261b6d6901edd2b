"""The example workflows: every API-format prompt runs through our nodes (core nodes faked) with tiny models,
and every UI-format workflow references existing nodes with widget values our schemas accept, wired like its
API-format twin."""

from __future__ import annotations

import json
import re
import wave
from fractions import Fraction

import _node_helpers
import av
import numpy as np
import pytest
import torch
from _node_helpers import (
    PORTRAIT_FACE_BOX,
    SAMPLES,
    WORKFLOWS,
    FakeInputs,
    FakeVideo,
    audio_dict,
    check_value,
    face_box_or_detect,
    fake_core_nodes,
    load_pack,
    read_wav,
    run_prompt,
    sample_frames,
)
from _tts_helpers import write_f5, write_vocos
from _whisper_helpers import retyped_line, write_tiny_whisper

from facedit.edits import normalize_token
from facedit.video_io import iter_frames, read_audio

UI_FILES = sorted(p for p in WORKFLOWS.glob("*.json"))
API_SUFFIX = " (API)"  # workflows/api/<name> (API).json is the API-format twin of workflows/<name>.json
API_FILES = sorted((WORKFLOWS / "api").glob(f"*{API_SUFFIX}.json"))
EDIT_WORDS, EDIT_SPANS = "FacEDiT - Edit with word timestamps", "FacEDiT - Edit with manual spans"
EDIT_TEXT, GENERATE = "FacEDiT - Edit from text", "FacEDiT - Generate from portrait"
FPS = 10.0
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")

# Core nodes as ComfyUI 0.8 and its frontend 1.35 define them: output types, socket inputs, widget names (in
# widgets_values order; None marks a UI-only value such as an upload button).
CORE = {
    "LoadVideo": {"outputs": ["VIDEO"], "inputs": {}, "widgets": ["file", None]},
    "GetVideoComponents": {"outputs": ["IMAGE", "AUDIO", "FLOAT"], "inputs": {"video": "VIDEO"}, "widgets": []},
    "LoadAudio": {"outputs": ["AUDIO"], "inputs": {}, "widgets": ["audio", None, None]},
    "LoadImage": {"outputs": ["IMAGE", "MASK"], "inputs": {}, "widgets": ["image", None]},
    "CreateVideo": {"outputs": ["VIDEO"], "inputs": {"images": "IMAGE", "audio": "AUDIO"}, "widgets": ["fps"]},
    "SaveVideo": {"outputs": [], "inputs": {"video": "VIDEO"}, "widgets": ["filename_prefix", "format", "codec"]},
}


def test_every_workflow_has_its_twin_and_thumbnail():
    assert len(UI_FILES) == 4 and len(API_FILES) == 4
    assert {p.stem for p in UI_FILES} == {EDIT_WORDS, EDIT_SPANS, EDIT_TEXT, GENERATE}
    assert {p.stem for p in UI_FILES} == {p.stem[: -len(API_SUFFIX)] for p in API_FILES}
    assert set((WORKFLOWS / "api").iterdir()) == set(API_FILES), "workflows/api/ holds only the API twins"
    for path in UI_FILES:  # the template browser shows workflows/<name>.jpg beside the JSON
        assert path.with_suffix(".jpg").is_file(), f"{path.name} has no thumbnail"
    assert {p.stem for p in WORKFLOWS.glob("*.jpg")} == {p.stem for p in UI_FILES}, "a thumbnail without workflow"


# ComfyUI 0.8 lists workflows/*.json of a pack by file name (GET /workflow_templates) and serves the folder at
# /api/workflow_templates/<pack>/; frontend 1.35 shows that name as the card's title and, with "-" and "_" as
# spaces, as its description, and puts it unescaped into the URLs of the JSON and of <name>.jpg.
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def template_name_problem(name: str) -> str | None:
    """Why a template's file name (without .json) would not make a readable card title, a working URL and a file
    that Windows can hold; None when it does."""
    if not 3 <= len(name) <= 48:
        return "should be 3 to 48 characters (a card shows about that much)"
    if not re.fullmatch(r"[A-Za-z0-9 ()_.-]+", name):
        return "may hold only letters, digits, spaces and ( ) - _ . (no : ? # % & + / \\ and the like)"
    if name != name.strip() or name.endswith(".") or "  " in name:
        return "must not start or end with a space, end with a dot or hold two spaces in a row"
    if name.split(".")[0].strip().upper() in WINDOWS_RESERVED:
        return "is a reserved device name on Windows"
    if not re.search(r"[A-Za-z]", name) or name == name.lower() and "_" in name:
        return "should read as a title (words, not a snake_case identifier)"
    return None


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("FacEDiT - Edit with word timestamps", True),
        ("Edit (v2)", True),
        ("facedit_edit_words", False),
        ("FacEDiT: Edit words", False),
        ("Edit words?", False),
        ("Edit #2", False),
        ("100% edit", False),
        ("Edit/words", False),
        (" Edit words", False),
        ("Edit words.", False),
        ("Edit  words", False),
        ("con", False),
        ("Aux.backup", False),
        ("FacEDiT - Edit with word timestamps and a very long tail", False),
    ],
)
def test_template_name_rules(name, ok):
    assert (template_name_problem(name) is None) == ok, template_name_problem(name)


@pytest.mark.parametrize("path", [*UI_FILES, *API_FILES], ids=lambda p: p.name)
def test_workflow_file_names_follow_the_rules(path):
    name = path.stem[: -len(API_SUFFIX)] if path.parent.name == "api" else path.stem
    assert template_name_problem(name) is None, f"{path.name}: the name {template_name_problem(name)}"


models_dir = _node_helpers.models_dir  # session fixtures shared with the other node tests
one_thread = _node_helpers.one_thread
pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------------------------ API format


def _write_wav(path, audio):
    data = (audio["waveform"][0].numpy().T * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(data.shape[1])
        f.setsampwidth(2)
        f.setframerate(audio["sample_rate"])
        f.writeframes(data.tobytes())
    return path


def _write_clip(path, frames):
    """The sample clip as an H.264 file with a keyframe every 10 frames, so an edit leaves GOPs to copy."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(10))
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        s.options = {"preset": "ultrafast", "g": "10", "crf": "18"}
        for i, rgb in enumerate(frames):
            f = av.VideoFrame.from_ndarray(np.rint(rgb * 255).astype(np.uint8), format="rgb24").reformat(
                format="yuv420p"
            )
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return path


@pytest.fixture(scope="module")
def fake_inputs(tmp_path_factory):
    """ComfyUI's input folder as the fakes see it: the sample clip (4 s at 10 fps, 128x128, with the original speech
    as the video's audio), the sample speech files and portrait; for generation a shorter speech."""
    folder = tmp_path_factory.mktemp("input")
    original = read_wav(SAMPLES / "original.wav")
    clip = _write_clip(folder / "facedit_sample.mp4", sample_frames(40, 128, FPS))
    frames = torch.from_numpy(np.stack(list(iter_frames(clip))))  # what Load Video decodes from that file
    video = FakeVideo(frames, original, Fraction(10), str(clip))
    short = _write_wav(folder / "short.wav", audio_dict(1.2, seed=5))
    return FakeInputs({"facedit_sample.mp4": video}, {"generate:original.wav": short})


def _api(name):
    return json.loads((WORKFLOWS / "api" / f"{name}{API_SUFFIX}.json").read_text())


def _node_id(prompt, class_type):
    return next(k for k, v in prompt.items() if v["class_type"] == class_type)


@pytest.mark.parametrize("name", [EDIT_WORDS, EDIT_SPANS])
def test_edit_workflow_runs(name, models_dir, fake_inputs, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEDIT_OUTPUT_DIR", str(tmp_path / "output"))
    prompt = _api(name)
    saved = []
    overrides = {
        (_node_id(prompt, "FacEDiTInfill"), "steps"): 2,
        (_node_id(prompt, "FacEDiTFaceCrop"), "detect_every"): 4,
        (_node_id(prompt, "FacEDiTFaceCrop"), "face_box"): face_box_or_detect(),
    }
    run = run_prompt(prompt, fake_core_nodes(fake_inputs, saved), overrides)
    plan_id = next(k for k, v in prompt.items() if v["class_type"].endswith("EditPlan"))
    plan = run.outputs[plan_id][0]
    edited = read_wav(SAMPLES / "edited.wav")
    assert plan.target_frames == int(np.floor(edited["waveform"].shape[-1] / 16000 * FPS + 0.5)) == 44
    assert run.ui[plan_id]["facedit_plan"] == [plan.to_dict()]
    assert saved == [], "the edit workflows end with FacEDiT Save Edited Video, not a generic save"
    rendered = run.outputs[_node_id(prompt, "FacEDiTRender")][0]
    path, report = run.outputs[_node_id(prompt, "FacEDiTSaveEditedVideo")]
    assert report.startswith("smart render (h264): ") and "GOPs copied packet for packet" in report, report
    assert path.startswith(str(tmp_path / "output" / "video" / "FacEDiT")) and path.endswith(".mp4")
    written = np.stack(list(iter_frames(path, dtype="uint8")))
    assert written.shape == (44, 128, 128, 3)
    wave_, rate = read_audio(path)
    assert rate == 16000 and abs(wave_.shape[1] / rate - 4.4) < 0.1
    source = np.stack(list(iter_frames(fake_inputs.videos["facedit_sample.mp4"].path, dtype="uint8")))
    mask = plan.infill_mask
    assert 0 < mask.sum() < 25
    copied = 0
    for k in range(44):
        want = np.rint(rendered[k].numpy() * 255).astype(np.uint8)
        if not mask[k] and np.array_equal(written[k], source[int(plan.source_time[k])]):
            copied += 1  # a copied GOP: the source's own frame
        else:
            mse = np.mean((written[k].astype(np.float64) - want) ** 2)
            # crf 18 on this 128 px clip: 39.8 to 45 dB where the GOP holds re-rendered frames
            assert mse == 0 or 10 * np.log10(255.0**2 / mse) >= 38.0, k
    assert copied >= 10
    for k in np.flatnonzero(mask):
        assert not np.array_equal(written[k], source[int(round(plan.source_time[k]))]), k


@pytest.fixture(scope="module")
def text_models(models_dir):
    """The text workflow's extra models beside the others: a tiny Whisper, F5-TTS (+ vocab.txt) and Vocos."""
    write_tiny_whisper(models_dir / "whisper" / "whisper-small")
    write_f5(models_dir / "f5tts" / "F5TTS_v1_Base")
    write_vocos(models_dir / "vocos" / "vocos-mel-24khz")
    return models_dir


def test_text_workflow_runs(text_models, fake_inputs, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEDIT_OUTPUT_DIR", str(tmp_path / "output"))
    prompt = _api(EDIT_TEXT)
    transcribe, speech_edit = _node_id(prompt, "FacEDiTTranscribe"), _node_id(prompt, "FacEDiTSpeechEdit")
    plan_id, save = _node_id(prompt, "FacEDiTEditPlan"), _node_id(prompt, "FacEDiTSaveEditedVideo")
    core = fake_core_nodes(fake_inputs, [])
    # First the user runs the transcription alone and reads the transcript shown on the node.
    upstream = {k: prompt[k] for k in ("1", "2", _node_id(prompt, "FacEDiTWhisperLoader"), transcribe)}
    heard = run_prompt(upstream, core)
    words_json, text = heard.outputs[transcribe]
    assert heard.ui[transcribe] == {"facedit_transcript": [text]}
    line, replaced = retyped_line(json.loads(words_json))
    overrides = {
        (speech_edit, "edited_text"): line,
        (speech_edit, "steps"): 2,
        (_node_id(prompt, "FacEDiTInfill"), "steps"): 2,
        (_node_id(prompt, "FacEDiTFaceCrop"), "detect_every"): 4,
        (_node_id(prompt, "FacEDiTFaceCrop"), "face_box"): face_box_or_detect(),
    }
    run = run_prompt(prompt, core, overrides)
    assert run.outputs[transcribe] == (words_json, text), "the transcript repeats"
    original = fake_inputs.videos["facedit_sample.mp4"].audio
    edited, edited_words = run.outputs[speech_edit]
    plan = run.outputs[plan_id][0]
    rate = original["sample_rate"]
    n_orig, n_edit = original["waveform"].shape[-1], edited["waveform"].shape[-1]
    assert edited["sample_rate"] == rate and n_edit != n_orig
    assert plan.target_frames == int(np.floor(n_edit / rate * FPS + 0.5))

    # One substitution: the replaced word out, 'harbour' in, where Speech Edit says it put it.
    (edit,) = plan.edits
    assert edit.type == "substitution" and [t for t in edit.edited_words if normalize_token(t)] == ["harbour"]
    assert replaced["word"] in edit.original_words and "harbour" not in edit.original_words
    assert edit.original_span_s[0] <= replaced["start"] and replaced["end"] <= edit.original_span_s[1]
    (new,) = [w for w in json.loads(edited_words) if w["word"] == "harbour"]
    mask = plan.infill_mask
    covered = np.flatnonzero(mask)
    assert covered[0] <= int(np.floor(new["start"] * FPS)) and int(np.ceil(new["end"] * FPS)) - 1 <= covered[-1]
    assert mask.sum() < plan.target_frames

    # Unedited audio is the original's samples outside the seams (a mel frame of rounding + the cross-fade).
    margin = int(np.ceil(rate * (256 / 24000 + 0.005)))
    a, b = int(edit.original_span_s[0] * rate) - margin, int(np.ceil(edit.original_span_s[1] * rate)) + margin
    a, b = max(a, 0), min(b, n_orig)
    assert a > 0 or b < n_orig, "the edit covers the whole speech"
    assert torch.equal(edited["waveform"][..., :a], original["waveform"][..., :a])
    assert torch.equal(edited["waveform"][..., n_edit - (n_orig - b) :], original["waveform"][..., b:])
    inside = min(b - a, n_edit - (n_orig - b) - a)  # the synthesised span is new sound, not the original's
    assert inside > 0 and not torch.equal(
        edited["waveform"][..., a : a + inside], original["waveform"][..., a : a + inside]
    )

    # The file: every frame of the plan, the edited speech as its audio.
    path, report = run.outputs[save]
    assert path.startswith(str(tmp_path / "output" / "video" / "FacEDiT_edit_from_text")), path
    assert "GOPs copied packet for packet" in report, report
    written = np.stack(list(iter_frames(path, dtype="uint8")))
    assert written.shape == (plan.target_frames, 128, 128, 3)
    wave_, file_rate = read_audio(path)
    assert file_rate == rate and abs(wave_.shape[1] / file_rate - n_edit / rate) < 0.05


def test_generation_workflow_runs(models_dir, fake_inputs):
    prompt = _api(GENERATE)
    saved = []
    files = dict(fake_inputs.files)
    files["original.wav"] = files.pop("generate:original.wav")
    inputs = FakeInputs(fake_inputs.videos, files)
    overrides = {
        (_node_id(prompt, "FacEDiTInfill"), "steps"): 2,
        (_node_id(prompt, "FacEDiTGenerationPlan"), "fps"): FPS,
        (_node_id(prompt, "CreateVideo"), "fps"): FPS,
        (_node_id(prompt, "FacEDiTFaceCrop"), "face_box"): face_box_or_detect(PORTRAIT_FACE_BOX),
    }
    run = run_prompt(prompt, fake_core_nodes(inputs, saved), overrides)
    (result,) = [s for s in saved if "video" in s]
    portrait = run.outputs[_node_id(prompt, "LoadImage")][0]
    video = result["video"]
    assert video.images.shape == (12, *portrait.shape[1:]) and video.frame_rate == 10
    assert torch.equal(video.images[0], portrait[0])
    changed = [(video.images[k] != portrait[0]).any().item() for k in range(12)]
    assert changed == [False] + [True] * 11
    plan = run.outputs[_node_id(prompt, "FacEDiTGenerationPlan")][0]
    assert plan.mode == "generate" and plan.target_frames == 12


# ------------------------------------------------------------------------------------------------ UI format


def _schema_widgets(cls):
    """Widget inputs of one of our nodes in the frontend's order: required, then optional."""
    info = cls.GET_SCHEMA().as_object_info()["input"]
    specs = {**info["required"], **info["optional"]}
    return [(name, specs[name]) for name in [*info["required"], *info["optional"]] if specs[name][0] in WIDGET_TYPES]


def _widget_values(node, cls):
    """{input name: value} of a UI node of ours; checks the values positionally, the seed's control value too."""
    values = list(node.get("widgets_values") or [])
    named = {}
    for name, (kind, spec) in _schema_widgets(cls):
        assert values, f"node {node['id']} ({node['type']}): too few widget values"
        value = values.pop(0)
        check_value(f"{node['id']}.{name}", kind, spec, value)
        named[name] = value
        if spec.get("control_after_generate"):
            control = values.pop(0)
            assert control == "fixed", f"node {node['id']}: {name} should stay fixed in an example, got {control!r}"
    assert not values, f"node {node['id']} ({node['type']}): extra widget values {values}"
    return named


def _outputs_of(node_type, pack):
    if node_type in pack.NODE_CLASS_MAPPINGS:
        return pack.NODE_CLASS_MAPPINGS[node_type].GET_SCHEMA().as_object_info()["output"]
    return CORE[node_type]["outputs"]


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_ui_workflow_is_valid_and_matches_its_api_twin(path, models_dir):
    pack = load_pack()
    graph = json.loads(path.read_text())
    prompt = _api(path.stem)
    nodes = {str(n["id"]): n for n in graph["nodes"]}
    assert set(nodes) == set(prompt), "the UI workflow and its API twin have different node ids"
    links = {link[0]: link for link in graph["links"]}
    assert len(links) == len(graph["links"])
    for node_id, node in nodes.items():
        kind = node["type"]
        assert kind == prompt[node_id]["class_type"]
        assert kind in pack.NODE_CLASS_MAPPINGS or kind in CORE, f"unknown node type {kind}"
        api_inputs = prompt[node_id]["inputs"]
        linked = {}
        for slot in node.get("inputs", []):
            if slot.get("link") is None:
                continue
            _, src, src_slot, dst, dst_slot, link_type = links[slot["link"]]
            assert str(dst) == node_id and node["inputs"][dst_slot] is slot
            assert _outputs_of(nodes[str(src)]["type"], pack)[src_slot] == link_type == slot["type"]
            linked[slot["name"]] = [str(src), src_slot]
        api_links = {k: [str(v[0]), v[1]] for k, v in api_inputs.items() if isinstance(v, list)}
        assert linked == api_links, f"node {node_id} ({kind}) is wired differently from its API twin"
        if kind in pack.NODE_CLASS_MAPPINGS:
            named = _widget_values(node, pack.NODE_CLASS_MAPPINGS[kind])
            for name, value in named.items():
                if name not in linked:
                    assert api_inputs[name] == value, f"node {node_id}.{name}: UI {value!r}, API {api_inputs[name]!r}"
        else:
            values = list(node.get("widgets_values") or [])
            names = CORE[kind]["widgets"]
            assert len(values) == len(names), f"node {node_id} ({kind}): widgets {values}"
            for name, value in zip(names, values, strict=True):
                if name is not None and name not in linked:
                    assert api_inputs[name] == value, f"node {node_id}.{name}: UI {value!r}, API {api_inputs[name]!r}"
    for link_id, (_, src, src_slot, dst, _, _) in links.items():
        assert str(src) in nodes and str(dst) in nodes, f"link {link_id} joins missing nodes"
        assert link_id in (nodes[str(src)]["outputs"][src_slot].get("links") or [])


# The frontend 1.35 lays a node out as a 30 px title bar above its position, then rows of 20 px per socket (inputs
# beside outputs) and 24 px per widget, plus 14 px padding; a node saved smaller than that is grown on load and can
# cover the node below it (Infill once hid its last widget under Render's title).
TITLE_H, SLOT_H, WIDGET_H, PADDING = 30, 20, 24, 14
# It also draws a custom node's source badge ("FacEDiT") about 20 px high just above the title bar, over whatever
# lies there (it once hid Infill's last widget, Render's badge sitting 4 px below it).
BADGE_H = 20


def _sockets(cls):
    """Socket (non-widget) inputs of one of our nodes in the frontend's order, and its number of outputs."""
    info = cls.GET_SCHEMA().as_object_info()
    specs = {**info["input"]["required"], **info["input"]["optional"]}
    names = [n for n in [*info["input"]["required"], *info["input"]["optional"]] if specs[n][0] not in WIDGET_TYPES]
    return names, len(info["output"])


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_ui_workflow_nodes_keep_clear_of_each_other(path):
    """Saved with every socket the node has and at least the height the frontend gives it, no node (with its
    title bar and source badge) covers another."""
    pack = load_pack()
    graph = json.loads(path.read_text())
    boxes = {}
    for node in graph["nodes"]:
        label = f"{node['id']} ({node['type']})"
        if node["type"] in pack.NODE_CLASS_MAPPINGS:
            inputs, outputs = _sockets(pack.NODE_CLASS_MAPPINGS[node["type"]])
            saved = [s["name"] for s in node.get("inputs", []) if "widget" not in s]
            assert saved == inputs, f"node {label}: saved sockets {saved}, the node has {inputs}"
            least = max(len(inputs), outputs) * SLOT_H + len(node.get("widgets_values") or []) * WIDGET_H + PADDING
            assert node["size"][1] >= least, f"node {label} saved {node['size'][1]} px high, the frontend needs {least}"
        x, y = node["pos"]
        top = y - TITLE_H - (BADGE_H if node["type"] in pack.NODE_CLASS_MAPPINGS else 0)
        boxes[label] = (x, top, x + node["size"][0], y + node["size"][1])
    names = sorted(boxes)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = boxes[a], boxes[b]
            assert min(ax1, bx1) <= max(ax0, bx0) or min(ay1, by1) <= max(ay0, by0), f"{a} overlaps {b}"


@pytest.mark.parametrize("path", API_FILES, ids=lambda p: p.stem)
def test_api_workflow_uses_only_known_nodes_and_valid_values(path, models_dir):
    pack = load_pack()
    prompt = json.loads(path.read_text())
    for node_id, node in prompt.items():
        kind = node["class_type"]
        if kind in CORE:
            continue
        info = pack.NODE_CLASS_MAPPINGS[kind].GET_SCHEMA().as_object_info()["input"]
        specs = {**info["required"], **info["optional"]}
        assert set(info["required"]) <= set(node["inputs"]) <= set(specs), node_id
        for name, value in node["inputs"].items():
            if not isinstance(value, list):
                check_value(f"{node_id}.{name}", specs[name][0], specs[name][1], value)

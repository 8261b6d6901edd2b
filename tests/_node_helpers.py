"""Helpers for the node tests: the pack loaded the way ComfyUI loads it, tiny model files in a models folder,
small fakes of the core nodes the example workflows use, and a prompt runner with ComfyUI's validation rules.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import sys
import wave
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "facedit" / "samples"
WORKFLOWS = ROOT / "workflows"
PACK_NAME = "ComfyUI-FacEDiT"
SPEECH_DIM = 32  # hidden size of the tiny WavLM = speech_dim of the tiny FacEDiT

# Model names the example workflows select (what a user's models folder is expected to hold).
LIVEPORTRAIT_FOLDER = "."
WAVLM_NAME = "wavlm-base-plus"
FACEDIT_NAME = "facedit.safetensors"


DLIB_REASON = "the default face detector needs dlib (pip install dlib-bin)"


SAMPLE_FACE_BOX = "43,26,96,79"  # where dlib finds the face in the 128x128 sample frames
PORTRAIT_FACE_BOX = "180,139,367,326"  # and in facedit/samples/portrait.jpg


def _has_dlib() -> bool:
    try:
        import dlib  # noqa: F401
    except ImportError:
        return False
    return True


HAS_DLIB = _has_dlib()


def need_dlib() -> None:
    """Skip a test about face detection where dlib, the default detector, is not installed."""
    pytest.importorskip("dlib", reason=DLIB_REASON)


def face_box_or_detect(box: str = SAMPLE_FACE_BOX) -> str:
    """The Face Crop node's face_box for tests that need a face but are not about detection: detect with dlib
    where it is installed, else the known box."""
    return "" if HAS_DLIB else box


def load_pack():
    """The pack imported like ComfyUI does: its root __init__.py as a package named after its (hyphenated) folder."""
    if PACK_NAME in sys.modules:
        return sys.modules[PACK_NAME]
    spec = importlib.util.spec_from_file_location(
        PACK_NAME, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_NAME] = module
    spec.loader.exec_module(module)
    return module


def pack_module(name: str):
    load_pack()
    return sys.modules[f"{PACK_NAME}.{name}"]


# ---------------------------------------------------------------------------------------------------- models


def tiny_wavlm(seed: int = 0):
    from transformers import WavLMConfig, WavLMModel

    torch.manual_seed(seed)
    config = WavLMConfig(
        hidden_size=SPEECH_DIM, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, num_buckets=32,
    )  # fmt: skip
    return WavLMModel(config).eval()


def write_models(root: Path, seed: int = 0) -> Path:
    """A models folder as a user's ComfyUI has it, with tiny random weights:
    liveportrait/ (the official .pth tree + liveportrait_config.json of the tiny widths), wavlm/wavlm-base-plus/
    (a Hugging Face folder), facedit/facedit.safetensors."""
    from _lp_helpers import tiny_model, write_official
    from _model_helpers import random_model

    from facedit.checkpoint import save_facedit
    from facedit.liveportrait import LivePortraitConfig

    lp_root = root / "liveportrait"
    write_official(tiny_model(seed), lp_root)
    (lp_root / "liveportrait_config.json").write_text(json.dumps(dataclasses.asdict(LivePortraitConfig.tiny())))
    tiny_wavlm(seed).save_pretrained(root / "wavlm" / WAVLM_NAME)
    (root / "facedit").mkdir(parents=True, exist_ok=True)
    save_facedit(root / "facedit" / FACEDIT_NAME, random_model(seed, speech_dim=SPEECH_DIM))
    return root


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    """A models folder with tiny weights (see write_models), made once per test session, as FACEDIT_MODELS_DIR."""
    root = write_models(tmp_path_factory.mktemp("models"))
    before = os.environ.get("FACEDIT_MODELS_DIR")
    os.environ["FACEDIT_MODELS_DIR"] = str(root)
    yield root
    if before is None:
        del os.environ["FACEDIT_MODELS_DIR"]
    else:
        os.environ["FACEDIT_MODELS_DIR"] = before


@pytest.fixture
def one_thread():
    """Small convolutions on a shared 2-core machine run far faster on one thread than on two competing ones."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------------- media


def _sample_video_module():
    spec = importlib.util.spec_from_file_location("make_sample_video", WORKFLOWS / "make_sample_video.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sample_frames(n: int, size: int = 128, fps: float = 25.0) -> np.ndarray:
    return _sample_video_module().sample_frames(n, size, fps)


def read_wav(path: Path) -> dict[str, Any]:
    """A wav file as ComfyUI's LoadAudio gives it: {"waveform": [1, C, S] float32, "sample_rate"}."""
    with wave.open(str(path)) as f:
        rate, n, channels = f.getframerate(), f.getnframes(), f.getnchannels()
        data = np.frombuffer(f.readframes(n), dtype=np.int16).reshape(-1, channels).T
    return {"waveform": torch.from_numpy(data.astype(np.float32) / 32768.0)[None], "sample_rate": rate}


def audio_dict(seconds: float, rate: int = 16000, seed: int = 0, channels: int = 1) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(round(seconds * rate))) / rate
    voice = torch.sin(2 * torch.pi * 180 * t) * (0.5 + 0.5 * torch.sin(2 * torch.pi * 1.3 * t))
    wave_ = torch.stack([0.5 * voice + 0.02 * torch.randn(t.shape, generator=g) for _ in range(channels)])
    return {"waveform": wave_[None].float(), "sample_rate": rate}


@dataclasses.dataclass
class FakeVideo:
    images: torch.Tensor
    audio: dict[str, Any] | None
    frame_rate: Fraction
    path: str | None = None  # the file behind it, as core VideoFromFile has one

    def get_stream_source(self) -> str | None:
        return self.path


class FakeInputs:
    """What the fake loaders find in ComfyUI's input folder: videos by name, and the sample files."""

    def __init__(self, videos: dict[str, FakeVideo], files: dict[str, Path] | None = None):
        self.videos = videos
        self.files = files or {}

    def path(self, name: str) -> Path:
        if name in self.files:
            return self.files[name]
        path = SAMPLES / name
        if not path.is_file():
            raise FileNotFoundError(f"fake input folder has no {name!r}")
        return path


def fake_core_nodes(inputs: FakeInputs, saved: list) -> dict[str, Any]:
    """Stand-ins for the core nodes the workflows use, with their input names and output order (ComfyUI 0.8)."""

    def load_video(file: str):
        if file not in inputs.videos:
            raise FileNotFoundError(f"fake input folder has no video {file!r}")
        return (inputs.videos[file],)

    def get_video_components(video: FakeVideo):
        return (video.images, video.audio, float(video.frame_rate))

    def load_audio(audio: str):
        return (read_wav(inputs.path(audio)),)

    def load_image(image: str):
        bgr = cv2.imread(str(inputs.path(image)), cv2.IMREAD_COLOR)
        rgb = torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0)[None]
        return rgb, torch.zeros(1, 64, 64)

    def create_video(images: torch.Tensor, fps: float, audio: dict | None = None):
        return (FakeVideo(images, audio, Fraction(fps).limit_denominator(1001)),)

    def save_video(video: FakeVideo, filename_prefix: str, format: str, codec: str):  # noqa: A002 (ComfyUI's name)
        saved.append({"video": video, "filename_prefix": filename_prefix, "format": format, "codec": codec})
        return ()

    def preview_image(images: torch.Tensor):
        saved.append({"preview": images})
        return ()

    return {
        "LoadVideo": (load_video, False),
        "GetVideoComponents": (get_video_components, False),
        "LoadAudio": (load_audio, False),
        "LoadImage": (load_image, False),
        "CreateVideo": (create_video, False),
        "SaveVideo": (save_video, True),
        "PreviewImage": (preview_image, True),
    }


# ---------------------------------------------------------------------------------------------------- prompts


def check_value(name: str, kind: str, spec: dict[str, Any], value: Any) -> None:
    """ComfyUI's validation of one literal input (execution.validate_inputs): type, min/max, combo options."""
    if kind == "INT":
        assert isinstance(value, int) and not isinstance(value, bool), f"{name}: {value!r} is not an INT"
    elif kind == "FLOAT":
        assert isinstance(value, int | float) and not isinstance(value, bool), f"{name}: {value!r} is not a FLOAT"
    elif kind == "STRING":
        assert isinstance(value, str), f"{name}: {value!r} is not a STRING"
    elif kind == "BOOLEAN":
        assert isinstance(value, bool), f"{name}: {value!r} is not a BOOLEAN"
    elif kind == "COMBO":
        assert value in spec["options"], f"{name}: {value!r} not in {spec['options']}"
    else:
        raise AssertionError(f"{name}: a {kind} input needs a link, got the literal {value!r}")
    if kind in ("INT", "FLOAT"):
        if spec.get("min") is not None:
            assert value >= spec["min"], f"{name}: {value} < min {spec['min']}"
        if spec.get("max") is not None:
            assert value <= spec["max"], f"{name}: {value} > max {spec['max']}"


def _upstream_order(prompt: dict[str, Any], outputs: list[str]) -> list[str]:
    order: list[str] = []

    def visit(node_id: str) -> None:
        if node_id in order:
            return
        for value in prompt[node_id]["inputs"].values():
            if isinstance(value, list):
                visit(str(value[0]))
        order.append(node_id)

    for node_id in sorted(outputs, key=int):
        visit(node_id)
    return order


@dataclasses.dataclass
class PromptRun:
    outputs: dict[str, tuple]
    ui: dict[str, Any]
    order: list[str]


def run_prompt(prompt: dict[str, Any], core: dict[str, Any], overrides: dict[tuple[str, str], Any] | None = None):
    """Validate and run an API-format prompt like ComfyUI: only output nodes and their ancestors, in dependency
    order, every node under torch.inference_mode(). ``overrides`` replaces literal inputs {(node id, name): value}."""
    pack = load_pack()
    prompt = json.loads(json.dumps(prompt))
    for (node_id, name), value in (overrides or {}).items():
        assert name in prompt[node_id]["inputs"], f"override of a missing input {node_id}.{name}"
        prompt[node_id]["inputs"][name] = value
    outputs = []
    for node_id, node in prompt.items():
        kind = node["class_type"]
        if kind in pack.NODE_CLASS_MAPPINGS:
            schema = pack.NODE_CLASS_MAPPINGS[kind].GET_SCHEMA()
            info = schema.as_object_info()["input"]
            specs = {**info["required"], **info["optional"]}
            for name in info["required"]:
                assert name in node["inputs"], f"node {node_id} ({kind}): required input {name!r} missing"
            for name, value in node["inputs"].items():
                assert name in specs, f"node {node_id} ({kind}): unknown input {name!r}"
                if isinstance(value, list):
                    assert str(value[0]) in prompt, f"node {node_id}: link to missing node {value[0]}"
                else:
                    check_value(f"{node_id}.{name}", specs[name][0], specs[name][1], value)
            if schema.is_output_node:
                outputs.append(node_id)
        else:
            assert kind in core, f"node {node_id}: unknown class_type {kind!r}"
            if core[kind][1]:
                outputs.append(node_id)
    assert outputs, "the prompt has no output node"
    order = _upstream_order(prompt, outputs)
    results: dict[str, tuple] = {}
    ui: dict[str, Any] = {}
    for node_id in order:
        node = prompt[node_id]
        kwargs = {
            name: results[str(value[0])][value[1]] if isinstance(value, list) else value
            for name, value in node["inputs"].items()
        }
        with torch.inference_mode():
            if node["class_type"] in pack.NODE_CLASS_MAPPINGS:
                out = pack.NODE_CLASS_MAPPINGS[node["class_type"]].execute(**kwargs)
                results[node_id] = tuple(out.args)
                if out.ui is not None:
                    ui[node_id] = out.ui
            else:
                results[node_id] = tuple(core[node["class_type"]][0](**kwargs))
    return PromptRun(results, ui, order)

"""Helpers for the frontend tests: real example plans, a throwaway probe node pack, a ComfyUI server.

The probe pack registers nodes with the ids of our plan nodes (FacEDiTEditPlan, FacEDiTManualEditPlan,
FacEDiTGenerationPlan) that send real ``EditPlan.to_dict()`` plans as UI output, and serves this repository's
``web/`` folder, so the browser runs our actual extension without needing the real nodes or models. It lives
in a temporary ComfyUI base directory (``--base-directory``), never in a shared ComfyUI install.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from facedit.edits import plan_edit, plan_from_spans, plan_generation  # noqa: E402
from facedit.timestamps import Word, load_words  # noqa: E402

SAMPLES = ROOT / "facedit" / "samples"
FPS = 25


def _duration(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def _multi_edit_words() -> tuple[list[Word], float]:
    """The sample sentence with "will" deleted, "station" -> "old harbour", "sharp" appended; "the" untimed."""
    words = [
        ("we", 0.3, 0.64),
        ("meet", 0.7, 1.057),
        ("at", 1.117, 1.421),
        ("the", 1.481, 1.744),
        ("old", 1.804, 2.213),
        ("harbour", 2.273, 2.77),
        ("at", 2.83, 3.134),
        ("noon", 3.194, 3.619),
        ("sharp", 3.679, 4.05),
    ]
    return [Word(t, a, b, interpolated=t == "the") for t, a, b in words], 4.41


def example_plans(context_frames: int = 3) -> dict[str, dict[str, Any]]:
    """Plan dicts exactly as the plan nodes send them, built by facedit.edits from the sample speech."""
    original = load_words(SAMPLES / "original_words.json")
    edited = load_words(SAMPLES / "edited_words.json")
    original_s, edited_s = _duration(SAMPLES / "original.wav"), _duration(SAMPLES / "edited.wav")
    source_frames = round(original_s * FPS)
    multi_words, multi_s = _multi_edit_words()
    common = dict(fps=FPS, source_frames=source_frames, context_frames=context_frames)
    plans = {
        "sample": plan_edit(original, edited, original_duration_s=original_s, edited_duration_s=edited_s, **common),
        "multi": plan_edit(original, multi_words, original_duration_s=original_s, edited_duration_s=multi_s, **common),
        "spans": plan_from_spans(
            [(1.0, 1.45, 0.9), (2.5, 2.5, 0.4), (3.2, 3.7, 0.0)], original_duration_s=original_s, **common
        ),
        "portrait": plan_generation(3.0, fps=FPS, prompt_frames=1, context_frames=0),
    }
    return {name: plan.to_dict() for name, plan in plans.items()}


def malformed_plan() -> dict[str, Any]:
    """A plan dict with one broken field (source_time one entry short): must be reported, not drawn."""
    plan = example_plans()["sample"]
    plan["source_time"] = plan["source_time"][:-1]
    return plan


PROBE_CASES = {
    "FacEDiTEditPlan": ["sample", "multi", "malformed"],
    "FacEDiTManualEditPlan": ["spans"],
    "FacEDiTGenerationPlan": ["portrait"],
}

_PROBE_INIT = '''"""TEST-ONLY probe pack written by tests/_frontend_helpers.py: plan nodes that send real plans."""
import os
import sys
import uuid

sys.path[:0] = [{root!r}, {tests!r}]

import numpy as np
import torch
from PIL import Image

import folder_paths
from _frontend_helpers import PROBE_CASES, example_plans, malformed_plan
from facedit.edits import EditPlan
from facedit.plan_preview import render_plan

WEB_DIRECTORY = "./web"


def _preview(plan):
    try:
        picture = render_plan(EditPlan.from_dict(plan), width=640)
    except ValueError:
        picture = np.full((48, 640, 3), 0.5, np.float32)
    name = f"facedit_plan_probe_{{uuid.uuid4().hex[:10]}}.png"
    Image.fromarray((picture * 255).round().astype(np.uint8)).save(
        os.path.join(folder_paths.get_temp_directory(), name))
    return picture, {{"filename": name, "subfolder": "", "type": "temp"}}


def _node(node_id, cases):
    class Probe:
        CATEGORY = "FacEDiT/probe"
        RETURN_TYPES = ("IMAGE",)
        RETURN_NAMES = ("plan_image",)
        FUNCTION = "run"

        @classmethod
        def INPUT_TYPES(cls):
            context = ("INT", {{"default": 3, "min": 0, "max": 12}})
            return {{"required": {{"case": (cases,), "context_frames": context}}}}

        def run(self, case, context_frames):
            plan = malformed_plan() if case == "malformed" else example_plans(context_frames)[case]
            picture, saved = _preview(plan)
            return {{"ui": {{"facedit_plan": [plan], "images": [saved]}},
                    "result": (torch.from_numpy(picture)[None],)}}

    Probe.__name__ = node_id
    return Probe


NODE_CLASS_MAPPINGS = {{node_id: _node(node_id, cases) for node_id, cases in PROBE_CASES.items()}}
NODE_DISPLAY_NAME_MAPPINGS = {{
    "FacEDiTEditPlan": "FacEDiT Edit Plan", "FacEDiTManualEditPlan": "FacEDiT Manual Edit Plan",
    "FacEDiTGenerationPlan": "FacEDiT Generation Plan",
}}
'''


def write_probe_base(base: Path, pack: str = "facedit_plan_probe") -> Path:
    """A ComfyUI base directory whose only custom node pack is the probe (serving our web/ folder)."""
    folder = base / "custom_nodes" / pack
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(_PROBE_INIT.format(root=str(ROOT), tests=str(ROOT / "tests")))
    (folder / "web").symlink_to(ROOT / "web", target_is_directory=True)
    for sub in ("input", "output", "temp", "user", "models"):
        (base / sub).mkdir(exist_ok=True)
    return folder


def write_pack_base(base: Path) -> Path:
    """A ComfyUI base directory whose only custom node pack is this repository (its nodes and web/), with the
    sample speech in input/ for ``pack_prompt``."""
    folder = base / "custom_nodes" / "ComfyUI-FacEDiT"
    folder.parent.mkdir(parents=True, exist_ok=True)
    if not folder.exists():
        folder.symlink_to(ROOT, target_is_directory=True)
    for sub in ("input", "output", "temp", "user", "models"):
        (base / sub).mkdir(exist_ok=True)
    for name in ("original.wav", "edited.wav"):
        shutil.copy(SAMPLES / name, base / "input" / name)
    return folder


def pack_prompt() -> dict[str, Any]:
    """API prompt running the pack's three plan nodes on the sample speech and 100 blank frames."""
    words, _ = _multi_edit_words()
    edited_words = json.dumps([{"word": w.text, "start": w.start, "end": w.end} for w in words], indent=1)
    common = {"edited_audio": ["2", 0], "original_audio": ["3", 0], "images": ["1", 0], "fps": float(FPS)}
    common["context_frames"] = 3
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 100, "color": 0}},
        "2": {"class_type": "LoadAudio", "inputs": {"audio": "edited.wav"}},
        "3": {"class_type": "LoadAudio", "inputs": {"audio": "original.wav"}},
        "4": {
            "class_type": "FacEDiTEditPlan",
            "inputs": {
                "original_words": (SAMPLES / "original_words.json").read_text(),
                "edited_words": edited_words,
                **common,
            },
        },
        "5": {"class_type": "FacEDiTManualEditPlan", "inputs": {"spans": "1.0 1.45 0.9\n2.5 2.5 0.4", **common}},
        "6": {
            "class_type": "FacEDiTGenerationPlan",
            "inputs": {"speech": ["2", 0], "fps": float(FPS), "prompt_frames": 1},
        },
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    """A ComfyUI process on a free port with its own base directory; stops on exit."""

    def __init__(self, comfy_dir: Path, python: str, base: Path, timeout_s: float = 120.0) -> None:
        self.comfy_dir, self.python, self.base, self.timeout_s = comfy_dir, python, base, timeout_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = base / "comfy.log"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> ComfyServer:
        cmd = [self.python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--base-directory", str(self.base), "--disable-metadata"]
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(cmd, cwd=self.comfy_dir, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if "To see the GUI go to" in self.log_path.read_text(errors="replace"):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        log = self.log()
        self.__exit__(None, None, None)
        raise RuntimeError(f"ComfyUI did not start; log tail:\n{log[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def comfy_install() -> tuple[Path, str] | None:
    """(ComfyUI folder, its python) from FACEDIT_COMFYUI_DIR / FACEDIT_COMFYUI_PYTHON (opt-in: starting a real
    ComfyUI and a browser is for developers who point the tests at one, not for every test run)."""
    if "FACEDIT_COMFYUI_DIR" not in os.environ:
        return None
    comfy = Path(os.environ["FACEDIT_COMFYUI_DIR"])
    python = os.environ.get("FACEDIT_COMFYUI_PYTHON", str(comfy.parent / "venv" / "bin" / "python"))
    if (comfy / "main.py").is_file() and Path(python).is_file():
        return comfy, python
    return None

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load_pack_as(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_pack_imports_like_comfyui_under_a_hyphenated_name():
    pack = _load_pack_as("ComfyUI-FacEDiT")
    assert isinstance(pack.NODE_CLASS_MAPPINGS, dict)
    assert set(pack.NODE_DISPLAY_NAME_MAPPINGS) <= set(pack.NODE_CLASS_MAPPINGS)
    assert (ROOT / pack.WEB_DIRECTORY).is_dir()


def test_library_never_imports_comfyui():
    forbidden = ("comfy", "comfy_api", "folder_paths", "server", "nodes")
    for path in (ROOT / "facedit").rglob("*.py"):
        for line in path.read_text().splitlines():
            words = line.strip().split()
            if len(words) >= 2 and words[0] in ("import", "from"):
                top = words[1].split(".")[0]
                assert top not in forbidden, f"{path} imports {words[1]}"


def test_requirements_never_touch_torch():
    for name in ("requirements.txt",):
        for line in (ROOT / name).read_text().splitlines():
            package = line.split("#")[0].strip().lower()
            assert not package.startswith(("torch", "torchvision", "torchaudio")), line


def test_library_imports_without_side_effects():
    code = "import facedit, sys; assert 'comfy' not in sys.modules and 'folder_paths' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)

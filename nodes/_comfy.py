"""Every ComfyUI import of the pack lives here, each with a fallback for running without ComfyUI.

Inside ComfyUI the real ``comfy_api.latest.io``, ``folder_paths``, progress bar, interruption and model
management are used. Outside it (tests, CI, scripts) a small stand-in schema module and a plain models
folder (``FACEDIT_MODELS_DIR``, default ``<pack>/models``) take their place.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger("FacEDiT")

MIN_COMFYUI_VERSION = "0.3.48"
"""The first ComfyUI release with ``comfy_api.latest`` (the V3 node schema every node of the pack uses)."""

try:
    from comfy_api.latest import io, ui  # type: ignore[import-not-found]

    IN_COMFYUI = True
except ImportError as _missing_v3:
    from . import _standalone_io as io  # noqa: F401 (re-exported)

    ui = None
    IN_COMFYUI = False
    try:
        import comfy  # type: ignore[import-not-found]  # noqa: F401

        log.warning(
            "FacEDiT: this ComfyUI has no comfy_api.latest (%s); the nodes need ComfyUI %s or newer and run on a "
            "test stand-in of the V3 schema that the server does not know. Update ComfyUI.",
            _missing_v3,
            MIN_COMFYUI_VERSION,
        )
    except ImportError:
        log.info("FacEDiT: comfy_api.latest not found, not inside ComfyUI; using the stand-in schema (tests, scripts)")

try:
    import folder_paths  # type: ignore[import-not-found]
except ImportError:
    folder_paths = None

try:
    import comfy.model_management as model_management  # type: ignore[import-not-found]
    import comfy.utils as comfy_utils  # type: ignore[import-not-found]
except ImportError:
    model_management = None
    comfy_utils = None

WEIGHT_EXTENSIONS = {".safetensors", ".pth", ".pt", ".bin", ".json", ".onnx"}
# Model folders under ComfyUI/models/ that the pack registers, by kind.
MODEL_FOLDERS = {
    "liveportrait": "liveportrait",
    "wavlm": "wavlm",
    "facedit": "facedit",
    "f5tts": "f5tts",
    "vocos": "vocos",
    "whisper": "whisper",
    "ctc": "ctc",
    "joyvasa": "joyvasa",
}


def standalone_models_dir() -> Path:
    return Path(os.environ.get("FACEDIT_MODELS_DIR", Path(__file__).resolve().parents[1] / "models"))


def output_directory() -> Path:
    """ComfyUI's output folder; outside ComfyUI ``$FACEDIT_OUTPUT_DIR`` or ./output."""
    if folder_paths is None:
        return Path(os.environ.get("FACEDIT_OUTPUT_DIR", "output"))
    return Path(folder_paths.get_output_directory())


def register_model_folders() -> None:
    """Make ``models/liveportrait``, ``models/wavlm`` and ``models/facedit`` known to ComfyUI.

    ``extra_model_paths.yaml`` entries for the same names are kept: we only add the default folder.
    """
    if folder_paths is None:
        return
    for kind, sub in MODEL_FOLDERS.items():
        default = os.path.join(folder_paths.models_dir, sub)
        known = folder_paths.folder_names_and_paths.get(kind)
        if known is None or default not in known[0]:
            folder_paths.add_model_folder_path(kind, default)
        folder_paths.folder_names_and_paths[kind][1].update(WEIGHT_EXTENSIONS)


def model_dirs(kind: str) -> list[Path]:
    if kind not in MODEL_FOLDERS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {sorted(MODEL_FOLDERS)}")
    if folder_paths is None:
        return [standalone_models_dir() / MODEL_FOLDERS[kind]]
    register_model_folders()
    return [Path(p) for p in folder_paths.get_folder_paths(kind)]


def list_model_files(kind: str, suffixes: tuple[str, ...] = (".safetensors",)) -> list[str]:
    """Files of a model kind, relative to their model folder (what a combo box shows)."""
    names: set[str] = set()
    for root in model_dirs(kind):
        if root.is_dir():
            names.update(p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix in suffixes)
    return sorted(names)


def list_model_folders(kind: str, marker: Callable[[Path], bool]) -> list[str]:
    """Folders (the model folder itself is ``"."``) that hold a model, judged by ``marker``."""
    names: set[str] = set()
    for root in model_dirs(kind):
        if not root.is_dir():
            continue
        if marker(root):
            names.add(".")
        names.update(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir() and marker(p))
    return sorted(names)


def resolve_model_path(kind: str, name: str, expected: str = "") -> Path:
    """The absolute path of a combo choice; a clear error if it is in none of the kind's folders.

    expected: what the folder should hold and how to get it, appended to that error."""
    searched = model_dirs(kind)
    for root in searched:
        candidate = (root / name) if name != "." else root
        if candidate.exists():
            return candidate
    folders = ", ".join(str(p) for p in searched)
    raise FileNotFoundError(f"{kind} model {name!r} was not found in {folders}" + (f". {expected}" if expected else ""))


_unload_hooks: list[Callable[[], None]] = []


def on_unload_models(release: Callable[[], None]) -> None:
    """Call ``release`` whenever ComfyUI unloads all its models ("Unload models", ``POST /free``).

    The pack's models are not ComfyUI ModelPatchers, so ComfyUI's ``unload_all_models`` is wrapped once; the
    wrapper runs ComfyUI's own unloading first, then every registered release. Nothing happens outside ComfyUI.
    """
    if model_management is None:
        return
    if release not in _unload_hooks:
        _unload_hooks.append(release)
    comfy_unload = model_management.unload_all_models
    if getattr(comfy_unload, "facedit_hook", False):
        return

    def unload_all_models(*args: Any, **kwargs: Any) -> Any:
        result = comfy_unload(*args, **kwargs)
        for hook in list(_unload_hooks):
            try:
                hook()
            except Exception:  # ComfyUI calls this from its prompt worker: an error here would stop the queue
                log.exception("FacEDiT: releasing the pack's models failed")
        return result

    unload_all_models.facedit_hook = True  # type: ignore[attr-defined]
    model_management.unload_all_models = unload_all_models


def torch_device(choice: str = "auto") -> torch.device:
    if choice != "auto":
        return torch.device(choice)
    if model_management is not None:
        return model_management.get_torch_device()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def offload_device() -> torch.device:
    if model_management is not None:
        return model_management.unet_offload_device()
    return torch.device("cpu")


def check_interrupted() -> None:
    """Raise ComfyUI's interruption exception if the user pressed Cancel."""
    if model_management is not None:
        model_management.throw_exception_if_processing_interrupted()


def progress(total: int) -> Callable[[int, int], None]:
    """A ``(done, total)`` callback that drives ComfyUI's progress bar and honours Cancel."""
    bar = comfy_utils.ProgressBar(max(total, 1)) if comfy_utils is not None else None

    def update(done: int, new_total: int | None = None) -> None:
        check_interrupted()
        if bar is not None:
            bar.update_absolute(done, new_total if new_total else None)

    return update


def preview_image(image: torch.Tensor, node_cls: Any) -> Any:
    """UI payload that shows ``image`` [B,H,W,3] on the node; nothing outside ComfyUI."""
    if ui is None:
        return None
    return ui.PreviewImage(image, cls=node_cls)


def saved_video_ui(path: Path, text: str | None = None) -> Any:
    """UI payload that shows a video written under ComfyUI's output folder (as core SaveVideo does, so the
    frontend plays it and /history lists the file), with ``text`` (a report) under ``text``; None outside ComfyUI."""
    if ui is None:
        return None
    folder = output_directory().resolve()
    subfolder = Path(path).resolve().parent.relative_to(folder).as_posix()
    preview = ui.PreviewVideo(
        [ui.SavedResult(Path(path).name, "" if subfolder == "." else subfolder, io.FolderType.output)]
    )
    return preview if text is None else {**preview.as_dict(), "text": [text]}


def ui_images(image: torch.Tensor, node_cls: Any) -> list:
    """The ``images`` entries of a preview of ``image`` [B,H,W,3] (saved to ComfyUI's temp folder); [] outside it."""
    preview = preview_image(image, node_cls)
    if preview is None:
        return []
    return list(preview.as_dict()["images"])


def stage_progress(total: int = 1) -> Callable[[str, int, int], None]:
    """A ``(stage, done, total)`` callback (the library's multi-stage form) on one ComfyUI progress bar."""
    update = progress(total)
    return lambda stage, done, new_total: update(done, new_total)


def module_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))


@contextmanager
def on_device(module: torch.nn.Module, device: torch.device, offload: torch.device) -> Iterator[None]:
    """Run ``module`` on ``device`` for the block, then put it back on ``offload``.

    Inside ComfyUI the memory is first made free through its model management, so that our model and the
    user's other models do not fight over the GPU.
    """
    device, offload = torch.device(device), torch.device(offload)
    if device.type != "cpu" and model_management is not None:
        model_management.free_memory(module_bytes(module) * 1.3, device)
    module.to(device)
    try:
        yield
    finally:
        if offload != device:
            module.to(offload)
            if model_management is not None:
                model_management.soft_empty_cache()

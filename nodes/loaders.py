"""Loader nodes: LivePortrait, WavLM and FacEDiT from ComfyUI's model folders.

Loaded models are kept at module level (ComfyUI hands ``execute`` a locked clone of the class, so nothing may
be stored on it), one per kind, keyed by path, modification time, dtype and device: running a graph again
does not read the files again. A model rests on ComfyUI's offload device and moves to its device for the
nodes that run it (see ``_comfy.on_device``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import typing
from pathlib import Path
from typing import Any

import torch

from ..facedit.checkpoint import load_facedit
from ..facedit.liveportrait import (
    LivePortraitConfig,
    find_weight_files,
    load_liveportrait,
    resolve_dtype,
    resolve_precision,
)
from ..facedit.liveportrait.networks import NETWORK_NAMES
from ..facedit.liveportrait.weights import missing_files_message
from ..facedit.priors import find_joyvasa, load_joyvasa
from ..facedit.speech import DEFAULT_REPO, load_wavlm
from . import _comfy
from ._comfy import io
from .types import (
    CATEGORY,
    DEVICES,
    LIVEPORTRAIT_PRECISIONS,
    PRECISIONS,
    LivePortraitType,
    LoadedModel,
    ModelType,
    WavLMType,
)

LIVEPORTRAIT_CONFIG_FILE = "liveportrait_config.json"
"""Optional file beside LivePortrait weights of other widths than the official ones: LivePortraitConfig as JSON
({"appearance": {...}, "motion": {...}, ...}; missing fields keep the official values)."""
WAVLM_DOWNLOAD_NAME = "wavlm-base-plus"
_CACHE: dict[str, tuple[tuple, LoadedModel]] = {}
log = logging.getLogger("FacEDiT")
_RELEASES = [0]  # how often the models were released; part of every loader's fingerprint


def release_models() -> None:
    """Give the memory of every loaded model back (ComfyUI's "Unload models" calls this).

    ComfyUI's output cache may still hold the LoadedModel, so the tensors themselves go to the meta device;
    the changed fingerprint makes every loader run again on the next prompt and read the files anew.
    """
    for _, loaded in _CACHE.values():
        loaded.module().to("meta")
    if _CACHE:
        _comfy.log.info("FacEDiT: released %s", ", ".join(sorted(_CACHE)))
    _CACHE.clear()
    _RELEASES[0] += 1


def loader_fingerprint(**inputs: Any) -> tuple:
    """Same inputs give the same fingerprint until the models are released; then the loader runs again."""
    return (_RELEASES[0], tuple(sorted((k, repr(v)) for k, v in inputs.items())))


def run_device(choice: str) -> torch.device:
    """The device a loader's ``device`` choice names, with a clear error where this torch lacks it."""
    if choice not in DEVICES:
        raise ValueError(f"device: expected one of {DEVICES}, got {choice!r}")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' was chosen but this torch build sees no CUDA GPU; choose auto or cpu")
    if choice == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError("device: 'mps' was chosen but Apple's MPS is not available here; choose auto or cpu")
    return _comfy.torch_device(choice)


def _resting_device(device: torch.device) -> torch.device:
    offload = _comfy.offload_device()
    return device if device.type == "cpu" else offload


def _signature(paths: list[Path]) -> tuple:
    return tuple(sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths if p.is_file()))


def _cached(kind: str, key: tuple, load: typing.Callable[[], LoadedModel]) -> LoadedModel:
    hit = _CACHE.get(kind)
    if hit is not None and hit[0] == key:
        _comfy.log.debug("%s: reusing the loaded model %s", kind, key[0])
        return hit[1]
    _CACHE.pop(kind, None)  # release the previous model of this kind before loading the next one
    _comfy.on_unload_models(release_models)
    loaded = load()
    _CACHE[kind] = (key, loaded)
    return loaded


def _config_from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known keys are {sorted(names)}")
    values = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _config_from_dict(hint, value, f"{where}.{name}")
        else:
            values[name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


def liveportrait_config(folder: Path) -> LivePortraitConfig:
    """The official network sizes, unless the folder holds a ``liveportrait_config.json``."""
    sidecar = folder / LIVEPORTRAIT_CONFIG_FILE
    if not sidecar.is_file():
        return LivePortraitConfig()
    try:
        data = json.loads(sidecar.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{sidecar}: not valid JSON ({err})") from err
    return _config_from_dict(LivePortraitConfig, data, str(sidecar))


def _warping_file(path: Path) -> Path | None:
    return find_weight_files(path).get("warping_module")


def liveportrait_choices() -> list[str]:
    """The folder choices: '.' (models/liveportrait itself, also where a download goes) and every sub-folder that
    loads a different set of weights (the official tree's inner folders load the same files as their parent)."""
    found = _comfy.list_model_folders("liveportrait", lambda p: _warping_file(p) is not None)
    seen: set[Path] = set()
    choices = ["."]
    for name in sorted(found, key=lambda n: (n != ".", n.count("/"), n)):
        warping = _warping_file(_comfy.resolve_model_path("liveportrait", name)).resolve()
        if warping not in seen:
            seen.add(warping)
            if name != ".":
                choices.append(name)
    return choices


class FacEDiTLivePortraitLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FacEDiTLivePortraitLoader",
            display_name="FacEDiT LivePortrait Loader",
            category=f"{CATEGORY}/loaders",
            description=(
                "Loads LivePortrait's human model (appearance and motion extractors, warping module, SPADE "
                "decoder, stitching) from ComfyUI/models/liveportrait: either the safetensors set "
                "(Kijai/LivePortrait_safetensors) or the official .pth tree (KwaiVGI/LivePortrait). Nothing is "
                "downloaded unless 'download' says so."
            ),
            inputs=[
                io.Combo.Input(
                    "folder",
                    options=liveportrait_choices(),
                    default=".",
                    tooltip="Folder under models/liveportrait holding the weights; '.' is models/liveportrait "
                    "itself (the files may also sit in its base_models/ or liveportrait/base_models/ sub-folders).",
                ),
                io.Combo.Input(
                    "precision",
                    options=LIVEPORTRAIT_PRECISIONS,
                    default="fp32",
                    tooltip="fp32: exact. fast: face features and motion in fp32, warp + decode in bf16 on a CPU "
                    "with native bf16 (AVX-512 BF16 / AMX; about 3x faster there, a little less exact) or fp16 "
                    "autocast on a GPU; elsewhere it stays fp32. fp16 / bf16: half the memory (the motion extractor "
                    "stays fp32).",
                ),
                io.Combo.Input(
                    "device",
                    options=DEVICES,
                    default="auto",
                    tooltip="Where the networks run: auto follows ComfyUI (its GPU, or the CPU with --cpu).",
                ),
                io.Combo.Input(
                    "download",
                    options=["none", "safetensors", "official"],
                    default="none",
                    tooltip="Fetch missing files from Hugging Face into the chosen folder (needs internet): "
                    "'safetensors' = Kijai/LivePortrait_safetensors, 'official' = KwaiVGI/LivePortrait. "
                    "'none' never touches the network.",
                ),
            ],
            outputs=[LivePortraitType.Output(display_name="liveportrait", tooltip="The LivePortrait networks.")],
        )

    @classmethod
    def fingerprint_inputs(cls, **inputs: Any) -> tuple:
        return loader_fingerprint(**inputs)

    @classmethod
    def execute(cls, folder: str, precision: str, device: str, download: str = "none") -> io.NodeOutput:
        if download not in ("none", "safetensors", "official"):
            raise ValueError(f"download: expected none, safetensors or official, got {download!r}")
        root = _comfy.model_dirs("liveportrait")[0]
        expected = missing_files_message(root / folder, list(NETWORK_NAMES))
        path = _comfy.resolve_model_path("liveportrait", folder, expected) if download == "none" else root / folder
        precision = resolve_precision(precision)
        run_on = run_device(device)
        files = list(find_weight_files(path).values()) if path.is_dir() else []
        key = (str(path), _signature([*files, path / LIVEPORTRAIT_CONFIG_FILE]), precision, str(run_on), download)

        def load() -> LoadedModel:
            rest = _resting_device(run_on)
            lp = load_liveportrait(
                path, device=rest, dtype=precision, download=None if download == "none" else download,
                config=liveportrait_config(path), progress=_comfy.progress(5), compute_device=run_on,
            )  # fmt: skip
            if precision == "fast":
                log.info("LivePortrait fast mode on %s: %s", run_on, lp.fast_plan.reason)
            return LoadedModel("liveportrait", lp, run_on, rest, lp.dtype, str(path))

        return io.NodeOutput(_cached("liveportrait", key, load))


def _is_wavlm_folder(path: Path) -> bool:
    return (path / "config.json").is_file()


def wavlm_choices() -> list[str]:
    """Hugging Face style folders and single .safetensors files under models/wavlm (and the download target)."""
    folders = [f for f in _comfy.list_model_folders("wavlm", _is_wavlm_folder) if f != "."]
    files = [
        f
        for f in _comfy.list_model_files("wavlm", (".safetensors",))
        if not any(f.startswith(d + "/") for d in folders)
    ]
    return sorted(set(folders + files + [WAVLM_DOWNLOAD_NAME]))


class FacEDiTWavLMLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FacEDiTWavLMLoader",
            display_name="FacEDiT WavLM Loader",
            category=f"{CATEGORY}/loaders",
            description=(
                "Loads the WavLM speech encoder whose features condition FacEDiT, from ComfyUI/models/wavlm: a "
                "Hugging Face folder (config.json + model.safetensors or pytorch_model.bin, e.g. "
                "wavlm-base-plus/) or one .safetensors file. The FacEDiT model must have been trained on the "
                "same WavLM."
            ),
            inputs=[
                io.Combo.Input(
                    "model",
                    options=wavlm_choices(),
                    default=WAVLM_DOWNLOAD_NAME,
                    tooltip="A folder or .safetensors file under models/wavlm. 'wavlm-base-plus' is where the "
                    "download goes.",
                ),
                io.Combo.Input(
                    "precision",
                    options=PRECISIONS,
                    default="fp32",
                    tooltip="Weight precision; fp32 is exact, fp16/bf16 save memory on a GPU.",
                ),
                io.Combo.Input(
                    "device",
                    options=DEVICES,
                    default="auto",
                    tooltip="Where WavLM runs: auto follows ComfyUI.",
                ),
                io.Boolean.Input(
                    "download",
                    default=False,
                    tooltip=f"If the chosen folder is missing, download {DEFAULT_REPO} from Hugging Face into it "
                    "(needs internet). Off: never touches the network.",
                ),
            ],
            outputs=[WavLMType.Output(display_name="wavlm", tooltip="The speech encoder.")],
        )

    @classmethod
    def fingerprint_inputs(cls, **inputs: Any) -> tuple:
        return loader_fingerprint(**inputs)

    @classmethod
    def execute(cls, model: str, precision: str, device: str, download: bool = False) -> io.NodeOutput:
        if download and not model.endswith(".safetensors"):
            path = _comfy.model_dirs("wavlm")[0] / model
        else:
            path = _comfy.resolve_model_path(
                "wavlm",
                model,
                "Expected a Hugging Face folder (config.json + model.safetensors or pytorch_model.bin) "
                f"or one .safetensors file under models/wavlm; switch 'download' on to fetch {DEFAULT_REPO} into "
                f"models/wavlm/{WAVLM_DOWNLOAD_NAME} (needs internet), or download it there yourself.",
            )
        dtype = resolve_dtype(precision)
        run_on = run_device(device)
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        key = (str(path), _signature(files), dtype, str(run_on))

        def load() -> LoadedModel:
            rest = _resting_device(run_on)
            wavlm = load_wavlm(path, device=rest, dtype=dtype, download=download)
            return LoadedModel("wavlm", wavlm, run_on, rest, dtype, str(path))

        return io.NodeOutput(_cached("wavlm", key, load))


JOYVASA_PREFIX = "JoyVASA prior: "
"""Model Loader choices that name a folder under models/joyvasa ('.' is models/joyvasa itself)."""


def motion_model_choices() -> list[str]:
    """FacEDiT checkpoints under models/facedit, then JoyVASA folders under models/joyvasa (outermost first)."""
    found = _comfy.list_model_folders("joyvasa", lambda p: find_joyvasa(p) is not None)
    seen: set[Path] = set()
    priors = []
    for name in sorted(found, key=lambda n: (n != ".", n.count("/"), n)):
        generator = find_joyvasa(_comfy.resolve_model_path("joyvasa", name)).generator.resolve()
        if generator not in seen:
            seen.add(generator)
            priors.append(JOYVASA_PREFIX + name)
    return _comfy.list_model_files("facedit", (".safetensors",)) + priors


class FacEDiTModelLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FacEDiTModelLoader",
            display_name="FacEDiT Model Loader",
            category=f"{CATEGORY}/loaders",
            description=(
                "Loads the motion infilling model: a FacEDiT checkpoint (.safetensors naming its own "
                "architecture, fps and motion statistics) from ComfyUI/models/facedit, or the public JoyVASA "
                "generator from ComfyUI/models/joyvasa, used as an infill prior until FacEDiT weights exist."
            ),
            inputs=[
                io.Combo.Input(
                    "checkpoint",
                    options=motion_model_choices(),
                    tooltip="A FacEDiT checkpoint under models/facedit (written by facedit's training script), or "
                    "'JoyVASA prior: <folder>' for JoyVASA's files under models/joyvasa (a generation model used "
                    "for infilling, not FacEDiT; takes the edited AUDIO at the Infill node).",
                ),
                io.Combo.Input(
                    "precision",
                    options=PRECISIONS,
                    default="fp32",
                    tooltip="Weight precision for sampling; the motion statistics stay fp32. bf16 samples ~2x "
                    "faster than fp32 on a CPU with native bf16 (AVX-512 BF16 / AMX) and far slower on one without.",
                ),
                io.Combo.Input(
                    "device",
                    options=DEVICES,
                    default="auto",
                    tooltip="Where the model samples: auto follows ComfyUI.",
                ),
            ],
            outputs=[ModelType.Output(display_name="model", tooltip="The FacEDiT model.")],
        )

    @classmethod
    def fingerprint_inputs(cls, **inputs: Any) -> tuple:
        return loader_fingerprint(**inputs)

    @classmethod
    def execute(cls, checkpoint: str, precision: str, device: str) -> io.NodeOutput:
        dtype = resolve_dtype(precision)
        run_on = run_device(device)
        if checkpoint.startswith(JOYVASA_PREFIX):
            return io.NodeOutput(_load_prior(checkpoint.removeprefix(JOYVASA_PREFIX), dtype, run_on))
        path = _comfy.resolve_model_path(
            "facedit",
            checkpoint,
            "Expected a .safetensors checkpoint written by facedit's training "
            "(python -m facedit.train) under models/facedit; there is no download for it.",
        )
        key = (str(path), _signature([path]), dtype, str(run_on))

        def load() -> LoadedModel:
            rest = _resting_device(run_on)
            return LoadedModel("facedit", load_facedit(path, device=rest, dtype=dtype), run_on, rest, dtype, str(path))

        return io.NodeOutput(_cached("facedit", key, load))


def _load_prior(folder: str, dtype: torch.dtype, run_on: torch.device) -> LoadedModel:
    path = _comfy.resolve_model_path("joyvasa", folder, "Expected JoyVASA's files under models/joyvasa: "
                                     "JoyVASA/motion_generator/*.pt, JoyVASA/motion_template/*.pkl and a HuBERT folder "
                                     "(chinese-hubert-base); there is no download switch for them, download them there "
                                     "yourself.")  # fmt: skip
    files = find_joyvasa(path)
    if files is None:
        raise ValueError(f"checkpoint: no JoyVASA files in {path} any more; press R (refresh) and choose again")
    key = (str(path), _signature([files.generator, files.template]), dtype, str(run_on))

    def load() -> LoadedModel:
        rest = _resting_device(run_on)
        return LoadedModel("joyvasa", load_joyvasa(path, device=rest, dtype=dtype), run_on, rest, dtype, str(path))

    return _cached("facedit", key, load)


NODES = [FacEDiTLivePortraitLoader, FacEDiTWavLMLoader, FacEDiTModelLoader]

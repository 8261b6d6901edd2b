"""Speech: WavLM features (``wavlm``), CTC forced alignment (``align``) and the models built on them.

The public names of the former ``facedit/speech.py`` stay importable from ``facedit.speech``.
Importing this package loads no ``transformers``: the models import it when they are loaded.
"""

from ..tts import edit_speech  # noqa: F401 - speech editing (native F5-TTS) lives in facedit/tts/
from .wavlm import (
    DEFAULT_REPO,
    PRESETS,
    LayerChoice,
    Progress,
    SpeechFeatures,
    WavLM,
    download_wavlm,
    find_folder_weights,
    frame_count,
    hub_download,
    infer_config,
    load_wavlm,
    read_weights,
    receptive_field,
    save_wavlm_safetensors,
)

__all__ = [
    "DEFAULT_REPO",
    "PRESETS",
    "LayerChoice",
    "Progress",
    "SpeechFeatures",
    "WavLM",
    "download_wavlm",
    "find_folder_weights",
    "frame_count",
    "hub_download",
    "infer_config",
    "load_wavlm",
    "read_weights",
    "receptive_field",
    "save_wavlm_safetensors",
]

"""Speech editing with a native F5-TTS (flow-matching mel infill) and the Vocos 24 kHz mel vocoder.

Our own implementation of the published architectures, loading the public files strictly
(``F5TTS_v1_Base/model_1250000.safetensors`` + ``vocab.txt``; ``charactr/vocos-mel-24khz``), so that neither the
``f5-tts`` package nor torchaudio is needed.
"""

from .edit import EditedSpeech, SpeechEditSpan, edit_speech
from .f5_dit import F5Config, F5DiT
from .mel import LogMel, MelConfig, mel_filterbank
from .sampler import infill_mel
from .vocab import Vocab, load_vocab
from .vocos import Vocos, VocosConfig
from .weights import F5TTS, WeightError, infer_f5_config, load_f5tts, load_vocos, vocos_config

__all__ = [
    "F5TTS",
    "EditedSpeech",
    "F5Config",
    "F5DiT",
    "LogMel",
    "MelConfig",
    "SpeechEditSpan",
    "Vocab",
    "Vocos",
    "VocosConfig",
    "WeightError",
    "edit_speech",
    "infer_f5_config",
    "infill_mel",
    "load_f5tts",
    "load_vocab",
    "load_vocos",
    "mel_filterbank",
    "vocos_config",
]

"""Real speech with known word times, offline: libespeak-ng through ctypes (Debian package espeak-ng).

espeak-ng reports a WORD event with the sample at which each word's synthesis starts; a word's audible start
and end are refined from the waveform's energy between consecutive events.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

import numpy as np

from facedit.timestamps import Word

_LOCK = threading.Lock()
_STATE: dict = {}


class _Id(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):  # espeak_EVENT from speak_lib.h
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _Id),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_AUDIO_OUTPUT_SYNCHRONOUS, _POS_CHARACTER, _CHARS_UTF8, _EVENT_WORD = 2, 1, 1, 1


def _library():
    if "lib" not in _STATE:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            _STATE["lib"] = None
            return None
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0)
        if rate <= 0:
            _STATE["lib"] = None
            return None
        _STATE.update(lib=lib, rate=rate)
    return _STATE["lib"]


def espeak_available() -> bool:
    with _LOCK:
        return _library() is not None


def speak(text: str, voice: str = "en", words_per_minute: int = 160) -> tuple[np.ndarray, int, list[Word]]:
    """(float32 samples, sample rate, words with times) of ``text`` spoken by espeak-ng."""
    with _LOCK:
        lib = _library()
        if lib is None:
            raise RuntimeError("libespeak-ng is not installed (Debian: apt-get install espeak-ng)")
        chunks: list[np.ndarray] = []
        events: list[tuple[int, int, int]] = []

        def collect(wav, n, ev):
            if n > 0:
                chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            i = 0
            while ev[i].type != 0:
                if ev[i].type == _EVENT_WORD:
                    events.append((ev[i].text_position, ev[i].length, ev[i].sample))
                i += 1
            return 0

        callback = _CALLBACK(collect)
        lib.espeak_SetSynthCallback(callback)
        lib.espeak_SetVoiceByName(voice.encode())
        lib.espeak_SetParameter(1, words_per_minute, 0)  # espeakRATE
        data = text.encode("utf-8")
        buf = ctypes.create_string_buffer(data)
        if lib.espeak_Synth(buf, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None) != 0:
            raise RuntimeError(f"espeak-ng could not speak {text!r}")
        lib.espeak_Synchronize()
        rate = _STATE["rate"]
    wave = np.concatenate(chunks).astype(np.float32) / 32768.0
    hop = rate // 100  # 10 ms energy frames
    rms = np.sqrt(np.convolve(wave**2, np.ones(hop) / hop, mode="same"))
    loud = rms > 0.08 * rms.max()
    words = []
    for k, (pos, length, sample) in enumerate(events):
        stop = events[k + 1][2] if k + 1 < len(events) else len(wave)
        audible = np.flatnonzero(loud[sample:stop])
        start, end = (sample + audible[0], sample + audible[-1] + 1) if len(audible) else (sample, stop)
        word = data[pos - 1 : pos - 1 + length].decode("utf-8", "replace")
        words.append(Word(word, round(float(start) / rate, 4), round(float(end) / rate, 4)))
    return wave, rate, words

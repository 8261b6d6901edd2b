"""JoyVASA (jdh-algo/JoyVASA) as an infill prior: strict loading, HuBERT audio, motion conversion, sampler."""

from __future__ import annotations

from .files import read_generator, read_template
from .model import JoyVASA, JoyVASAFiles, SpeechAudio, find_joyvasa, load_joyvasa
from .motion import MotionTemplate, from_joyvasa, to_joyvasa
from .network import JoyVASAConfig, JoyVASANet
from .sampler import denoise_window, diffusion_steps, infill, window_starts

__all__ = [
    "JoyVASA", "JoyVASAConfig", "JoyVASAFiles", "JoyVASANet", "MotionTemplate", "SpeechAudio", "denoise_window",
    "diffusion_steps", "find_joyvasa", "from_joyvasa", "infill", "load_joyvasa", "read_generator", "read_template",
    "to_joyvasa", "window_starts",
]  # fmt: skip

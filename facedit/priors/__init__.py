"""Public motion models used as priors for the infill stage until FacEDiT weights exist.

A prior is a generation model (speech -> LivePortrait motion) driven by replacement guidance: the known frames are
imposed at every denoising step, so only the masked frames are generated. It is not FacEDiT; a FacEDiT checkpoint
takes its place when one is present. Each prior offers the same ``infill`` call as ``facedit.flow.infill``.
"""

from __future__ import annotations

from .joyvasa import JoyVASA, SpeechAudio, find_joyvasa, load_joyvasa

MotionPrior = JoyVASA


def is_prior(model: object) -> bool:
    """True for a public prior (it carries its own speech encoder and takes raw audio), False for FacEDiT."""
    return isinstance(model, JoyVASA)


__all__ = ["JoyVASA", "MotionPrior", "SpeechAudio", "find_joyvasa", "is_prior", "load_joyvasa"]

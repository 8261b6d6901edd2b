"""FacEDiT Bench metrics. See each module's docstring for the exact formulas."""

from .continuity import (
    Boundary,
    ContinuityScore,
    DISFlow,
    RAFTFlow,
    edit_boundaries,
    flow_magnitude,
    make_flow,
    motion_continuity,
    photometric_continuity,
)

__all__ = [
    "Boundary",
    "ContinuityScore",
    "DISFlow",
    "RAFTFlow",
    "edit_boundaries",
    "flow_magnitude",
    "make_flow",
    "motion_continuity",
    "photometric_continuity",
]

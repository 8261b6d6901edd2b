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
from .faces import ARCFACE_TEMPLATE_112, CentreFace, Face, FaceDetector, YuNetDetector, align_face
from .identity import ArcFaceONNX, IdentityScore, face_embeddings, identity_score, identity_similarity, mean_identity

__all__ = [
    "ARCFACE_TEMPLATE_112",
    "ArcFaceONNX",
    "CentreFace",
    "Face",
    "FaceDetector",
    "IdentityScore",
    "YuNetDetector",
    "align_face",
    "face_embeddings",
    "identity_score",
    "identity_similarity",
    "mean_identity",
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

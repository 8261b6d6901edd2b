"""Identity preservation (IDSIM, higher is better).

Formula (the paper: "cosine similarity between averaged identity features of original and generated
videos using a face recognition model"): every face crop is embedded by ArcFace and the embedding is
L2-normalised; the normalised embeddings of the original video's frames and of the generated frames are
averaged separately; IDSIM is the cosine similarity of the two means. Frames without a detected face are
left out and counted (:class:`IdentityScore`).

The ArcFace model is a user-supplied ONNX file run with onnxruntime (an optional dependency), e.g.
insightface's ``w600k_r50.onnx`` (buffalo_l) or ``glintr100.onnx``: input ``[N, 3, 112, 112]`` RGB,
``(pixel - 127.5) / 127.5``; output ``[N, D]``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from .faces import FaceDetector, align_face, to_uint8

EmbedFn = Callable[[np.ndarray], np.ndarray]
"""Aligned RGB uint8 faces [N, S, S, 3] -> embeddings [N, D]."""


@dataclass(frozen=True)
class IdentityScore:
    value: float
    original_faces: int
    generated_faces: int


class ArcFaceONNX:
    """ArcFace face-recognition embeddings from a local ONNX file through onnxruntime."""

    def __init__(self, model_path: str, providers: list[str] | None = None):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ImportError(
                "IDSIM needs onnxruntime to run the ArcFace model: pip install onnxruntime (or onnxruntime-gpu)"
            ) from exc
        if not os.path.isfile(model_path):
            raise FileNotFoundError(
                f"ArcFace ONNX model not found: {model_path} (e.g. insightface buffalo_l's w600k_r50.onnx)"
            )
        self.session = ort.InferenceSession(model_path, providers=providers or ["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        shape = inp.shape
        if len(shape) != 4 or shape[1] != 3:
            raise ValueError(f"{model_path}: expected an input [N, 3, S, S], got {shape}")
        self.input_name = inp.name
        self.input_size = int(shape[2]) if isinstance(shape[2], int) else 112

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        faces = np.asarray(faces)
        if faces.ndim != 4 or faces.shape[1:] != (self.input_size, self.input_size, 3):
            raise ValueError(f"faces: expected [N, {self.input_size}, {self.input_size}, 3], got {faces.shape}")
        blob = (faces.astype(np.float32) - 127.5) / 127.5
        blob = np.ascontiguousarray(blob.transpose(0, 3, 1, 2))
        return np.asarray(self.session.run(None, {self.input_name: blob})[0], np.float32)


def mean_identity(embeddings: np.ndarray) -> np.ndarray:
    """Mean of the L2-normalised embeddings [N, D] -> [D]."""
    emb = np.asarray(embeddings, np.float64)
    if emb.ndim != 2 or emb.shape[0] == 0:
        raise ValueError(f"embeddings: expected [N, D] with N >= 1, got shape {emb.shape}")
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("embeddings: contains an all-zero embedding")
    return (emb / norms).mean(0)


def identity_similarity(original_embeddings: np.ndarray, generated_embeddings: np.ndarray) -> float:
    """IDSIM: cosine similarity of the averaged L2-normalised embeddings of the two sets."""
    a, b = mean_identity(original_embeddings), mean_identity(generated_embeddings)
    if a.shape != b.shape:
        raise ValueError(f"embedding sizes differ: {a.shape[0]} vs {b.shape[0]}")
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def face_embeddings(
    frames: Iterable[np.ndarray], detector: FaceDetector, embed: EmbedFn, size: int = 112, batch_size: int = 32
) -> tuple[np.ndarray, int]:
    """Embeddings [M, D] of the faces found in ``frames`` (RGB float 0..1 or uint8) and the frame count."""
    crops: list[np.ndarray] = []
    out: list[np.ndarray] = []
    total = 0
    for frame in frames:
        total += 1
        rgb = to_uint8(frame)
        face = detector(rgb)
        if face is None:
            continue
        crops.append(align_face(rgb, face, size))
        if len(crops) == batch_size:
            out.append(embed(np.stack(crops)))
            crops = []
    if crops:
        out.append(embed(np.stack(crops)))
    if not out:
        return np.zeros((0, 0), np.float32), total
    return np.concatenate(out), total


def identity_score(
    original_frames: Iterable[np.ndarray],
    generated_frames: Iterable[np.ndarray],
    detector: FaceDetector,
    embed: EmbedFn,
    size: int = 112,
) -> IdentityScore:
    """IDSIM between two frame sets; NaN when either has no detected face."""
    ea, _ = face_embeddings(original_frames, detector, embed, size)
    eb, _ = face_embeddings(generated_frames, detector, embed, size)
    if len(ea) == 0 or len(eb) == 0:
        return IdentityScore(math.nan, len(ea), len(eb))
    return IdentityScore(identity_similarity(ea, eb), len(ea), len(eb))

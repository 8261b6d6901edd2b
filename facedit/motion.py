"""The 75-d FacEDiT motion vector per frame (the paper's f).

Layout, row-major: LivePortrait expression deformation (21 x 3 = 63), rotation matrix R (3 x 3 = 9, in
LivePortrait's convention, see ``facedit.liveportrait.keypoints``), translation t (3). Scale and canonical
keypoints stay with the source frame: driving keypoints are ``scale * (kp_canonical @ R + exp) + [tx, ty, 0]``.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

NUM_KP = 21
EXP_DIM = 3 * NUM_KP
MOTION_DIM = EXP_DIM + 9 + 3  # 75

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def _cat(parts: list, like):
    if isinstance(like, torch.Tensor):
        return torch.cat(parts, dim=-1)
    return np.concatenate(parts, axis=-1)


def pack_motion(exp: Array, rot: Array, t: Array) -> Array:
    """exp (..., 21, 3), rot (..., 3, 3), t (..., 3) -> (..., 75). Works on numpy arrays and torch tensors."""
    lead = tuple(exp.shape[:-2])
    if tuple(exp.shape[-2:]) != (NUM_KP, 3):
        raise ValueError(f"exp must end in ({NUM_KP}, 3), got shape {tuple(exp.shape)}")
    if tuple(rot.shape) != (*lead, 3, 3):
        raise ValueError(f"rot must have shape {(*lead, 3, 3)}, got {tuple(rot.shape)}")
    if tuple(t.shape) != (*lead, 3):
        raise ValueError(f"t must have shape {(*lead, 3)}, got {tuple(t.shape)}")
    return _cat([exp.reshape(*lead, EXP_DIM), rot.reshape(*lead, 9), t.reshape(*lead, 3)], exp)


def unpack_motion(motion: Array) -> tuple[Array, Array, Array]:
    """(..., 75) -> exp (..., 21, 3), rot (..., 3, 3), t (..., 3)."""
    if motion.shape[-1] != MOTION_DIM:
        raise ValueError(f"motion must end in {MOTION_DIM}, got shape {tuple(motion.shape)}")
    lead = tuple(motion.shape[:-1])
    exp = motion[..., :EXP_DIM].reshape(*lead, NUM_KP, 3)
    rot = motion[..., EXP_DIM : EXP_DIM + 9].reshape(*lead, 3, 3)
    t = motion[..., EXP_DIM + 9 :].reshape(*lead, 3)
    return exp, rot, t


def motion_to_keypoints(motion: torch.Tensor, kp_canonical: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Driving keypoints from motion (T, 75) with each source frame's own kp_canonical (T, 21, 3) and scale (T,)."""
    from .liveportrait.keypoints import transform_keypoints

    if motion.ndim != 2 or kp_canonical.shape[0] != motion.shape[0] or scale.reshape(-1).shape[0] != motion.shape[0]:
        raise ValueError(
            f"motion (T, 75), kp_canonical (T, 21, 3) and scale (T,) must share T; got {tuple(motion.shape)}, "
            f"{tuple(kp_canonical.shape)}, {tuple(scale.shape)}"
        )
    exp, rot, t = unpack_motion(motion)
    return transform_keypoints(kp_canonical, rot, exp, t, scale.reshape(-1))


def project_to_rotation(rot: Array) -> Array:
    """Nearest rotation matrix (orthonormal, det +1) to each (..., 3, 3); for predicted, slightly-off R."""
    is_numpy = isinstance(rot, np.ndarray)
    r = torch.as_tensor(rot, dtype=torch.float64)
    u, _, vh = torch.linalg.svd(r)
    d = torch.sign(torch.linalg.det(u @ vh))
    fix = torch.ones_like(r[..., 0])
    fix[..., 2] = d
    out = (u * fix[..., None, :]) @ vh
    return out.numpy().astype(rot.dtype) if is_numpy else out.to(rot.dtype)

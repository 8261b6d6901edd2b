"""LivePortrait keypoint maths: head pose bins, rotation matrices, keypoint transforms, coordinate grids.

Conventions (as in LivePortrait's ``src/utils/camera.py`` and ``src/modules/util.py``):
- pose angles in degrees: pitch about x, yaw about y, roll about z;
- ``R = (Rz(roll) @ Ry(yaw) @ Rx(pitch)).T`` and keypoints are row vectors, so a rotated keypoint is ``kp @ R``;
- driving keypoints ``x = scale * (kp_canonical @ R + exp) + [tx, ty, 0]`` (tz is never applied);
- grids are normalised to [-1, 1] with x to the right, y down, z inwards, last axis ordered (x, y, z).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def headpose_to_degrees(logits: torch.Tensor) -> torch.Tensor:
    """Expected angle of the 66 pose bins (3 degrees each, centred so that the range is [-97.5, 97.5]).

    logits: (B, 66) -> (B,) degrees, float32.
    """
    if logits.ndim != 2:
        raise ValueError(f"head pose logits must be (B, bins), got shape {tuple(logits.shape)}")
    probs = F.softmax(logits.float(), dim=1)
    idx = torch.arange(logits.shape[1], dtype=torch.float32, device=logits.device)
    return (probs * idx).sum(dim=1) * 3 - 97.5


def rotation_matrix(pitch: torch.Tensor, yaw: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Angles in degrees, each (B,) -> R (B, 3, 3) in LivePortrait's convention."""
    x, y, z = (torch.as_tensor(a).reshape(-1) * (math.pi / 180) for a in (pitch, yaw, roll))
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rot_x = torch.stack([one, zero, zero, zero, x.cos(), -x.sin(), zero, x.sin(), x.cos()], 1).view(-1, 3, 3)
    rot_y = torch.stack([y.cos(), zero, y.sin(), zero, one, zero, -y.sin(), zero, y.cos()], 1).view(-1, 3, 3)
    rot_z = torch.stack([z.cos(), -z.sin(), zero, z.sin(), z.cos(), zero, zero, zero, one], 1).view(-1, 3, 3)
    return (rot_z @ rot_y @ rot_x).transpose(1, 2)


def rotation_to_angles(rot: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rotation_matrix` for |yaw| < 90 degrees: R (B, 3, 3) -> (B, 3) [pitch, yaw, roll] degrees."""
    pitch = torch.atan2(rot[:, 1, 2], rot[:, 2, 2])
    yaw = torch.asin((-rot[:, 0, 2]).clamp(-1.0, 1.0))
    roll = torch.atan2(rot[:, 0, 1], rot[:, 0, 0])
    return torch.stack([pitch, yaw, roll], dim=1) * (180 / math.pi)


def transform_keypoints(
    kp_canonical: torch.Tensor, rot: torch.Tensor, exp: torch.Tensor, t: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """scale * (kp_canonical @ R + exp) + [tx, ty, 0].

    kp_canonical, exp: (B, K, 3); rot: (B, 3, 3); t: (B, 3); scale: (B,) or (B, 1) -> (B, K, 3).
    """
    b = kp_canonical.shape[0]
    out = (kp_canonical @ rot + exp) * scale.reshape(b, 1, 1)
    shift = torch.zeros_like(out[:, :1])
    shift[..., :2] = t.reshape(b, 1, 3)[..., :2]
    return out + shift


def make_coordinate_grid(spatial_size: tuple[int, int, int], dtype=torch.float32, device=None) -> torch.Tensor:
    """(D, H, W) -> (D, H, W, 3) of (x, y, z) in [-1, 1], corner-aligned (i -> 2 i / (n - 1) - 1)."""
    d, h, w = spatial_size

    def axis(n: int) -> torch.Tensor:
        return 2 * (torch.arange(n, dtype=dtype, device=device) / (n - 1)) - 1

    z, y, x = torch.meshgrid(axis(d), axis(h), axis(w), indexing="ij")
    return torch.stack([x, y, z], dim=-1)


def keypoint_gaussians(kp: torch.Tensor, spatial_size: tuple[int, int, int], variance: float = 0.01) -> torch.Tensor:
    """Gaussian blobs around keypoints: kp (B, K, 3) -> (B, K, D, H, W)."""
    grid = make_coordinate_grid(spatial_size, dtype=kp.dtype, device=kp.device)
    diff = grid[None, None] - kp[:, :, None, None, None, :]
    return torch.exp(-0.5 * diff.pow(2).sum(-1) / variance)

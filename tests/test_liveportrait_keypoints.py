"""Keypoint maths and the 75-d motion vector."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from facedit.liveportrait.keypoints import (
    headpose_to_degrees,
    keypoint_gaussians,
    make_coordinate_grid,
    rotation_matrix,
    rotation_to_angles,
    transform_keypoints,
)
from facedit.motion import MOTION_DIM, motion_to_keypoints, pack_motion, project_to_rotation, unpack_motion


def random_angles(n: int, seed: int = 0, max_yaw: float = 85.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = (torch.rand(n, 3, generator=g) * 2 - 1) * torch.tensor([170.0, max_yaw, 170.0])
    return a.double()


def test_motion_dim_is_75():
    assert MOTION_DIM == 75


def test_rotation_matrices_are_orthonormal_with_det_one():
    a = random_angles(64)
    r = rotation_matrix(a[:, 0], a[:, 1], a[:, 2])
    eye = torch.eye(3, dtype=r.dtype).expand_as(r)
    assert torch.allclose(r @ r.transpose(1, 2), eye, atol=1e-12)
    assert torch.allclose(torch.linalg.det(r), torch.ones(64, dtype=r.dtype), atol=1e-12)


def test_angle_matrix_angle_round_trip():
    a = random_angles(200, seed=1)
    back = rotation_to_angles(rotation_matrix(a[:, 0], a[:, 1], a[:, 2]))
    assert torch.allclose(back, a, atol=1e-9)


def test_rotation_convention_matches_livePortrait():
    """R = (Rz(roll) Ry(yaw) Rx(pitch))^T with keypoints as row vectors: kp @ R applies Rz Ry Rx to kp."""
    p, y, r = 10.0, -25.0, 40.0
    cx, sx = math.cos(math.radians(p)), math.sin(math.radians(p))
    cy, sy = math.cos(math.radians(y)), math.sin(math.radians(y))
    cz, sz = math.cos(math.radians(r)), math.sin(math.radians(r))
    rx = torch.tensor([[1, 0, 0], [0, cx, -sx], [0, sx, cx]], dtype=torch.float64)
    ry = torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]], dtype=torch.float64)
    rz = torch.tensor([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]], dtype=torch.float64)
    got = rotation_matrix(torch.tensor([p]), torch.tensor([y]), torch.tensor([r])).double()[0]
    assert torch.allclose(got, (rz @ ry @ rx).T, atol=1e-6)
    # a pure +90 degree yaw sends the x axis (as a row vector, kp @ R) to -z: the first column of Ry
    yaw = rotation_matrix(torch.zeros(1), torch.tensor([90.0]), torch.zeros(1))[0]
    assert torch.allclose(torch.tensor([1.0, 0, 0]) @ yaw, torch.tensor([0.0, 0, -1]), atol=1e-6)


def test_headpose_bins_expectation_in_degrees():
    logits = torch.full((3, 66), -1e4)
    logits[0, 0] = 0
    logits[1, 65] = 0
    logits[2] = 0  # uniform: mean bin 32.5
    deg = headpose_to_degrees(logits)
    assert torch.allclose(deg, torch.tensor([-97.5, 97.5, 0.0]), atol=1e-4)
    two = torch.full((1, 66), -1e4)
    two[0, 40] = two[0, 41] = 0
    assert math.isclose(headpose_to_degrees(two.bfloat16()).item(), 40.5 * 3 - 97.5, abs_tol=1e-3)
    with pytest.raises(ValueError):
        headpose_to_degrees(torch.zeros(66))


def test_transform_keypoint_formula_and_no_tz():
    g = torch.Generator().manual_seed(0)
    kp, exp = torch.randn(4, 21, 3, generator=g), torch.randn(4, 21, 3, generator=g)
    a = random_angles(4).float()
    rot = rotation_matrix(a[:, 0], a[:, 1], a[:, 2])
    t, scale = torch.randn(4, 3, generator=g), torch.rand(4, generator=g) + 0.5
    got = transform_keypoints(kp, rot, exp, t, scale)
    for i in range(4):
        want = scale[i] * (kp[i] @ rot[i] + exp[i]) + torch.tensor([t[i, 0], t[i, 1], 0.0])
        assert torch.allclose(got[i], want, atol=1e-5)
    t2 = t.clone()
    t2[:, 2] += 5.0
    assert torch.equal(transform_keypoints(kp, rot, exp, t2, scale[:, None]), got)


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_pack_unpack_round_trip(lib):
    rng = np.random.default_rng(0)
    exp, rot, t = rng.normal(size=(5, 7, 21, 3)), rng.normal(size=(5, 7, 3, 3)), rng.normal(size=(5, 7, 3))
    if lib == "torch":
        exp, rot, t = (torch.from_numpy(x) for x in (exp, rot, t))
    m = pack_motion(exp, rot, t)
    assert m.shape == (5, 7, 75) and type(m) is type(exp)
    e2, r2, t2 = unpack_motion(m)
    for x, y in ((exp, e2), (rot, r2), (t, t2)):
        assert (np.asarray(x) == np.asarray(y)).all()
    flat = np.asarray(m)[0, 0]
    assert (flat[:63] == np.asarray(exp)[0, 0].reshape(-1)).all()  # row-major: kp0 xyz, kp1 xyz, ...
    assert (flat[63:72] == np.asarray(rot)[0, 0].reshape(-1)).all() and (flat[72:] == np.asarray(t)[0, 0]).all()


def test_pack_and_unpack_reject_wrong_shapes():
    with pytest.raises(ValueError, match="exp"):
        pack_motion(np.zeros((2, 20, 3)), np.zeros((2, 3, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="rot"):
        pack_motion(np.zeros((2, 21, 3)), np.zeros((3, 3, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="75"):
        unpack_motion(np.zeros((2, 74)))


def test_motion_to_keypoints_uses_each_frames_canonical_keypoints_and_scale():
    g = torch.Generator().manual_seed(1)
    kp, exp = torch.randn(3, 21, 3, generator=g), torch.randn(3, 21, 3, generator=g)
    a = random_angles(3).float()
    rot = rotation_matrix(a[:, 0], a[:, 1], a[:, 2])
    t, scale = torch.randn(3, 3, generator=g), torch.rand(3, generator=g) + 0.5
    m = pack_motion(exp, rot, t)
    assert torch.allclose(motion_to_keypoints(m, kp, scale), transform_keypoints(kp, rot, exp, t, scale))
    swapped = motion_to_keypoints(m, kp.flip(0), scale.flip(0))
    assert torch.allclose(swapped[0], transform_keypoints(kp[2:], rot[:1], exp[:1], t[:1], scale[2:])[0], atol=1e-6)
    with pytest.raises(ValueError, match="share T"):
        motion_to_keypoints(m, kp[:2], scale)


def test_project_to_rotation():
    a = random_angles(8, seed=3)
    r = rotation_matrix(a[:, 0], a[:, 1], a[:, 2])
    noisy = r + 0.01 * torch.randn_like(r)
    p = project_to_rotation(noisy)
    assert torch.allclose(p @ p.transpose(1, 2), torch.eye(3, dtype=p.dtype).expand_as(p), atol=1e-10)
    assert torch.allclose(torch.linalg.det(p), torch.ones(8, dtype=p.dtype))
    assert (p - r).abs().max() < 0.03
    assert np.allclose(project_to_rotation(r.numpy()), r.numpy(), atol=1e-10)


def test_coordinate_grid_and_gaussians():
    grid = make_coordinate_grid((3, 4, 5))
    assert grid.shape == (3, 4, 5, 3)
    assert torch.allclose(grid[0, 0, 0], torch.tensor([-1.0, -1, -1])) and torch.allclose(grid[2, 3, 4], torch.ones(3))
    assert torch.allclose(grid[1, 2, 3], torch.tensor([2 * 3 / 4 - 1, 2 * 2 / 3 - 1, 0.0]))  # x right, y down, z in
    kp = grid[1, 2, 3].reshape(1, 1, 3)
    g = keypoint_gaussians(kp, (3, 4, 5))
    assert g.shape == (1, 1, 3, 4, 5) and g[0, 0, 1, 2, 3] == 1.0 and g.sum() < 1.5

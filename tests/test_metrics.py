import math
import sys

import numpy as np
import pytest
from _metrics_helpers import mouth_patch, panning_video

from facedit.metrics import (
    Boundary,
    DISFlow,
    edit_boundaries,
    make_flow,
    motion_continuity,
    photometric_continuity,
)

# ---------------------------------------------------------------- boundaries


@pytest.mark.parametrize(
    "orig, edit, n_orig, n_edit, expected",
    [
        ((10, 20), (10, 26), 30, 36, [Boundary(10, 10), Boundary(26, 20)]),  # substitution, longer
        ((15, 15), (15, 21), 30, 36, [Boundary(15, 15), Boundary(21, 15)]),  # insertion
        ((10, 20), (10, 10), 30, 20, [Boundary(10, 10), Boundary(10, 20)]),  # deletion
        ((0, 5), (0, 7), 30, 32, [Boundary(7, 5)]),  # edit at the very start: no start boundary
        ((25, 30), (25, 33), 30, 33, [Boundary(25, 25)]),  # edit at the very end: no end boundary
    ],
)
def test_edit_boundaries(orig, edit, n_orig, n_edit, expected):
    assert edit_boundaries(orig, edit, n_orig, n_edit) == expected


@pytest.mark.parametrize("orig, edit", [((5, 3), (5, 6)), ((5, 40), (5, 6)), ((5, 6), (-1, 6))])
def test_edit_boundaries_rejects_bad_spans(orig, edit):
    with pytest.raises(ValueError, match="span"):
        edit_boundaries(orig, edit, 30, 30)


# ---------------------------------------------------------------- continuity on synthetic videos

ORIG = panning_video(30)
SUB = edit_boundaries((10, 20), (10, 20), 30, 30)


def _smooth_edit() -> np.ndarray:
    """Generated frames that keep the panning and open a 'mouth' gradually: no seam."""
    strength = np.zeros(30)
    strength[10:20] = 0.3 + 0.7 * np.sin(np.linspace(0, np.pi, 10))
    return mouth_patch(ORIG, strength)


def _hard_cut_edit(jump: float = 12.0) -> np.ndarray:
    """Generated frames stitched in from another moment of the shot: a visible jump at both seams."""
    out = ORIG.copy()
    out[10:20] = panning_video(10, start=10 + jump)
    return out


def test_identical_videos_score_zero():
    assert photometric_continuity(ORIG, ORIG, SUB).value == 0.0
    assert motion_continuity(ORIG, ORIG, SUB).value == 0.0


def test_hard_cut_scores_clearly_worse_than_smooth_transition():
    smooth, hard = _smooth_edit(), _hard_cut_edit()
    p_smooth, p_hard = photometric_continuity(smooth, ORIG, SUB), photometric_continuity(hard, ORIG, SUB)
    m_smooth, m_hard = motion_continuity(smooth, ORIG, SUB), motion_continuity(hard, ORIG, SUB)
    assert p_smooth.boundaries == p_hard.boundaries == 2
    assert p_hard.value > 10 * p_smooth.value and p_hard.value > 5.0, (p_smooth, p_hard)
    assert m_hard.value > 10 * m_smooth.value and m_hard.value > 1.0, (m_smooth, m_hard)
    # each seam separately, too
    assert min(p_hard.per_boundary) > 10 * max(p_smooth.per_boundary)
    assert min(m_hard.per_boundary) > 10 * max(m_smooth.per_boundary)


def test_larger_jumps_score_worse():
    p = [photometric_continuity(_hard_cut_edit(j), ORIG, SUB).value for j in (0, 1, 4, 8)]
    m = [motion_continuity(_hard_cut_edit(j), ORIG, SUB).value for j in (0, 1, 4, 8)]
    assert p[0] == 0 and m[0] == 0
    assert (np.diff(p) > 0).all(), p
    assert (np.diff(m) > 0).all(), m


def test_photometric_grows_with_blend_towards_foreign_frame():
    other = panning_video(30, seed=3)
    scores = []
    for alpha in (0.0, 0.1, 0.25, 0.5, 1.0):
        edited = ORIG.copy()
        edited[10] = (1 - alpha) * ORIG[10] + alpha * other[10]
        scores.append(photometric_continuity(edited, ORIG, SUB[:1]).value)
    assert scores[0] == 0 and (np.diff(scores) > 0).all(), scores


def test_scores_are_symmetric_in_the_two_videos():
    edited = _hard_cut_edit(4)
    swapped = [Boundary(b.original_index, b.edited_index) for b in SUB]
    assert photometric_continuity(edited, ORIG, SUB).value == pytest.approx(
        photometric_continuity(ORIG, edited, swapped).value, rel=1e-6
    )
    assert motion_continuity(edited, ORIG, SUB).value == pytest.approx(
        motion_continuity(ORIG, edited, swapped).value, rel=1e-6
    )


def test_photometric_matches_hand_computation():
    rng = np.random.default_rng(1)
    e, o = rng.random((4, 6, 5, 3), dtype=np.float32), rng.random((5, 6, 5, 3), dtype=np.float32)
    bounds = [Boundary(2, 3), Boundary(3, 1)]
    expected = np.mean(
        [np.mean(np.abs(np.abs(e[k] - e[k - 1]) - np.abs(o[kp] - o[kp - 1]))) * 255 for k, kp in [(2, 3), (3, 1)]]
    )
    assert photometric_continuity(e, o, bounds).value == pytest.approx(expected, rel=1e-5)


def test_motion_uses_injected_flow_and_rescales_downscaled_flow():
    calls = []

    def constant_flow(a, b):  # flow of 2 px everywhere for the edited pair, 0.5 px for the original pair
        calls.append(a.shape)
        v = 2.0 if a.mean() > 0.5 else 0.5
        return np.full((*a.shape[:2], 2), v / math.sqrt(2), np.float32)

    edited, original = np.ones((3, 40, 80, 3), np.float32), np.zeros((3, 40, 80, 3), np.float32)
    bounds = [Boundary(1, 1)]
    assert motion_continuity(edited, original, bounds, flow=constant_flow).value == pytest.approx(1.5)
    # at half resolution the same per-pixel flow means twice the motion in full-resolution pixels
    assert motion_continuity(edited, original, bounds, flow=constant_flow, flow_max_side=40).value == pytest.approx(3.0)
    assert calls[-1] == (20, 40, 3)


def test_dis_flow_recovers_a_known_shift():
    frames = panning_video(2, h=64, w=96, speed=2.0)
    flow = DISFlow()(frames[0], frames[1])
    inner = flow[8:-8, 8:-8]
    assert np.median(inner[..., 0]) == pytest.approx(-2.0, abs=0.2)  # the view pans right: content moves left
    assert np.median(np.abs(inner[..., 1])) < 0.2


def test_no_boundaries_gives_nan_and_zero_count():
    score = photometric_continuity(ORIG, ORIG, [])
    assert math.isnan(score.value) and score.boundaries == 0


def test_continuity_rejects_mismatched_sizes_and_missing_frames():
    small = ORIG[:, :24, :32]
    with pytest.raises(ValueError, match="differ in size"):
        photometric_continuity(small, ORIG, SUB)
    with pytest.raises(ValueError, match="edited: frame 39 is not available"):
        photometric_continuity(ORIG, ORIG, [Boundary(40, 5)])


def test_make_flow_names_and_raft_without_torchvision(monkeypatch):
    assert isinstance(make_flow("dis"), DISFlow)
    with pytest.raises(ValueError, match="'dis' or 'raft'"):
        make_flow("farneback")
    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.setitem(sys.modules, "torchvision.models.optical_flow", None)
    with pytest.raises(ImportError, match="torchvision"):
        make_flow("raft")


# ---------------------------------------------------------------- identity (IDSIM)


def _tiny_arcface_onnx(path, dim: int = 8, size: int = 112, seed: int = 0) -> np.ndarray:
    """An ONNX 'face recogniser' that is one linear map of the flattened NCHW input; returns the map."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(seed).standard_normal((3 * size * size, dim)).astype(np.float32) / 100
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input.1"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "W"], ["683"]),
        ],
        "tiny_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["N", dim])],
        initializer=[numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return w


def test_arcface_onnx_preprocessing_matches_numpy(tmp_path):
    pytest.importorskip("onnxruntime")
    from facedit.metrics import ArcFaceONNX

    w = _tiny_arcface_onnx(tmp_path / "arc.onnx")
    embed = ArcFaceONNX(str(tmp_path / "arc.onnx"))
    assert embed.input_size == 112
    faces = np.random.default_rng(3).integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    expected = ((faces.astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2).reshape(3, -1) @ w
    np.testing.assert_allclose(embed(faces), expected, rtol=1e-4, atol=1e-4)
    # channel order matters: BGR input would give another embedding
    assert not np.allclose(embed(faces[..., ::-1].copy()), expected, atol=1e-3)
    with pytest.raises(ValueError, match=r"\[N, 112, 112, 3\]"):
        embed(faces[:, :100])


def test_arcface_missing_model_and_missing_onnxruntime(tmp_path, monkeypatch):
    from facedit.metrics import ArcFaceONNX

    pytest.importorskip("onnxruntime")
    with pytest.raises(FileNotFoundError, match="ArcFace ONNX model not found"):
        ArcFaceONNX(str(tmp_path / "missing.onnx"))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match="pip install onnxruntime"):
        ArcFaceONNX(str(tmp_path / "missing.onnx"))


def test_identity_similarity_maths():
    from facedit.metrics import identity_similarity

    rng = np.random.default_rng(0)
    a = rng.standard_normal((10, 16))
    assert identity_similarity(a, a) == pytest.approx(1.0)
    # per-embedding normalisation: rescaling single embeddings changes nothing
    assert identity_similarity(a, a * rng.uniform(0.1, 10, (10, 1))) == pytest.approx(1.0)
    b = rng.standard_normal((7, 16))
    assert identity_similarity(a, b) == pytest.approx(identity_similarity(b, a))
    # hand-computed: mean of [1,0] and [0,1] is [0.5,0.5]; cosine with [1,0] is 1/sqrt(2)
    assert identity_similarity(np.array([[3.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 2.0]])) == pytest.approx(
        1 / math.sqrt(2)
    )
    assert identity_similarity(np.array([[1.0, 0.0]]), np.array([[0.0, 5.0]])) == pytest.approx(0.0)


def test_identity_drops_as_generated_faces_drift():
    from facedit.metrics import identity_similarity

    rng = np.random.default_rng(1)
    person, other = rng.standard_normal(32), rng.standard_normal(32)
    original = person + 0.3 * rng.standard_normal((20, 32))
    scores = []
    for drift in (0.0, 0.25, 0.5, 0.75):
        generated = (1 - drift) * person + drift * other + 0.3 * rng.standard_normal((20, 32))
        scores.append(identity_similarity(original, generated))
    assert (np.diff(scores) < 0).all(), scores


def test_identity_score_counts_frames_without_faces():
    from facedit.metrics import CentreFace, Face, identity_score

    frames = panning_video(6)
    seen_sizes = []

    def detector(rgb):
        return None if rgb.mean() < 0 else CentreFace()(rgb)

    calls = [0]

    def no_face_on_odd(rgb):
        calls[0] += 1
        return Face((0, 0, 32, 32)) if calls[0] % 2 else None

    def embed(faces):
        seen_sizes.append(faces.shape)
        return faces.reshape(len(faces), -1).astype(np.float64)[:, :50] + 1.0

    score = identity_score(frames, frames, detector, embed)
    assert score.value == pytest.approx(1.0) and score.original_faces == 6 and score.generated_faces == 6
    assert seen_sizes[0][1:] == (112, 112, 3)
    half = identity_score(frames, frames, no_face_on_odd, embed)
    assert (half.original_faces, half.generated_faces) == (3, 3)
    none = identity_score(frames, frames, lambda rgb: None, embed)
    assert math.isnan(none.value) and none.original_faces == 0


def test_align_face_with_template_landmarks_is_identity():
    from facedit.metrics import ARCFACE_TEMPLATE_112, Face, align_face

    img = (np.random.default_rng(0).random((112, 112, 3)) * 255).astype(np.uint8)
    out = align_face(img, Face((0, 0, 112, 112), ARCFACE_TEMPLATE_112.copy()))
    assert np.abs(out.astype(int) - img.astype(int)).max() <= 1
    # without landmarks: the square box is resized to the output size
    box = align_face(img, Face((28, 28, 84, 84)), size=56)
    np.testing.assert_array_equal(box, img[28:84, 28:84])


def test_yunet_missing_model_message(tmp_path):
    from facedit.metrics import YuNetDetector

    with pytest.raises(FileNotFoundError, match="YuNet"):
        YuNetDetector(str(tmp_path / "yunet.onnx"))

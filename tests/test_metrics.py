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


# ---------------------------------------------------------------- SyncNet (LSE-D / LSE-C)


BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _syncnet_reference_keys() -> set:
    """Parameter names of syncnet_python's S: conv/bn positions inside each nn.Sequential."""
    keys = set()
    for net in ("netcnnaud", "netcnnlip"):
        for conv in (0, 4, 8, 11, 14, 18):
            keys |= {f"{net}.{conv}.weight", f"{net}.{conv}.bias"}
            bn = conv + 1
            keys |= {
                f"{net}.{bn}.{n}" for n in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
            }
    for net in ("netfcaud", "netfclip"):
        keys |= {f"{net}.0.weight", f"{net}.0.bias", f"{net}.3.weight", f"{net}.3.bias"}
        keys |= {f"{net}.1.{n}" for n in BN_KEYS}
    return keys


@pytest.fixture(scope="module")
def syncnet_model():
    import torch

    from facedit.metrics import build_syncnet

    torch.manual_seed(0)
    model = build_syncnet().eval()
    with torch.no_grad():  # non-trivial batch-norm statistics so that loading them matters
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


def test_syncnet_parameter_names_and_shapes(syncnet_model):
    import torch

    assert set(syncnet_model.state_dict()) == _syncnet_reference_keys()
    with torch.no_grad():
        assert syncnet_model.forward_lip(torch.zeros(2, 3, 5, 224, 224)).shape == (2, 1024)
        assert syncnet_model.forward_aud(torch.zeros(2, 1, 13, 20)).shape == (2, 1024)


@pytest.mark.parametrize("fmt", ["pt", "safetensors", "pt_old"])
def test_load_syncnet_round_trip(tmp_path, syncnet_model, fmt):
    import torch
    from safetensors.torch import save_file

    from facedit.metrics import load_syncnet

    state = {k: v.clone().contiguous() for k, v in syncnet_model.state_dict().items()}
    if fmt == "pt_old":  # checkpoints from old torch versions have no num_batches_tracked
        state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / ("syncnet.safetensors" if fmt == "safetensors" else "syncnet_v2.model")
    save_file(state, str(path)) if fmt == "safetensors" else torch.save(state, path)
    loaded = load_syncnet(str(path))
    x = torch.randn(1, 1, 13, 20)
    with torch.no_grad():
        torch.testing.assert_close(loaded.forward_aud(x), syncnet_model.forward_aud(x))


def test_load_syncnet_errors(tmp_path):
    import torch

    from facedit.metrics import load_syncnet

    with pytest.raises(FileNotFoundError, match="syncnet_v2.model"):
        load_syncnet(str(tmp_path / "nothing.model"))
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not SyncNet v2 weights"):
        load_syncnet(str(tmp_path / "other.pt"))


def test_mfcc_matches_python_speech_features_conventions():
    from facedit.metrics import syncnet_mfcc

    rng = np.random.default_rng(0)
    pcm = np.rint(rng.standard_normal(16000 + 123) * 3000)
    mfcc = syncnet_mfcc(pcm)
    assert mfcc.shape == (13, 1 + math.ceil((pcm.size - 400) / 160))
    # c0 is the log energy of the pre-emphasised 25 ms frame (power spectrum of a 512-point FFT / 512)
    emph = np.append(pcm[0], pcm[1:] - 0.97 * pcm[:-1])
    frame = emph[160 * 7 : 160 * 7 + 400]
    assert mfcc[0, 7] == pytest.approx(np.log((np.abs(np.fft.rfft(frame, 512)) ** 2 / 512).sum()), rel=1e-5)
    # a 1 kHz tone puts the most energy into the mel filter around 1 kHz: compare two tones
    t = np.arange(16000) / 16000
    low, high = syncnet_mfcc(3000 * np.sin(2 * np.pi * 300 * t)), syncnet_mfcc(3000 * np.sin(2 * np.pi * 3000 * t))
    assert not np.allclose(low[1:, 10:-10].mean(1), high[1:, 10:-10].mean(1), atol=1.0)


def test_mfcc_equals_python_speech_features_when_installed():
    from facedit.metrics import syncnet_mfcc

    psf = pytest.importorskip("python_speech_features")
    pcm = np.rint(np.random.default_rng(0).standard_normal(16000 + 123) * 3000)
    np.testing.assert_allclose(syncnet_mfcc(pcm), psf.mfcc(pcm, 16000).T, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "mdist, vshift, expected",
    [
        ([5.0, 4.0, 1.0, 3.0, 6.0], 2, (1.0, 3.0, 0)),  # median 4, min at the centre
        ([2.0, 7.0, 9.0], 1, (2.0, 5.0, 1)),  # min at j=0: offset vshift - 0
        ([9.0, 8.0, 7.5], 1, (7.5, 0.5, -1)),
    ],
)
def test_lse_from_distances_by_hand(mdist, vshift, expected):
    from facedit.metrics import lse_from_distances

    d, c, off = lse_from_distances(np.array(mdist), vshift)
    assert (d, c, off) == pytest.approx(expected)


def test_offset_distances_match_the_definition():
    from facedit.metrics import offset_distances

    rng = np.random.default_rng(2)
    v, a = rng.standard_normal((9, 6)), rng.standard_normal((9, 6))
    vshift = 3
    got = offset_distances(v, a, vshift)
    assert got.shape == (9, 7)
    for i in range(9):
        for j in range(7):
            k = i + j - vshift
            other = a[k] if 0 <= k < 9 else np.zeros(6)
            assert got[i, j] == pytest.approx(np.linalg.norm(v[i] - other + 1e-6), rel=1e-4)


def test_lse_finds_a_known_audio_delay():
    from facedit.metrics import lse_from_embeddings

    rng = np.random.default_rng(3)
    base = rng.standard_normal((60, 16))
    v = base[10:50]
    a = base[7:47]  # audio window i shows what video window i - 3 shows: audio is 3 frames late
    d, c, off = lse_from_embeddings(v, a, vshift=15)
    assert off == -3
    synced_d, synced_c, synced_off = lse_from_embeddings(v, v, vshift=15)
    assert synced_off == 0
    # in sync, the distance is zero except where the shifted audio runs off the end (zero vectors)
    assert synced_d == pytest.approx(0.0, abs=1e-4)
    assert d > synced_d and synced_c > 0
    # noise on the audio embeddings raises the distance and lowers the confidence
    noisy_d, noisy_c, _ = lse_from_embeddings(v, v + 0.8 * rng.standard_normal(v.shape), vshift=15)
    assert noisy_d > synced_d and noisy_c < synced_c


def test_syncnet_crop_geometry():
    from facedit.metrics import Face, syncnet_crops

    img = np.zeros((300, 300, 3), np.uint8)
    img[100:200, 100:200] = 255
    crops = syncnet_crops([img] * 3, [Face((100, 100, 200, 200))] * 3, crop_scale=0.0)
    assert crops.shape == (3, 224, 224, 3) and crops.min() == 255  # c = 0: exactly the box
    wide = syncnet_crops([img], [Face((100, 100, 200, 200))])[0]
    # c = 0.4: rows from cy - s to cy + 1.8 s, columns cx -+ 1.4 s: more below the face than above
    assert wide[5, 112].max() == 255 and wide[-5, 112].max() == 0 and wide[112, 5].max() == 0
    corner = syncnet_crops([img], [Face((0, 0, 60, 60))])[0]
    assert (corner[2, 2] == 110).all()  # padded with grey outside the frame
    # frames without a detection take the nearest one
    filled = syncnet_crops([img] * 3, [None, Face((100, 100, 200, 200)), None], crop_scale=0.0)
    assert filled.min() == 255
    with pytest.raises(ValueError, match="no face"):
        syncnet_crops([img], [None])


def test_lip_sync_score_end_to_end_with_random_weights(syncnet_model):
    from facedit.metrics import CentreFace, lip_sync_score

    frames = panning_video(12, h=64, w=64)  # 12 frames at 30 fps = 0.4 s -> 10 frames at 25 fps
    t = np.arange(int(0.4 * 44100)) / 44100
    audio = np.stack([0.3 * np.sin(2 * np.pi * 200 * t), 0.2 * np.sin(2 * np.pi * 300 * t)])
    score = lip_sync_score(syncnet_model, frames, 30.0, audio, 44100, CentreFace(), batch_size=8)
    assert score.windows == 10 - 5
    assert math.isfinite(score.lse_d) and score.lse_d > 0 and score.lse_c >= 0 and -15 <= score.offset <= 15
    with pytest.raises(ValueError, match="too short"):
        lip_sync_score(syncnet_model, frames[:6], 30.0, audio, 44100, CentreFace())


# ---------------------------------------------------------------- FVD


def test_frechet_distance_closed_forms():
    from facedit.metrics import frechet_distance

    # 1-D: (m1 - m2)^2 + (s1 - s2)^2 for standard deviations s
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)
    # diagonal covariances: sum over dimensions; invariant under a common rotation
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 1.0])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(var1) - np.sqrt(var2)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected)
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))
    rotated = frechet_distance(q @ mu1, q @ np.diag(var1) @ q.T, q @ mu2, q @ np.diag(var2) @ q.T)
    assert rotated == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(mu1, np.diag(var1), mu1, np.diag(var1)) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(mu2, np.diag(var2), mu1, np.diag(var1)) == pytest.approx(expected)
    with pytest.raises(ValueError, match="shapes differ"):
        frechet_distance(mu1, np.diag(var1), mu1[:2], np.diag(var1[:2]))


def test_fvd_from_features_estimates_the_gaussian_distance():
    from facedit.metrics import fvd_from_features, gaussian_stats

    rng = np.random.default_rng(1)
    real = rng.standard_normal((20000, 4))
    fake = rng.standard_normal((20000, 4)) * 2.0 + np.array([1.0, 0.0, 0.0, -1.0])
    # closed form: |dmu|^2 = 2, each dimension (1 - 2)^2 = 1
    assert fvd_from_features(real, fake) == pytest.approx(6.0, rel=0.03)
    assert fvd_from_features(real, real) == pytest.approx(0.0, abs=1e-6)
    # further apart -> larger
    assert fvd_from_features(real, fake + 1.0) > fvd_from_features(real, fake)
    # fewer samples than dimensions: singular covariances, still finite
    assert math.isfinite(fvd_from_features(real[:5, :4].repeat(10, 1), fake[:5, :4].repeat(10, 1)))
    with pytest.raises(ValueError, match="N >= 2"):
        gaussian_stats(real[:1])


def test_i3d_parameter_names_and_load(tmp_path):
    import torch
    from safetensors.torch import save_file

    from facedit.metrics import build_i3d, load_i3d

    model = build_i3d()
    keys = set(model.state_dict())
    for key in (
        "Conv3d_1a_7x7.conv3d.weight",
        "Conv3d_1a_7x7.bn.running_var",
        "Mixed_3b.b1b.conv3d.weight",
        "Mixed_5c.b3b.bn.bias",
        "logits.conv3d.weight",
        "logits.conv3d.bias",
    ):
        assert key in keys
    assert model.state_dict()["Mixed_5c.b0.conv3d.weight"].shape == (384, 832, 1, 1, 1)
    assert model.state_dict()["logits.conv3d.weight"].shape == (400, 1024, 1, 1, 1)
    state = {k: torch.randn_like(v.float()).to(v.dtype) for k, v in model.state_dict().items()}
    save_file(state, str(tmp_path / "i3d.safetensors"))
    loaded = load_i3d(str(tmp_path / "i3d.safetensors"))
    for k, v in loaded.state_dict().items():
        torch.testing.assert_close(v, state[k])
    with pytest.raises(FileNotFoundError, match="rgb_imagenet.pt"):
        load_i3d(str(tmp_path / "missing.pt"))


@pytest.mark.parametrize(
    "start, end, total, first",
    [(40, 50, 100, 37), (0, 2, 100, 0), (95, 100, 100, 84), (3, 3, 10, 0)],
)
def test_clip_indices(start, end, total, first):
    from facedit.metrics import clip_indices

    idx = clip_indices(start, end, total)
    assert len(idx) == 16 and idx[0] == first and idx.max() < total

"""Face tracks, crop geometry, paste-back, detectors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from _lp_helpers import (
    ScriptedDetector,
    box,
    one_thread,  # noqa: F401 (fixture)
    smooth_frames,
    tiny_model,
)

from facedit.liveportrait import (
    CropTrack,
    InsightFaceDetector,
    crop_faces,
    detect_face_track,
    extract_motion,
    face_mask,
    frame_face_mask,
    paste_back,
    paste_back_batch,
    render,
    track_from_boxes,
)


def manual_track(t=1, h=120, w=160, face=(60, 30, 100, 70), **kw) -> CropTrack:
    return detect_face_track(np.zeros((t, h, w, 3), np.float32), box=face, **kw)


def test_livePortrait_crop_geometry_from_a_box():
    tr = manual_track(face=(60, 30, 100, 70))  # 40 px face centred at (80, 50)
    assert tr.size[0] == pytest.approx(40 * 2.3)
    assert tr.center[0, 0] == pytest.approx(80)
    assert tr.center[0, 1] == pytest.approx(50 - 0.125 * 40 * 2.3)  # centre moved towards the forehead
    assert tr.angle[0] == 0 and tr.detected.all()
    x0, y0, x1, y1 = tr.crop_box(0)
    assert (x1 - x0, y1 - y0) == pytest.approx((92, 92))
    wide = manual_track(face=(40, 30, 120, 70))  # non-square boxes give a square crop on the longer side
    assert wide.size[0] == pytest.approx(80 * 2.3)


def test_crop_maps_the_square_onto_the_crop_exactly():
    tr = manual_track(face=(60, 30, 100, 70))
    for dsize in (256, 512):
        m = tr.matrix(0, dsize)
        corners = tr.crop_corners(0)  # continuous coords -> OpenCV pixel centres: subtract 0.5
        mapped = (corners - 0.5) @ m[:, :2].T + m[:, 2]
        assert np.allclose(mapped, [[-0.5, -0.5], [dsize - 0.5, -0.5], [dsize - 0.5, dsize - 0.5], [-0.5, dsize - 0.5]])
        inv = tr.inverse_matrix(0, dsize)
        assert np.allclose(np.vstack([inv, [0, 0, 1]]) @ np.vstack([m, [0, 0, 1]]), np.eye(3))


def test_crop_contents_follow_the_frame():
    """A bright dot at the face centre lands where the geometry says, at any crop resolution."""
    frame = np.zeros((1, 120, 160, 3), np.float32)
    frame[0, 48:52, 78:82] = 1.0  # dot centred at (80, 50) in continuous coords
    tr = manual_track(face=(60, 30, 100, 70))
    for size in (256, 512):
        crop = crop_faces(frame, tr, size)[0, :, :, 0]
        ys, xs = np.nonzero(crop > 0.5)
        s = size / tr.size[0]
        assert xs.mean() + 0.5 == pytest.approx(size / 2, abs=1.5)
        assert ys.mean() + 0.5 == pytest.approx(size / 2 + 0.125 * 40 * 2.3 * s, abs=1.5)
    small, large = crop_faces(frame, tr, 256)[0], crop_faces(frame, tr, 512)[0]
    down = cv2.resize(large, (256, 256), interpolation=cv2.INTER_AREA)
    assert np.abs(down - small).mean() < 0.01  # the same region at both resolutions


def test_rotated_crop_cancels_roll():
    frames = np.zeros((1, 200, 200, 3), np.float32)
    angle = math.radians(20)
    # landmarks of a face whose eye->mouth axis is rotated by 20 degrees (image y down)
    uy = np.array([-math.sin(angle), math.cos(angle)])
    ux = np.array([math.cos(angle), math.sin(angle)])
    c = np.array([100.0, 100.0])
    lms = np.array([c - 15 * ux - 10 * uy, c + 15 * ux - 10 * uy, c, c - 10 * ux + 15 * uy, c + 10 * ux + 15 * uy])
    det = ScriptedDetector([[box(100, 100, 60, landmarks=lms)]])
    tr = detect_face_track(frames, det)
    assert tr.angle[0] == pytest.approx(angle)
    assert tr.center[0] == pytest.approx(c + uy * (-0.125 * 60 * 2.3))
    det = ScriptedDetector([[box(100, 100, 60, landmarks=lms)]])
    assert detect_face_track(frames, det, rotate=False).angle[0] == 0
    m = tr.matrix(0, 256)
    axis = m[:, :2] @ uy  # the face's down axis becomes the crop's +y
    assert axis[0] == pytest.approx(0, abs=1e-9) and axis[1] > 0


def test_paste_back_of_an_unmodified_crop_reproduces_the_frame():
    frames = smooth_frames(t=2, h=150, w=200)
    tr = manual_track(t=2, h=150, w=200, face=(80, 50, 130, 100))
    crops = crop_faces(frames, tr, 512)
    out = paste_back_batch(frames, crops, tr)
    mask = frame_face_mask(tr, 0)
    diff = np.abs(out - frames).max(-1)
    assert diff[0][mask > 0].max() < 0.02 and diff.mean() < 0.002
    assert np.array_equal(out[0][mask == 0], frames[0][mask == 0])  # untouched outside the mask, bit for bit


def test_paste_back_changes_only_the_masked_face_region():
    frames = smooth_frames(t=1, h=150, w=200)
    tr = manual_track(t=1, h=150, w=200, face=(80, 50, 130, 100))
    white = np.ones((512, 512, 3), np.float32)
    out = paste_back(frames[0], white, tr, 0)
    mask = frame_face_mask(tr, 0)
    assert np.array_equal(out[mask == 0], frames[0][mask == 0])
    inner = mask > 0.999
    assert inner.sum() > 500 and np.allclose(out[inner], 1.0, atol=1e-3)
    edge = (mask > 0.2) & (mask < 0.8)
    assert edge.any() and (out[edge] < 1).any()  # feathered, not a hard seam
    hard = paste_back(frames[0], white, tr, 0, feather=0)
    assert np.array_equal(hard, paste_back(frames[0], white, tr, 0, mask=face_mask(512, feather=0)))
    hard_mask = frame_face_mask(tr, 0, feather=0)
    assert ((hard_mask > 0.01) & (hard_mask < 0.99)).sum() < ((mask > 0.01) & (mask < 0.99)).sum() / 3
    with pytest.raises(ValueError, match="not both"):
        paste_back(frames[0], white, tr, 0, mask=face_mask(512), feather=0.1)
    with pytest.raises(ValueError, match=r"\(512, 512\)"):
        paste_back(frames[0], white, tr, 0, mask=np.ones((256, 256)))


def test_paste_back_handles_crops_beyond_the_frame_edge():
    frames = smooth_frames(t=1, h=100, w=100)
    tr = manual_track(t=1, h=100, w=100, face=(-10, -10, 30, 30))
    out = paste_back(frames[0], crop_faces(frames, tr, 512)[0], tr, 0)
    assert out.shape == (100, 100, 3) and np.isfinite(out).all()


def test_face_mask_shape_and_feather():
    m = face_mask(128)
    assert m.shape == (128, 128) and m.dtype == np.float32
    assert m[0, 0] == 0 and m[int(0.56 * 128), 64] == 1
    assert 0.05 < m.mean() < 0.6
    assert ((m > 0) & (m < 1)).sum() > ((face_mask(128, feather=0.02) > 0) & (face_mask(128, feather=0.02) < 1)).sum()


def test_missing_faces_are_interpolated_from_neighbours():
    frames = np.zeros((5, 100, 120, 3), np.float32)
    det = ScriptedDetector([[box(40, 50, 30)], [], [], [box(70, 50, 30)], []])
    tr = detect_face_track(frames, det, smoothing=0)
    assert tr.detected.tolist() == [True, False, False, True, False]
    assert tr.interpolated.tolist() == [False, True, True, False, True]
    cx = (tr.face_box[:, 0] + tr.face_box[:, 2]) / 2
    assert cx.tolist() == pytest.approx([40, 50, 60, 70, 70])


def test_a_clip_without_any_face_fails_naming_the_input():
    frames = np.zeros((3, 64, 64, 3), np.float32)
    with pytest.raises(ValueError, match="no face was detected in any frame of source_video"):
        detect_face_track(frames, ScriptedDetector([[], [], []]), name="source_video")


def test_several_faces_choose_by_size_or_left_to_right_and_track():
    frames = np.zeros((3, 100, 200, 3), np.float32)
    scripted = [[box(150, 50, 20), box(40, 50, 40)], [box(42, 50, 40), box(152, 50, 20)], [box(154, 50, 20)]]
    big = detect_face_track(frames, ScriptedDetector(scripted), smoothing=0)
    assert big.face_box[:2, 0].tolist() == pytest.approx([20, 22]) and not big.detected[2]
    small = detect_face_track(frames, ScriptedDetector(scripted), face_index=1, smoothing=0)
    assert small.detected.all() and small.face_box[:, 0].tolist() == pytest.approx([140, 142, 144])
    left = detect_face_track(frames, ScriptedDetector(scripted), face_order="left_to_right", face_index=0)
    assert left.face_box[0, 0] == pytest.approx(20)
    with pytest.raises(ValueError, match="face_index=2"):
        detect_face_track(frames, ScriptedDetector(scripted), face_index=2)


def test_smoothing_removes_jitter_and_fixed_gives_one_crop():
    rng = np.random.default_rng(0)
    t = 40
    jitter = rng.normal(0, 3, size=t)
    boxes = np.array([[50 + j, 40, 90 + j, 80] for j in jitter])
    raw = track_from_boxes((120, 160), boxes, np.ones(t, bool), smoothing=0)
    smooth = track_from_boxes((120, 160), boxes, np.ones(t, bool), smoothing=3)
    assert np.std(np.diff(smooth.center[:, 0])) < 0.3 * np.std(np.diff(raw.center[:, 0]))
    fixed = track_from_boxes((120, 160), boxes, np.ones(t, bool), fixed=True)
    assert np.ptp(fixed.center, axis=0).max() == 0 and np.ptp(fixed.size) == 0


def test_detect_every_runs_the_detector_on_a_stride():
    frames = np.zeros((7, 64, 64, 3), np.float32)
    det = ScriptedDetector([[box(32, 32, 20)]] * 4)
    tr = detect_face_track(frames, det, detect_every=3)
    assert len(det.seen) == 3 and det.seen[0].dtype == np.uint8  # frames 0, 3, 6
    assert tr.detected.all()  # the frames between two searched frames with the face count as having it
    missed = detect_face_track(frames, ScriptedDetector([[box(32, 32, 20)], [], [box(32, 32, 20)]]), detect_every=3)
    assert missed.detected.tolist() == [True, False, False, False, False, False, True]


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        detect_face_track(np.zeros((64, 64, 3), np.float32), box=(0, 0, 10, 10))
    with pytest.raises(ValueError, match="box must be"):
        detect_face_track(np.zeros((2, 64, 64, 3), np.float32), box=(0, 0, 10))
    with pytest.raises(ValueError, match="x1 > x0"):
        detect_face_track(np.zeros((1, 64, 64, 3), np.float32), box=(10, 0, 5, 10))
    tr = manual_track()
    with pytest.raises(ValueError, match="the track was made for"):
        crop_faces(np.zeros((1, 50, 50, 3), np.float32), tr)


def test_track_json_round_trip_and_select():
    tr = manual_track(t=3)
    again = CropTrack.from_dict(json.loads(json.dumps(tr.to_dict())))
    assert np.array_equal(again.center, tr.center) and again.frame_size == tr.frame_size
    sub = tr.select([2, 0])
    assert len(sub) == 2 and np.array_equal(sub.size, tr.size[[2, 0]])


def test_insightface_adapter_with_a_stand_in():
    class Face:
        bbox = np.array([10.0, 20.0, 50.0, 70.0, 0.9])
        kps = np.arange(10.0).reshape(5, 2)
        det_score = 0.9

    class App:
        def get(self, bgr):
            assert bgr.shape == (40, 60, 3)
            return [Face()]

    (d,) = InsightFaceDetector(App())(np.zeros((40, 60, 3), np.uint8))
    assert d.box == (10.0, 20.0, 50.0, 70.0) and d.landmarks.shape == (5, 2) and d.score == pytest.approx(0.9)


def _grace_hopper() -> np.ndarray:
    mpl = pytest.importorskip("matplotlib")
    path = Path(mpl.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB).astype(np.float32) / 255


@pytest.mark.usefixtures("one_thread")
def test_dlib_finds_the_real_portrait_and_the_whole_chain_runs():
    pytest.importorskip("dlib")
    img = _grace_hopper()
    frames = np.stack([img, img[:, ::-1].copy(), np.zeros_like(img)])  # third frame: no face
    tr = detect_face_track(frames, smoothing=0)
    assert tr.detected.tolist() == [True, True, False]
    x0, y0, x1, y1 = tr.face_box[0]
    assert 150 < x0 < 200 and 320 < x1 < 390 and 120 < y0 < 160 and 300 < y1 < 360  # the face, eyebrows to chin
    assert tr.face_box[1, 0] == pytest.approx(512 - x1, abs=20)  # mirrored frame (HOG is not symmetric)
    crops = crop_faces(frames[:2], tr, 256)
    lp = tiny_model(seed=0)
    motion = extract_motion(lp, crops)
    rendered = render(lp, crops, motion, motion.motion)
    pasted = paste_back_batch(frames[:2], rendered.numpy(), tr, indices=[0, 1])
    assert pasted.shape == frames[:2].shape and np.isfinite(pasted).all()
    outside = frame_face_mask(tr, 0) == 0
    assert np.array_equal(pasted[0][outside], frames[0][outside])
    assert isinstance(rendered, torch.Tensor)

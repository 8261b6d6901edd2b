"""The plan file beside an edited video: tied to that video by its fingerprint, refused once it was replaced."""

import json
import os
import shutil

import numpy as np
import pytest

from facedit.edits import EditPlan
from facedit.video import plan_path, read_plan_file, video_fingerprint, write_plan_file


def _plan(lo=3, hi=7):
    mask = np.zeros(12, dtype=bool)
    mask[lo:hi] = True
    return EditPlan(
        mode="edit", fps=25.0, source_frames=12, target_frames=12, source_time=np.arange(12.0), infill_mask=mask,
        edits=(), context_frames=1, original_duration_s=0.48, edited_duration_s=0.48,
    )  # fmt: skip


def _video(path, content: bytes):
    path.write_bytes(content)
    return path


def test_plan_file_round_trip_and_fingerprint(tmp_path):
    video = _video(tmp_path / "a.mp4", b"first edit " * 1000)
    path = write_plan_file(_plan(), video)
    assert path == plan_path(video) == str(tmp_path / "a.plan.json")
    data = json.loads(open(path, encoding="utf-8").read())
    assert data["video"] == video_fingerprint(video)
    assert data["video"]["size"] == 11000 and data["video"]["name"] == "a.mp4"
    plan = read_plan_file(path, video)
    assert np.array_equal(plan.infill_mask, _plan().infill_mask)
    assert EditPlan.from_json(open(path, encoding="utf-8").read()).target_frames == 12  # still a plan file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "a.plan.json"]  # no temporary file left


@pytest.mark.parametrize("replacement", [b"other edit " * 1000, b"a longer, other edit " * 1000])
def test_a_plan_for_a_replaced_video_is_refused(tmp_path, replacement):
    video = _video(tmp_path / "a.mp4", b"first edit " * 1000)
    path = write_plan_file(_plan(), video)
    _video(video, replacement)  # same size or another size: both are caught
    match = r"stale: written for another .*a\.mp4 \(11000 bytes, sha256 \w{12}\.\.\.; the file now: .*replaced"
    with pytest.raises(ValueError, match=match + r".*delete .*a\.plan\.json"):
        read_plan_file(path, video)


def test_a_plan_copied_with_its_video_is_still_taken(tmp_path):
    video = _video(tmp_path / "a.mp4", b"first edit " * 1000)
    write_plan_file(_plan(), video)
    other = tmp_path / "copy"
    other.mkdir()
    shutil.copy(video, other / "a.mp4")  # the video copied after its plan: newer, but the same bytes
    shutil.copy(plan_path(video), other / "a.plan.json")
    os.utime(other / "a.plan.json", (1_000_000, 1_000_000))
    assert read_plan_file(other / "a.plan.json", other / "a.mp4").target_frames == 12


def test_an_old_plan_without_fingerprint_is_refused_when_its_video_is_newer(tmp_path):
    video = _video(tmp_path / "a.mp4", b"edit")
    path = tmp_path / "a.plan.json"
    path.write_text(_plan().to_json())  # as facedit wrote it before plans carried the video's fingerprint
    os.utime(video, (1_000_000, 1_000_000))
    assert read_plan_file(path, video).target_frames == 12  # video older than its plan: taken
    os.utime(video, (2_000_000_000, 2_000_000_000))
    with pytest.raises(ValueError, match=r"stale: .*a\.mp4 is newer than its plan, which has no fingerprint"):
        read_plan_file(path, video)


def test_bad_plan_files_are_named_errors(tmp_path):
    video = _video(tmp_path / "a.mp4", b"edit")
    path = tmp_path / "a.plan.json"
    path.write_text("{oops")
    with pytest.raises(ValueError, match="edit plan: not valid JSON"):
        read_plan_file(path, video)
    path.write_text(json.dumps({**_plan().to_dict(), "video": {"size": 4}}))
    with pytest.raises(ValueError, match="'video' must hold the size and sha256"):
        read_plan_file(path, video)

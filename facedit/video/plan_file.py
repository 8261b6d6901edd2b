"""The edit plan kept beside an edited video (``<video without extension>.plan.json``), tied to that file.

The plan file holds the plan and a fingerprint of the video it was written with (size and SHA-256), so that a
plan left over from an earlier run is not applied to a video that has since been replaced: reading it checks
the fingerprint. A plan file from an older facedit has no fingerprint; it is taken unless the video is newer
than it (the writers write the video first, then its plan).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from ..edits import EditPlan
from .safe_write import atomic_output

__all__ = ["plan_path", "read_plan_file", "video_fingerprint", "write_plan_file"]

_CHUNK = 1 << 20
_MTIME_SLACK_S = 1.0  # filesystems with coarse timestamps


def plan_path(video: str | os.PathLike) -> str:
    """Where the edit plan of ``video`` is kept: ``<video without extension>.plan.json``."""
    return os.path.splitext(os.fspath(video))[0] + ".plan.json"


def video_fingerprint(video: str | os.PathLike) -> dict[str, Any]:
    """``{"name", "size", "sha256"}`` of the file ``video`` (all of it: smart-rendered edits of one clip share
    their first bytes, the source's copied GOPs)."""
    digest = hashlib.sha256()
    with open(video, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return {"name": os.path.basename(os.fspath(video)), "size": os.path.getsize(video), "sha256": digest.hexdigest()}


def write_plan_file(plan: EditPlan, video: str | os.PathLike, path: str | os.PathLike | None = None) -> str:
    """Write ``plan`` with the fingerprint of ``video`` to ``path`` (default `plan_path`); the file appears
    only when complete. Returns the path."""
    path = os.fspath(path) if path is not None else plan_path(video)
    data = {**plan.to_dict(), "video": video_fingerprint(video)}
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
    return path


def _describe(fp: dict[str, Any]) -> str:
    return f"{fp.get('size')} bytes, sha256 {str(fp.get('sha256'))[:12]}..."


def read_plan_file(path: str | os.PathLike, video: str | os.PathLike) -> EditPlan:
    """The plan in ``path``, refused (ValueError naming both files) when it was written for another ``video``."""
    path, video = os.fspath(path), os.fspath(video)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"edit plan: not valid JSON ({exc})") from exc
    redo = f"delete {path} (or write the plan again for this video)"
    written_for = data.get("video") if isinstance(data, dict) else None
    if written_for is not None:
        if not isinstance(written_for, dict) or not {"size", "sha256"} <= set(written_for):
            raise ValueError(f"edit plan: 'video' must hold the size and sha256 of its video, got {written_for!r}")
        now = {"size": os.path.getsize(video)}
        if now["size"] == written_for["size"]:
            now = video_fingerprint(video)
        if now.get("sha256") != written_for["sha256"]:
            raise ValueError(
                f"stale: written for another {video} ({_describe(written_for)}; the file now: "
                f"{_describe(now) if 'sha256' in now else str(now['size']) + ' bytes'}): the video was replaced "
                f"after its plan was written; {redo}"
            )
    elif os.path.getmtime(video) > os.path.getmtime(path) + _MTIME_SLACK_S:
        raise ValueError(
            f"stale: {video} is newer than its plan, which has no fingerprint of the video (an older facedit "
            f"wrote it), so the video was probably replaced after the plan was written; {redo}"
        )
    return EditPlan.from_dict(data)

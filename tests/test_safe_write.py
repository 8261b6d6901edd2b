"""atomic_output: a finished output replaces the old one with a normal file mode; a failed one leaves it."""

from __future__ import annotations

import os
import stat

import pytest

from facedit.video.safe_write import atomic_output


def test_finished_output_gets_the_mode_a_plain_open_would_give(tmp_path):
    out = tmp_path / "edit.mp4"
    old = os.umask(0o027)
    try:
        with atomic_output(out) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"new")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # not mkstemp's 0o600
    assert not [p for p in tmp_path.iterdir() if p.name != "edit.mp4"]


def test_failed_write_keeps_the_previous_output_and_leaves_no_partial(tmp_path):
    out = tmp_path / "edit.mp4"
    out.write_bytes(b"previous")
    with pytest.raises(OSError, match="disk full"):
        with atomic_output(out) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half")
            raise OSError(28, "disk full")
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["edit.mp4"]

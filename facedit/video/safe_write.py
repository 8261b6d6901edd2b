"""Writing an output file so that a failed or interrupted run never damages the input or a previous output.

The file is written under a temporary name beside the target and renamed over it only when complete.
SIGTERM is turned into an exception while a write runs (in the main thread), so it cleans up like Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from collections.abc import Iterator

__all__ = ["Interrupted", "atomic_output", "check_output_path"]


class Interrupted(KeyboardInterrupt):
    """SIGTERM arrived while an output file was being written."""


def check_output_path(out: str | os.PathLike, *inputs: str | os.PathLike | None) -> str:
    """``out`` as a string; raises before anything is opened when it is (or resolves to) one of ``inputs``."""
    out = os.fspath(out)
    real_out = os.path.realpath(out)
    for item in inputs:
        if item is None:
            continue
        item = os.fspath(item)
        same = os.path.realpath(item) == real_out
        if not same and os.path.exists(out) and os.path.exists(item):
            same = os.path.samefile(out, item)
        if same:
            raise ValueError(f"out: {out} is the input file {item}; write the edit to another path")
    if os.path.isdir(out):
        raise ValueError(f"out: {out} is a folder; give a file name such as {os.path.join(out, 'edited.mp4')}")
    return out


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        raise Interrupted(f"signal {signum} while writing")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _new_file_mode() -> int:
    """The mode open() gives a new file (0o666 less the umask); mkstemp's 0o600 would hide outputs from
    the web server, the other users of a shared render box, or the user's own file manager."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_output(out: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``out`` (same extension); on success it replaces ``out``, else it is removed.

    The folder of ``out`` is created when missing."""
    out = os.fspath(out)
    folder, name = os.path.split(os.path.abspath(out))
    stem, ext = os.path.splitext(name)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".partial{ext}", dir=folder)
    except OSError as err:  # read-only or missing mount, a file where a folder should be, no permission
        raise type(err)(err.errno, f"out: cannot write {out}: the folder {folder} cannot take a new file "
                        f"({err.strerror}); choose a writable folder") from err  # fmt: skip
    os.close(fd)
    existed = os.path.exists(out)
    try:
        with _sigterm_raises():
            yield tmp
            os.chmod(tmp, _new_file_mode())
            os.replace(tmp, out)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        if isinstance(err, OSError) and err.filename == tmp:  # disk full, I/O error: about the output, not tmp
            kept = f"the previous {out} is kept as it was" if existed else f"no {out} was left behind"
            raise OSError(err.errno, f"out: writing {out} failed ({err.strerror}); {kept}") from err
        raise

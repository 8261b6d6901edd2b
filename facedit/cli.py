"""Errors on the command line: one line naming the input, the traceback only with ``--debug``."""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["check_device", "error_line", "run_reporting"]

# Errors whose message is the whole story; others get a pointer to --debug.
_SELF_EXPLAINED = (ValueError, OSError, ImportError, ConnectionError)


def error_line(error: BaseException) -> str:
    """One line for the user: the message (its first line when long listings follow), never a traceback."""
    text = str(error).strip() or type(error).__name__
    if not isinstance(error, (ValueError, OSError)) and type(error).__name__ not in text:
        text = f"{type(error).__name__}: {text}"
    text = " ".join(text.split())
    return text if len(text) <= 1500 else text[:1500] + " ..."


def run_reporting(run: Callable[[], int], debug: bool, prefix: str = "error", error_code: int = 1) -> int:
    """``run()``'s exit code; any exception becomes one line on stderr and ``error_code`` (``debug``: re-raised)."""
    try:
        return run()
    except Exception as error:  # every failure ends as one line; --debug shows where it came from
        if debug:
            raise
        print(f"{prefix}: {error_line(error)}", file=sys.stderr)
        if not isinstance(error, _SELF_EXPLAINED):
            print("(run again with --debug for the traceback)", file=sys.stderr)
        return error_code


def check_device(device: str) -> None:
    """Refuse a device this torch build cannot use before any model is loaded (torch would assert later)."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"--device: {device!r} is not a device; expected cpu, cuda, cuda:N or mps") from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: this torch build sees no CUDA GPU; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"--device {device}: Apple's MPS is not available here; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device: {device!r} is not supported; expected cpu, cuda, cuda:N or mps")

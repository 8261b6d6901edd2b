"""Errors on the command line: one line naming the input, the traceback only with ``--debug``."""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["error_line", "run_reporting"]

# Errors whose message is the whole story; others get a pointer to --debug.
_SELF_EXPLAINED = (ValueError, OSError, ImportError, ConnectionError)


def error_line(error: BaseException) -> str:
    """One line for the user: the message (its first line when long listings follow), never a traceback."""
    text = str(error).strip() or type(error).__name__
    if not isinstance(error, (ValueError, OSError)) and type(error).__name__ not in text:
        text = f"{type(error).__name__}: {text}"
    text = " ".join(text.split())
    return text if len(text) <= 1500 else text[:1500] + " ..."


def run_reporting(run: Callable[[], int], debug: bool, prefix: str = "error") -> int:
    """``run()``'s exit code; any exception becomes one line on stderr and exit code 1 (``debug``: re-raised)."""
    try:
        return run()
    except Exception as error:  # every failure ends as one line; --debug shows where it came from
        if debug:
            raise
        print(f"{prefix}: {error_line(error)}", file=sys.stderr)
        if not isinstance(error, _SELF_EXPLAINED):
            print("(run again with --debug for the traceback)", file=sys.stderr)
        return 1

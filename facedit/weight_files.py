"""Reading weight files and model folders so that a damaged, truncated or foreign file is an error naming it.

safetensors, pickle and transformers raise their own types (SafetensorError, UnpicklingError, OSError, ...)
with messages that do not say which file or what it should have been; these turn them into one ValueError
that does.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _reason(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def read_state_dict(path: str | os.PathLike, expected: str) -> dict[str, Any]:
    """The content of a ``.safetensors`` file, or of a ``torch.load(weights_only=True)`` file that holds a dict.

    ``expected`` says what the file should be (it ends the error message)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as err:  # SafetensorError, OSError: truncated, foreign or unreadable files
            raise ValueError(f"{path}: not a readable safetensors file ({_reason(err)}); expected {expected}") from err
    import torch

    try:
        content = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError (code-running or damaged pickle), truncated zip, not torch
        raise ValueError(
            f"{path}: cannot be read with torch.load(weights_only=True) ({_reason(err)}); expected {expected}"
        ) from err
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected {expected}, found a {type(content).__name__}")
    return content


def read_json_object(path: str | os.PathLike, expected: str = "a JSON object") -> dict[str, Any]:
    """A JSON file holding an object; invalid JSON is an error naming the file, the line and the column."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); expected {expected}"
        ) from err
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err.reason}); expected {expected}") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: found a JSON {type(data).__name__}; expected {expected}")
    return data


@contextlib.contextmanager
def named_load_errors(where: str | os.PathLike, expected: str) -> Iterator[None]:
    """Any error of the loading code run inside (transformers, json, safetensors) as a ValueError naming ``where``
    and what was ``expected`` there; a missing package stays an ImportError."""
    try:
        yield
    except ImportError:
        raise
    except Exception as err:
        raise ValueError(f"{os.fspath(where)}: cannot be loaded ({_reason(err)}); expected {expected}") from err

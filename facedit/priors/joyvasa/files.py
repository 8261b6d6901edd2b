"""Strict reading of JoyVASA's published files: nothing in them is executed.

- ``motion_generator/motion_generator_hubert_chinese.pt`` is ``torch.save({"args": argparse.Namespace, "model":
  state_dict, "iter": int})`` from JoyVASA's ``train.py``; ``args.data_root`` is a ``pathlib`` path. It loads with
  ``torch.load(weights_only=True)``, admitting only ``argparse.Namespace`` and the ``pathlib`` path classes (read
  back as plain strings) besides the tensor types torch always admits.
- ``motion_template/motion_template.pkl`` is a plain pickle of a dict of numpy arrays (per-dimension mean, std, min,
  max of exp, scale, t, pitch, yaw, roll...). A restricted unpickler admits only numpy's array/dtype/scalar
  reconstructors and plain containers.
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

TEMPLATE_KEYS = (
    "mean_exp", "std_exp", "min_scale", "max_scale", "min_t", "max_t", "min_pitch", "max_pitch", "min_yaw",
    "max_yaw", "min_roll", "max_roll", "mean_scale",
)  # fmt: skip
"""The template entries the motion conversion reads (the file holds more: R, lip and eye statistics)."""


class _PathString(str):
    """Stand-in for a pickled ``pathlib`` path: ``PosixPath('data')`` is called with its parts; keep the text."""

    def __new__(cls, *parts: str) -> _PathString:
        return str.__new__(cls, "/".join(str(p) for p in parts))


_PATH_GLOBALS = [(_PathString, f"pathlib.{name}") for name in ("PosixPath", "WindowsPath", "PurePosixPath",
                                                                 "PureWindowsPath", "Path")]  # fmt: skip


def read_generator(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(args as a plain dict, state dict) of a JoyVASA motion generator ``.pt``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"JoyVASA motion generator not found: {path}")
    try:
        with torch.serialization.safe_globals([argparse.Namespace, *_PATH_GLOBALS]):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = str(err).split("WeightsUnpickler error:")[-1].strip().split(". ")[0]
        raise ValueError(
            f"{path}: refused, it holds more than a JoyVASA motion generator may (tensors, argparse.Namespace, "
            f"paths): {reason}"
        ) from None
    except Exception as err:  # a truncated or foreign file: zip, EOF and pickle errors without the file's name
        raise ValueError(f"{path}: cannot be read with torch.load(weights_only=True) ({type(err).__name__}: "
                         f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}); expected JoyVASA's "
                         "motion generator checkpoint (motion_generator/*.pt)") from err  # fmt: skip
    if not isinstance(data, dict) or "model" not in data or "args" not in data:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path}: expected JoyVASA's {{'args', 'model', 'iter'}} checkpoint, found {keys}")
    args = data["args"]
    args = dict(vars(args)) if isinstance(args, argparse.Namespace) else args
    if not isinstance(args, dict):
        raise ValueError(f"{path}: 'args' must be an argparse.Namespace or dict, got {type(args).__name__}")
    state = data["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: 'model' must be a state dict of tensors")
    return args, dict(state)


_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}
_BUILTINS = {("collections", "OrderedDict"), ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple")}


class _TemplateUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, name: str) -> None:
        super().__init__(file)
        self._name = name

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS or (module, name) in _BUILTINS or module.startswith("numpy.dtypes"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"{self._name}: refuses {module}.{name}; a JoyVASA motion template holds only numpy arrays in a dict"
        )


def read_template(path: str | Path) -> dict[str, np.ndarray]:
    """The motion template's statistics as float64 arrays, strictly (numpy and plain containers only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"JoyVASA motion template not found: {path}")
    with open(path, "rb") as f:
        try:
            data = _TemplateUnpickler(f, str(path)).load()
        except pickle.UnpicklingError as err:
            raise ValueError(str(err)) from err
        except Exception as err:  # a truncated or foreign file: say which file
            raise ValueError(f"{path}: not a readable JoyVASA motion template ({type(err).__name__}: {err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of numpy arrays, got {type(data).__name__}")
    missing = [k for k in TEMPLATE_KEYS if k not in data]
    if missing:
        raise ValueError(f"{path}: the motion template lacks {missing}")
    out = {}
    for key in TEMPLATE_KEYS:
        value = np.asarray(data[key], dtype=np.float64).reshape(-1)
        if not np.isfinite(value).all():
            raise ValueError(f"{path}: template entry {key} has non-finite values")
        out[key] = value
    sizes = {"mean_exp": 63, "std_exp": 63, "min_t": 3, "max_t": 3}
    for key, size in sizes.items():
        if out[key].size != size:
            raise ValueError(f"{path}: template entry {key} must have {size} values, got {out[key].size}")
    for key in TEMPLATE_KEYS:
        if key not in sizes and out[key].size != 1:
            raise ValueError(f"{path}: template entry {key} must have 1 value, got {out[key].size}")
    return out

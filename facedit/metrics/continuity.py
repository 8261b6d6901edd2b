"""Boundary continuity of an edited video: photometric (P_continuity) and motion (M_continuity).

The paper (FacEDiT, sec. 4) defines both only in words: pixel-intensity change (resp. optical-flow
magnitude) at the edit boundaries, comparing "differences between adjacent original frames and between
original and edited frames"; lower is better. Fig. 4 shows the flow between the generated frame T and
the original frame T+1 next to the flow between the original frames T and T+1. The exact formulas
chosen here:

A boundary is one transition of the edited video, between frames ``E[k-1]`` and ``E[k]`` where generated
and unedited frames meet, paired with the transition ``O[k'-1] -> O[k']`` of the original video at the
same place of the unedited content. For an edit whose original span is frames ``[s', e')`` and whose
edited span is ``[s, e)`` (prefix unchanged, suffix shifted):

- start boundary: ``k = s``, ``k' = s'``   (last unedited frame -> first edited frame)
- end boundary:   ``k = e``, ``k' = e'``   (last edited frame -> first unedited frame)

An insertion has ``s' == e'`` (both boundaries refer to the same natural original transition); a
deletion has ``s == e`` (the one edited transition is compared with the original transitions at both
ends of the deleted span). A boundary whose frames would fall outside either video (an edit at the very
start or end) is left out and :attr:`ContinuityScore.boundaries` says how many were used.

With ``D_E = |E[k] - E[k-1]|`` and ``D_O = |O[k'] - O[k'-1]|`` per pixel and channel in 0..255 units::

    P_b = mean over pixels and channels of | D_E - D_O |

With ``F_E`` the optical flow from ``E[k-1]`` to ``E[k]`` and ``F_O`` from ``O[k'-1]`` to ``O[k']``, and
``|F|`` the per-pixel flow magnitude in pixels of the full-resolution frame::

    M_b = mean over pixels of | |F_E| - |F_O| |

``P_continuity`` and ``M_continuity`` are the means of ``P_b`` and ``M_b`` over the sample's
boundaries (NaN when it has none). Both are 0 for an edited video identical to the original around its
boundaries, symmetric in the roles of the two videos, and grow with the size of a jump at a seam.
The benchmark tables average them over samples.

Optical flow: OpenCV DIS (no downloads, the default) or torchvision RAFT-large (the paper's choice)
when torchvision and its weights are available. Values from the two differ; report which was used.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..weight_files import named_load_errors, read_state_dict

FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(frame_a, frame_b) RGB [H, W, 3] float32 0..1 -> flow [H, W, 2] in pixels, from a to b."""


class FrameSource(Protocol):
    """Anything that gives frame ``i`` as RGB [H, W, 3] (float 0..1 or uint8): a [T, H, W, 3] array or a dict."""

    def __getitem__(self, index: int) -> Any: ...


@dataclass(frozen=True)
class Boundary:
    """Edited transition ``E[edited_index - 1] -> E[edited_index]`` and its original counterpart
    ``O[original_index - 1] -> O[original_index]``."""

    edited_index: int
    original_index: int


@dataclass(frozen=True)
class ContinuityScore:
    value: float
    per_boundary: tuple[float, ...]

    @property
    def boundaries(self) -> int:
        return len(self.per_boundary)


def edit_boundaries(
    original_span: tuple[int, int],
    edited_span: tuple[int, int],
    original_frames: int,
    edited_frames: int,
) -> list[Boundary]:
    """The start and end boundaries of one edit (frame spans are ``[start, end)``), as documented above."""
    (os_, oe), (es, ee) = original_span, edited_span
    if not 0 <= os_ <= oe <= original_frames:
        raise ValueError(f"original_span: expected 0 <= start <= end <= {original_frames}, got {original_span}")
    if not 0 <= es <= ee <= edited_frames:
        raise ValueError(f"edited_span: expected 0 <= start <= end <= {edited_frames}, got {edited_span}")
    out = []
    for k, kp in ((es, os_), (ee, oe)):
        if 1 <= k < edited_frames and 1 <= kp < original_frames:
            out.append(Boundary(k, kp))
    return out


def _frame(source: FrameSource, index: int, name: str) -> np.ndarray:
    try:
        frame = source[index]
    except (IndexError, KeyError) as exc:
        raise ValueError(f"{name}: frame {index} is not available") from exc
    if hasattr(frame, "detach"):
        frame = frame.detach().cpu().numpy()
    frame = np.asarray(frame)
    frame = frame.astype(np.float32) / 255.0 if frame.dtype == np.uint8 else frame.astype(np.float32, copy=False)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"{name}[{index}]: expected an RGB frame [H, W, 3], got shape {frame.shape}")
    return frame


def _pair(edited: FrameSource, original: FrameSource, b: Boundary) -> tuple[np.ndarray, ...]:
    e0, e1 = _frame(edited, b.edited_index - 1, "edited"), _frame(edited, b.edited_index, "edited")
    o0, o1 = _frame(original, b.original_index - 1, "original"), _frame(original, b.original_index, "original")
    if e0.shape != o0.shape:
        raise ValueError(
            f"edited and original frames differ in size ({e0.shape[:2]} vs {o0.shape[:2]}); "
            "continuity compares them pixel by pixel, so evaluate at the original resolution"
        )
    return e0, e1, o0, o1


def _score(values: list[float]) -> ContinuityScore:
    return ContinuityScore(float(np.mean(values)) if values else math.nan, tuple(values))


def photometric_continuity(
    edited: FrameSource, original: FrameSource, boundaries: Sequence[Boundary]
) -> ContinuityScore:
    """P_continuity in 0..255 intensity units (lower is better; 0 when the seams change like the original)."""
    values = []
    for b in boundaries:
        e0, e1, o0, o1 = _pair(edited, original, b)
        d_e = np.abs(e1 - e0)
        d_o = np.abs(o1 - o0)
        values.append(float(np.abs(d_e - d_o).mean() * 255.0))
    return _score(values)


def motion_continuity(
    edited: FrameSource,
    original: FrameSource,
    boundaries: Sequence[Boundary],
    flow: FlowFn | None = None,
    flow_max_side: int | None = None,
) -> ContinuityScore:
    """M_continuity in pixels (lower is better). ``flow`` defaults to :class:`DISFlow`.

    ``flow_max_side`` computes the flow on frames downscaled so that their longer side is at most this
    many pixels (faster on 1080p); magnitudes are scaled back to full-resolution pixels.
    """
    flow = flow if flow is not None else DISFlow()
    values = []
    for b in boundaries:
        e0, e1, o0, o1 = _pair(edited, original, b)
        m_e = flow_magnitude(flow, e0, e1, flow_max_side)
        m_o = flow_magnitude(flow, o0, o1, flow_max_side)
        values.append(float(np.abs(m_e - m_o).mean()))
    return _score(values)


def flow_magnitude(flow: FlowFn, a: np.ndarray, b: np.ndarray, max_side: int | None = None) -> np.ndarray:
    """Per-pixel magnitude [h, w] of the flow from ``a`` to ``b`` in full-resolution pixels."""
    import cv2

    scale = 1.0
    if max_side is not None:
        if max_side < 8:
            raise ValueError(f"flow_max_side: expected at least 8 pixels, got {max_side}")
        scale = min(1.0, max_side / max(a.shape[:2]))
    if scale < 1.0:
        size = (max(1, round(a.shape[1] * scale)), max(1, round(a.shape[0] * scale)))
        a = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
        b = cv2.resize(b, size, interpolation=cv2.INTER_AREA)
    f = np.asarray(flow(a, b), dtype=np.float32)
    if f.shape != (*a.shape[:2], 2):
        raise ValueError(f"flow function returned shape {f.shape}, expected {(*a.shape[:2], 2)}")
    return np.sqrt((f**2).sum(-1)) / scale


class DISFlow:
    """OpenCV's DIS optical flow on grey frames; no model files. ``preset``: 'ultrafast', 'fast', 'medium'."""

    _PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}

    def __init__(self, preset: str = "medium"):
        if preset not in self._PRESETS:
            raise ValueError(f"preset: expected one of {sorted(self._PRESETS)}, got {preset!r}")
        self.preset = preset
        self._dis = None

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        import cv2

        if self._dis is None:
            self._dis = cv2.DISOpticalFlow_create(self._PRESETS[self.preset])
        ga = cv2.cvtColor(_to_uint8(a), cv2.COLOR_RGB2GRAY)
        gb = cv2.cvtColor(_to_uint8(b), cv2.COLOR_RGB2GRAY)
        return self._dis.calc(ga, gb, None)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(x, np.float32) * 255.0), 0, 255).astype(np.uint8)


class RAFTFlow:
    """torchvision's RAFT-large (the paper's flow) with weights from a local file.

    ``weights_path``: a RAFT-large state dict (``.pth`` loaded with ``weights_only=True``, or
    ``.safetensors``), e.g. torchvision's ``raft_large_C_T_SKHT_V2-ff5fadd5.pth``. When None, that file is
    looked up in torch hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``); nothing is downloaded.
    """

    DEFAULT_FILE = "raft_large_C_T_SKHT_V2-ff5fadd5.pth"

    def __init__(self, weights_path: str | None = None, device: str = "cpu", num_flow_updates: int = 12):
        try:
            import torch
            from torchvision.models.optical_flow import raft_large
        except ImportError as exc:
            raise ImportError(
                "RAFT flow needs torchvision (pip install torchvision matching your torch build); "
                "or use the default flow='dis', which needs nothing extra"
            ) from exc
        if weights_path is None:
            hub = os.path.join(torch.hub.get_dir(), "checkpoints", self.DEFAULT_FILE)
            if not os.path.isfile(hub):
                raise FileNotFoundError(
                    f"RAFT weights not found at {hub}; download torchvision's Raft_Large_Weights "
                    "(C_T_SKHT_V2) there or pass weights_path"
                )
            weights_path = hub
        if not os.path.isfile(weights_path):
            raise FileNotFoundError(f"RAFT weights file not found: {weights_path}")
        state = read_state_dict(weights_path, f"a RAFT-large state dict (torchvision's {self.DEFAULT_FILE})")
        model = raft_large(weights=None, progress=False)
        with named_load_errors(weights_path, f"a RAFT-large state dict (torchvision's {self.DEFAULT_FILE})"):
            model.load_state_dict(state)
        self.model = model.eval().to(device)
        self.device = device
        self.num_flow_updates = num_flow_updates

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        h, w = a.shape[:2]
        ph, pw = (-h) % 8, (-w) % 8

        def prep(x: np.ndarray) -> torch.Tensor:
            t = torch.from_numpy(np.ascontiguousarray(x, np.float32)).permute(2, 0, 1)[None] * 2 - 1
            return F.pad(t, (0, pw, 0, ph), mode="replicate").to(self.device)

        with torch.inference_mode():
            flows = self.model(prep(a), prep(b), num_flow_updates=self.num_flow_updates)
        return flows[-1][0, :, :h, :w].permute(1, 2, 0).cpu().numpy()


def make_flow(name: str = "dis", weights_path: str | None = None, device: str = "cpu") -> FlowFn:
    """``"dis"`` (default, OpenCV) or ``"raft"`` (torchvision, local weights)."""
    if name == "dis":
        return DISFlow()
    if name == "raft":
        return RAFTFlow(weights_path, device=device)
    raise ValueError(f"flow: expected 'dis' or 'raft', got {name!r}")

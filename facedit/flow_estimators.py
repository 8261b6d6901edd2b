"""Dense optical flow estimators for frame resampling.

A flow estimator is any callable ``estimator(img0, img1) -> flow`` where ``img0`` and ``img1`` are
float32 RGB images [H, W, 3] in 0..1 and ``flow`` is float32 [H, W, 2] in pixels (x, y), pointing from
``img0`` to ``img1``: ``img0[y, x] ~= img1[y + flow[y, x, 1], x + flow[y, x, 0]]``.

The default is OpenCV's DIS (no weights to download). ``TorchFlowEstimator`` adapts a torch flow network
with RAFT's calling convention (torchvision's ``raft_large`` / ``raft_small`` for example).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

DIS_PRESETS = ("ultrafast", "fast", "medium")
MIN_FLOW_SIDE = 16  # DIS refuses images whose sides are both under 12 pixels; keep a margin


@runtime_checkable
class FlowEstimator(Protocol):
    def __call__(self, img0: np.ndarray, img1: np.ndarray) -> np.ndarray: ...


def _gray_u8(img: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(np.ascontiguousarray(img, dtype=np.float32), cv2.COLOR_RGB2GRAY)
    return np.clip(gray * 255.0 + 0.5, 0, 255).astype(np.uint8)


class DISFlow:
    """OpenCV DIS optical flow on grayscale uint8 (Kroeger et al. 2016).

    ``preset`` trades speed for accuracy: 'ultrafast' < 'fast' < 'medium'. The OpenCV object keeps
    buffers between calls, so one instance should not be shared across threads.
    """

    def __init__(self, preset: str = "medium"):
        if preset not in DIS_PRESETS:
            raise ValueError(f"DIS preset must be one of {DIS_PRESETS}, got {preset!r}")
        self.preset = preset
        code = {
            "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
            "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
        }[preset]
        self._dis = cv2.DISOpticalFlow_create(code)

    def __call__(self, img0: np.ndarray, img1: np.ndarray) -> np.ndarray:
        return self._dis.calc(_gray_u8(img0), _gray_u8(img1), None)

    def __repr__(self) -> str:
        return f"DISFlow(preset={self.preset!r})"


class TorchFlowEstimator:
    """Adapts a torch flow network called as ``model(img0, img1)`` on [1, 3, H, W] batches.

    The network may return a flow [1, 2, H, W] or a list of refinements (RAFT), of which the last is
    used. Images are scaled from 0..1 to ``input_range`` and padded (replicate) to a multiple of
    ``pad_to``; the flow is cropped back. The caller builds and loads the network (weights, device,
    dtype); nothing is downloaded here.
    """

    def __init__(
        self,
        model: Any,
        *,
        device: Any = "cpu",
        dtype: Any = None,
        input_range: tuple[float, float] = (-1.0, 1.0),
        pad_to: int = 8,
    ):
        if pad_to < 1:
            raise ValueError(f"pad_to must be >= 1, got {pad_to}")
        self.model = model
        self.device = device
        self.dtype = dtype
        self.input_range = input_range
        self.pad_to = pad_to

    def __call__(self, img0: np.ndarray, img1: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        h, w = img0.shape[:2]
        ph, pw = -h % self.pad_to, -w % self.pad_to
        lo, hi = self.input_range
        dtype = self.dtype or torch.float32

        def prep(img: np.ndarray) -> torch.Tensor:
            x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
            x = x * (hi - lo) + lo
            if ph or pw:
                x = F.pad(x, (0, pw, 0, ph), mode="replicate")
            return x.to(device=self.device, dtype=dtype)

        with torch.inference_mode():
            out = self.model(prep(img0), prep(img1))
        if isinstance(out, (list, tuple)):
            out = out[-1]
        if out.ndim != 4 or out.shape[:2] != (1, 2):
            raise ValueError(f"flow model must return [1, 2, H, W] (or a list of them), got {tuple(out.shape)}")
        return out[0, :, :h, :w].permute(1, 2, 0).float().cpu().numpy()


def check_flow(flow: Any, shape: tuple[int, int], estimator: Any) -> np.ndarray:
    """The estimator's output as float32 [H, W, 2], or a clear error naming the estimator."""
    flow = np.asarray(flow)
    if flow.shape != (*shape, 2):
        raise ValueError(f"flow estimator {estimator!r} returned shape {flow.shape}, expected {(*shape, 2)}")
    if not np.isfinite(flow).all():
        raise ValueError(f"flow estimator {estimator!r} returned NaN or infinite flow")
    return np.ascontiguousarray(flow, dtype=np.float32)

"""The LivePortrait model object: the five networks plus the few operations FacEDiT needs from them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from .config import LivePortraitConfig
from .fast import DTYPE_OF, FastPlan, fast_plan, prepare_fast, resolve_precision
from .keypoints import headpose_to_degrees, rotation_matrix
from .networks import NETWORK_NAMES, build_network
from .weights import load_networks

DTYPES = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "fp16": torch.float16,
    "float16": torch.float16,
    "half": torch.float16,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
}


def resolve_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype}")
        return dtype
    if isinstance(dtype, str) and dtype.lower() in DTYPES:
        return DTYPES[dtype.lower()]
    raise ValueError(f"dtype must be one of {sorted(DTYPES)} or a torch float dtype, got {dtype!r}")


class LivePortrait(nn.Module):
    """Appearance extractor F, motion extractor M, warping module W, SPADE generator G and (optional) stitching S.

    Inputs are 256x256 RGB crops in [0, 1] laid out (B, 3, 256, 256); keypoint outputs are float32 whatever the
    precision. Built in float32; :meth:`prepare` switches to another precision mode (see ``fast.py``).
    """

    def __init__(
        self,
        cfg: LivePortraitConfig,
        appearance_feature_extractor: nn.Module,
        motion_extractor: nn.Module,
        warping_module: nn.Module,
        spade_generator: nn.Module,
        stitching: nn.Module | None = None,
    ):
        super().__init__()
        self.cfg = cfg
        self.appearance_feature_extractor = appearance_feature_extractor
        self.motion_extractor = motion_extractor
        self.warping_module = warping_module
        self.spade_generator = spade_generator
        self.stitching = stitching
        self.precision = "fp32"
        self.fast_plan: FastPlan | None = None
        """How 'fast' runs warp + decode (set by prepare('fast')); None in the other modes."""

    @classmethod
    def random(
        cls,
        cfg: LivePortraitConfig | None = None,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype | str = torch.float32,
        stitching: bool = True,
    ) -> LivePortrait:
        """Randomly initialised networks (tests, benchmarks); seed torch beforehand for reproducibility.

        dtype: a torch dtype or a precision name ('fp32', 'fp16', 'bf16', 'fast'), as in :meth:`prepare`.
        """
        cfg = cfg or LivePortraitConfig()
        nets = [build_network(name, cfg) for name in NETWORK_NAMES[:4]]
        stitch = build_network(NETWORK_NAMES[4], cfg) if stitching else None
        model = cls(cfg, *nets, stitching=stitch).to(device=device).eval().requires_grad_(False)
        return model.prepare(dtype)

    @torch.no_grad()
    def prepare(
        self,
        precision: str | torch.dtype,
        *,
        device: torch.device | str | None = None,
        decode_dtype: torch.dtype | None = None,
    ) -> LivePortrait:
        """Switch the float32 networks to a precision mode in place, once (rounding cannot be undone); returns self.

        fp32: nothing changes. fp16 / bf16: F, W and G in that dtype, M and S stay float32. fast: F, M and S
        float32, W and G folded and laid out for speed in the dtype :func:`~.fast.fast_plan` picks for
        ``device`` (where warp + decode will run; default: where the networks are now). ``decode_dtype`` forces
        fast's weight dtype (tests: bf16 numerics on a CPU without native bf16).
        """
        precision = resolve_precision(precision)
        if precision == self.precision == "fp32":
            return self
        if self.precision != "fp32":
            raise ValueError(f"the networks are already prepared for {self.precision!r}; load them again")
        if precision == "fast":
            plan = fast_plan(device if device is not None else self.device)
            if decode_dtype is not None:
                plan = FastPlan(decode_dtype, plan.autocast_dtype, f"warp + decode weights forced to {decode_dtype}")
            decode = plan.weight_dtype
            self.fast_plan = plan
        else:
            decode = DTYPE_OF[precision]
            self.appearance_feature_extractor.to(decode)
        prepare_fast(self.warping_module, decode)
        prepare_fast(self.spade_generator, decode)
        self.precision = precision
        return self

    @property
    def device(self) -> torch.device:
        return self.spade_generator.fc.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the warping module's and decoder's weights."""
        return self.spade_generator.fc.weight.dtype

    def _input(self, images: torch.Tensor, net: nn.Module) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got shape {tuple(images.shape)}")
        return images.to(device=self.device, dtype=next(net.parameters()).dtype)

    @torch.no_grad()
    def appearance(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, 256, 256) -> feature volume (B, 32, 16, 64, 64) in the appearance extractor's dtype."""
        return self.appearance_feature_extractor(self._input(images, self.appearance_feature_extractor))

    @torch.no_grad()
    def motion(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 3, 256, 256) -> float32 dict: kp (B, K, 3), exp (B, K, 3), t (B, 3), scale (B,), pitch/yaw/roll (B,)
        in degrees and rot (B, 3, 3). The motion extractor runs in float32 in every precision mode."""
        raw = {k: v.float() for k, v in self.motion_extractor(self._input(images, self.motion_extractor)).items()}
        b = raw["kp"].shape[0]
        out = {
            "kp": raw["kp"].reshape(b, -1, 3),
            "exp": raw["exp"].reshape(b, -1, 3),
            "t": raw["t"],
            "scale": raw["scale"].reshape(b),
        }
        for key in ("pitch", "yaw", "roll"):
            out[key] = headpose_to_degrees(raw[key])
        out["rot"] = rotation_matrix(out["pitch"], out["yaw"], out["roll"])
        return out

    @torch.no_grad()
    def stitch(self, kp_source: torch.Tensor, kp_driving: torch.Tensor) -> torch.Tensor:
        if self.stitching is None:
            raise ValueError(
                "stitching was requested but no stitching_retargeting_module was loaded; "
                "put the file in the weights folder or render with stitching=False"
            )
        return self.stitching.stitch(kp_source.to(self.device), kp_driving.to(self.device))

    @contextmanager
    def _decode_context(self) -> Iterator[None]:
        """fast on CUDA: float16 autocast with TF32 for what stays float32; elsewhere nothing."""
        if self.precision != "fast" or self.device.type != "cuda":
            yield
            return
        cuda, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
        before = cuda.allow_tf32, cudnn.allow_tf32
        cuda.allow_tf32 = cudnn.allow_tf32 = True
        try:
            with torch.autocast("cuda", dtype=self.fast_plan.autocast_dtype or torch.float16):
                yield
        finally:
            cuda.allow_tf32, cudnn.allow_tf32 = before

    @torch.no_grad()
    def warp_decode(self, feature: torch.Tensor, kp_source: torch.Tensor, kp_driving: torch.Tensor) -> torch.Tensor:
        """Warp F's features from source to driving keypoints and decode: -> (B, 3, 512, 512) float32 in [0, 1].

        In the prepared modes the features keep their dtype up to the grid sampling (float32 in 'fast'); the
        convolutions cast what they read.
        """
        feature = feature.to(self.device) if self.precision != "fp32" else feature.to(self.device, self.dtype)
        with self._decode_context():
            warped = self.warping_module(
                feature,
                kp_driving=kp_driving.to(self.device, torch.float32),
                kp_source=kp_source.to(self.device, torch.float32),
            )
            return self.spade_generator(warped["out"]).float()


def load_liveportrait(
    folder: str | Path,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | str = torch.float32,
    download: str | None = None,
    config: LivePortraitConfig | None = None,
    require_stitching: bool = False,
    progress: Callable[[int, int], None] | None = None,
    compute_device: torch.device | str | None = None,
) -> LivePortrait:
    """Load the networks from ``folder`` (either file layout, see ``weights.py``), strictly.

    dtype: a torch dtype or a precision name, 'fp32', 'fp16', 'bf16' or 'fast' (see :meth:`LivePortrait.prepare`;
    the files are read in float32 and converted once). compute_device: where the networks will run when that is
    not ``device`` (a model kept on the CPU between runs of a GPU graph): it decides how 'fast' runs.

    download: None (never touches the network), 'official' or 'safetensors' to fetch missing files with
    huggingface_hub. The stitching file is optional unless ``require_stitching``.
    """
    resolve_precision(dtype)  # a bad name fails before the files are read
    cfg = config or LivePortraitConfig()
    nets = load_networks(
        folder,
        cfg,
        device=device,
        dtype=torch.float32,
        download=download,
        require_stitching=require_stitching,
        progress=progress,
    )
    return LivePortrait(
        cfg,
        nets["appearance_feature_extractor"],
        nets["motion_extractor"],
        nets["warping_module"],
        nets["spade_generator"],
        stitching=nets["stitching_retargeting_module"],
    ).prepare(dtype, device=compute_device if compute_device is not None else device)

"""WavLM speech features with their exact timing.

Loading (``load_wavlm``) accepts a Hugging Face style folder (``config.json`` + ``model.safetensors`` or
``pytorch_model.bin``, optional ``preprocessor_config.json``) or a single ``.safetensors`` file whose
architecture is read off its tensor shapes (WavLM base / base-plus and large are recognised by name; other
shapes work when the standard conv stack is used). Keys may carry the ``wavlm.`` prefix of a file saved from
``WavLMForCTC`` and the legacy ``weight_g`` / ``weight_v`` names of the positional convolution; task heads
(``lm_head``, ``projector``...) are ignored and listed in ``WavLM.ignored_keys``.

Timing: WavLM's conv stack has a receptive field of R samples and a hop of H samples (400 and 320 for every
released WavLM, computed here from the config). N samples give floor((N - R) / H) + 1 frames; frame j covers
samples [j H, j H + R) and stands at the centre of that span, ``offset_s + j / frame_rate`` with
offset_s = R / 2 / 16000 = 0.0125 s and frame_rate = 16000 / H = 50 Hz.

Long audio is encoded in overlapping windows (attention is quadratic in length) cut on the exact frame grid,
with discarded context at every inner window edge and a linear crossfade between neighbours. The first conv
layer of base / base-plus uses a GroupNorm whose statistics span the whole clip; the chunked path computes
those statistics over the whole clip first (one cheap pass of that conv) so that the conv features of every
window equal those of the whole clip.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio import SPEECH_SAMPLE_RATE, normalize_wave, to_mono
from ..weight_files import read_json_object, read_state_dict

log = logging.getLogger("facedit.speech")

DEFAULT_REPO = "microsoft/wavlm-base-plus"
_STANDARD_KERNELS = (10, 3, 3, 3, 3, 2, 2)
_STANDARD_STRIDES = (5, 2, 2, 2, 2, 2, 2)
_MODEL_PREFIXES = ("feature_extractor.", "feature_projection.", "encoder.", "masked_spec_embed", "adapter.")

# Architecture of the released checkpoints; everything else keeps transformers' WavLMConfig defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "base-plus": dict(
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        feat_extract_norm="group",
        do_stable_layer_norm=False,
        conv_bias=False,
        conv_dim=[512] * 7,
        conv_kernel=list(_STANDARD_KERNELS),
        conv_stride=list(_STANDARD_STRIDES),
        num_conv_pos_embeddings=128,
        num_conv_pos_embedding_groups=16,
        num_buckets=320,
        max_bucket_distance=800,
    ),
    "large": dict(
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        conv_bias=False,
        conv_dim=[512] * 7,
        conv_kernel=list(_STANDARD_KERNELS),
        conv_stride=list(_STANDARD_STRIDES),
        num_conv_pos_embeddings=128,
        num_conv_pos_embedding_groups=16,
        num_buckets=320,
        max_bucket_distance=800,
    ),
}
# The released base / base-plus feature extractors do not normalise the waveform; large does.
_PRESET_NORMALIZE = {"base-plus": False, "large": True}

Progress = Callable[[int, int], None]
LayerChoice = str | int | tuple[int, int]


@dataclass(frozen=True)
class SpeechFeatures:
    """Speech features [N, D] (float32, CPU); frame j stands at ``offset_s + j / frame_rate`` seconds."""

    features: torch.Tensor
    frame_rate: float
    offset_s: float
    duration_s: float

    @property
    def num_frames(self) -> int:
        return int(self.features.shape[0])

    def times(self) -> np.ndarray:
        """Time in seconds of every feature frame (float64 [N])."""
        return self.offset_s + np.arange(self.num_frames, dtype=np.float64) / self.frame_rate


def receptive_field(
    conv_kernel: tuple[int, ...] | list[int], conv_stride: tuple[int, ...] | list[int]
) -> tuple[int, int]:
    """(receptive field, hop) in input samples of a stack of unpadded 1-D convolutions."""
    field, hop = 1, 1
    for kernel, stride in zip(conv_kernel, conv_stride, strict=True):
        field += (kernel - 1) * hop
        hop *= stride
    return field, hop


def frame_count(num_samples: int, field: int = 400, hop: int = 320) -> int:
    """Frames the conv stack gives for ``num_samples`` inputs: floor((N - field) / hop) + 1, at least 0."""
    return max(0, (int(num_samples) - field) // hop + 1)


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    tensors = {}
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
    except Exception as err:  # SafetensorError, OSError: truncated, foreign or unreadable files
        raise ValueError(f"{path}: not a readable safetensors file ({type(err).__name__}: {err})") from err
    return tensors, metadata


def read_weights(path: Path, expected: str = "a WavLM state dict") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    if path.suffix in (".bin", ".pt", ".pth"):
        return read_state_dict(path, expected), {}
    raise ValueError(f"{path}: expected a .safetensors or pytorch_model.bin weights file")


def _clean_state_dict(state: dict[str, torch.Tensor], source: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Strip a ``wavlm.`` prefix, drop task heads, and name the positional conv's weight norm canonically."""
    if not any(k.startswith(("wavlm.", *_MODEL_PREFIXES)) for k in state):
        sample = ", ".join(sorted(state)[:3]) or "no tensors"
        raise ValueError(
            f"{source}: not a WavLM checkpoint, it has no WavLM weights (expected keys such as "
            f"'feature_extractor.conv_layers.0.conv.weight' and 'encoder.layers.0.attention.k_proj.weight'; "
            f"found {sample}, ...)"
        )
    if any(".self_attn." in k for k in state):
        raise ValueError(
            f"{source}: this looks like an original microsoft/unilm (fairseq) WavLM checkpoint; the Hugging Face "
            f"format (keys such as 'encoder.layers.0.attention.k_proj.weight') is needed "
            f"(e.g. microsoft/wavlm-base-plus)"
        )
    if any(k.startswith("wavlm.") for k in state):
        state = {k[len("wavlm.") :] if k.startswith("wavlm.") else k: v for k, v in state.items()}
    kept, ignored = {}, []
    for key, value in state.items():
        if not key.startswith(_MODEL_PREFIXES):
            ignored.append(key)
            continue
        key = key.replace("pos_conv_embed.conv.weight_g", "pos_conv_embed.conv.parametrizations.weight.original0")
        key = key.replace("pos_conv_embed.conv.weight_v", "pos_conv_embed.conv.parametrizations.weight.original1")
        kept[key] = value
    if "feature_projection.projection.weight" not in kept:
        raise ValueError(
            f"{source}: no WavLM weights found (expected keys such as 'feature_projection.projection.weight', "
            f"optionally prefixed 'wavlm.'); first keys: {sorted(state)[:5]}"
        )
    return kept, ignored


def _count(state: dict[str, torch.Tensor], fmt: str) -> int:
    n = 0
    while fmt.format(n) in state:
        n += 1
    return n


def infer_config(state: dict[str, torch.Tensor]) -> tuple[dict[str, Any], str]:
    """Architecture of a cleaned WavLM state dict from its tensor shapes -> (WavLMConfig kwargs, variant name).

    Strides cannot be read off weights: the standard conv kernels (10, 3, 3, 3, 3, 2, 2) imply the standard
    strides (5, 2, 2, 2, 2, 2, 2); other stacks need a config. Pre-norm (``do_stable_layer_norm``) goes with a
    layer-normed conv stack, as in every released WavLM.
    """
    n_conv = _count(state, "feature_extractor.conv_layers.{}.conv.weight")
    kernels = tuple(int(state[f"feature_extractor.conv_layers.{i}.conv.weight"].shape[2]) for i in range(n_conv))
    if kernels != _STANDARD_KERNELS:
        raise ValueError(
            f"conv kernels {kernels} are not WavLM's standard {_STANDARD_KERNELS}; the strides cannot be inferred, "
            f"so load this model from a folder with its config.json"
        )
    layer_normed = "feature_extractor.conv_layers.1.layer_norm.weight" in state
    pos = state["encoder.pos_conv_embed.conv.parametrizations.weight.original1"]
    rel = state["encoder.layers.0.attention.rel_attn_embed.weight"]
    hidden = int(state["feature_projection.projection.weight"].shape[0])
    config = dict(
        hidden_size=hidden,
        num_hidden_layers=_count(state, "encoder.layers.{}.attention.q_proj.weight"),
        num_attention_heads=int(rel.shape[1]),
        intermediate_size=int(state["encoder.layers.0.feed_forward.intermediate_dense.weight"].shape[0]),
        feat_extract_norm="layer" if layer_normed else "group",
        do_stable_layer_norm=layer_normed,
        conv_bias="feature_extractor.conv_layers.0.conv.bias" in state,
        conv_dim=[int(state[f"feature_extractor.conv_layers.{i}.conv.weight"].shape[0]) for i in range(n_conv)],
        conv_kernel=list(kernels),
        conv_stride=list(_STANDARD_STRIDES),
        num_conv_pos_embeddings=int(pos.shape[2]),
        num_conv_pos_embedding_groups=hidden // int(pos.shape[1]),
        num_buckets=int(rel.shape[0]),
        max_bucket_distance=800,
    )
    variant = next(
        (n for n, p in PRESETS.items() if all(config[k] == v for k, v in p.items() if k != "conv_bias")), "custom"
    )
    return config, variant


@contextmanager
def _frozen_group_norm(model: Any, mean: torch.Tensor, var: torch.Tensor) -> Iterator[None]:
    """Temporarily make the first conv layer's GroupNorm use given per-channel statistics."""
    layer = model.feature_extractor.conv_layers[0]
    norm = layer.layer_norm

    class _ChannelNorm(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, L)
            scale = torch.rsqrt(var + norm.eps).to(x.dtype)
            y = (x - mean.to(x.dtype)[:, None]) * scale[:, None]
            return y * norm.weight[:, None] + norm.bias[:, None]

    layer.layer_norm = _ChannelNorm()
    try:
        yield
    finally:
        layer.layer_norm = norm


def _crossfade_weights(start: int, end: int, left_cut: int | None, right_cut: int | None, fade: int) -> np.ndarray:
    """Weight of the window [start, end) for every frame in it.

    Neighbouring windows meet at a cut; across a cut the weights ramp linearly over ``fade`` frames centred
    on it (a hard switch when ``fade`` is 0), so that the weights of all windows sum to 1 on every frame.
    """
    frames = np.arange(start, end, dtype=np.float64)
    weight = np.ones(end - start)
    for cut, rising in ((left_cut, True), (right_cut, False)):
        if cut is None:
            continue
        if fade > 0:
            ramp = np.clip((frames - (cut - fade / 2) + 0.5) / fade, 0.0, 1.0)
        else:
            ramp = (frames >= cut).astype(np.float64)
        weight *= ramp if rising else 1.0 - ramp
    return weight


class WavLM:
    """A loaded WavLM and the facts needed to use it: timing, waveform normalisation, variant."""

    def __init__(
        self,
        model: Any,
        normalize: bool,
        variant: str = "custom",
        ignored_keys: tuple[str, ...] = (),
        source: str = "",
    ) -> None:
        self.model = model.eval()
        self.normalize = bool(normalize)
        self.variant = variant
        self.ignored_keys = tuple(ignored_keys)
        self.source = source
        cfg = model.config
        self.field, self.hop = receptive_field(cfg.conv_kernel, cfg.conv_stride)
        self.sample_rate = SPEECH_SAMPLE_RATE
        self.frame_rate = self.sample_rate / self.hop
        self.offset_s = self.field / 2 / self.sample_rate
        self.num_layers = int(cfg.num_hidden_layers)
        self.hidden_size = int(cfg.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def num_frames(self, num_samples: int) -> int:
        """Feature frames for ``num_samples`` samples at 16 kHz."""
        return frame_count(num_samples, self.field, self.hop)

    def _layer_indices(self, layer: LayerChoice) -> list[int] | None:
        """None for the model's final output; else indices into hidden_states (0 = transformer input)."""
        n = self.num_layers
        if isinstance(layer, str):
            if layer != "last":
                raise ValueError(f"layer: expected 'last', an int in 0..{n} or a (first, last) pair, got {layer!r}")
            return None
        if isinstance(layer, tuple | list):
            if len(layer) != 2:
                raise ValueError(f"layer: a range is (first, last), got {layer!r}")
            first, last = (self._one_layer(v) for v in layer)
            if first > last:
                raise ValueError(f"layer range {layer!r}: first layer is after the last")
            return list(range(first, last + 1))
        return [self._one_layer(layer)]

    def _one_layer(self, value: Any) -> int:
        n = self.num_layers
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"layer: expected an int in 0..{n}, got {value!r}")
        value = int(value) + (n + 1 if value < 0 else 0)
        if not 0 <= value <= n:
            raise ValueError(f"layer {value}: this WavLM has hidden states 0..{n} (0 = transformer input)")
        return value

    def _run(self, wave: torch.Tensor, layers: list[int] | None) -> torch.Tensor:
        """Forward one [1, N] waveform; returns [frames, D] float32 on the model's device."""
        out = self.model(wave, output_hidden_states=layers is not None)
        if layers is None:
            return out.last_hidden_state[0].float()
        # Index n (the last layer) is the model's output: for pre-norm models transformers versions differ on
        # whether hidden_states[n] is layer-normed, last_hidden_state always is.
        states = [out.last_hidden_state if i == self.num_layers else out.hidden_states[i] for i in layers]
        return torch.stack([s[0].float() for s in states]).mean(0)

    def _group_norm_stats(self, wave: torch.Tensor, piece: int = 1 << 16) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and variance of the first conv layer's output over the whole clip, streamed in
        pieces of ``piece`` samples so that memory stays small."""
        conv = self.model.feature_extractor.conv_layers[0].conv
        kernel, stride = conv.kernel_size[0], conv.stride[0]
        n_out = (wave.shape[-1] - kernel) // stride + 1
        step = max(1, piece // stride)
        total = torch.zeros(conv.out_channels, dtype=torch.float64, device=wave.device)
        total_sq = torch.zeros_like(total)
        for p in range(0, n_out, step):
            q = min(n_out, p + step)
            y = conv(wave[:, None, p * stride : (q - 1) * stride + kernel])[0].float()  # (C, q - p)
            total += y.sum(1, dtype=torch.float64)
            total_sq += y.square().sum(1, dtype=torch.float64)
        mean = total / n_out
        var = (total_sq / n_out - mean * mean).clamp_min(0.0)
        return mean.float(), var.float()

    @torch.no_grad()
    def encode(
        self,
        audio: Any,
        sample_rate: int | None = None,
        *,
        layer: LayerChoice = "last",
        chunk_s: float = 20.0,
        context_s: float = 2.0,
        crossfade_s: float = 1.0,
        batch_index: int | None = None,
        progress: Progress | None = None,
        only: Sequence[tuple[float, float]] | None = None,
    ) -> SpeechFeatures:
        """Features of one clip (ComfyUI AUDIO dict or array + sample_rate), any rate and channel count.

        ``layer``: "last" (the model's output), an int k (0 = transformer input, k = output of layer k,
        negatives count from the end) or a (first, last) pair whose hidden states are averaged.
        Clips longer than ``chunk_s`` are encoded in windows of at most ``chunk_s`` seconds; every kept frame
        has at least ``context_s`` seconds of real context on each side, neighbours crossfade over
        ``crossfade_s``. ``progress(done, total)`` is called after every window.

        ``only``: (start_s, end_s) ranges that will be read (an edit's windows). Windows that meet none of them
        are not run and their frames are NaN, so an edit costs the edit's speech, not the clip's; every frame
        inside a range is the same as in a full encoding (the windows are the same).
        """
        layers = self._layer_indices(layer)
        mono = to_mono(audio, sample_rate, self.sample_rate, batch_index)
        samples = normalize_wave(mono.samples) if self.normalize else mono.samples
        n_frames = self.num_frames(samples.shape[0])
        if n_frames == 0:
            raise ValueError(
                f"audio: {mono.duration_s:.4f} s is shorter than WavLM's receptive field "
                f"({self.field / self.sample_rate:.4f} s); no feature frame fits"
            )
        window = int(round(chunk_s * self.frame_rate))
        context = int(round(context_s * self.frame_rate))
        fade = int(round(crossfade_s * self.frame_rate))
        if min(context, fade) < 0:
            raise ValueError(f"context_s ({context_s}) and crossfade_s ({crossfade_s}) must not be negative")
        core = window - 2 * context - fade
        if core < 1:
            raise ValueError(
                f"chunk_s ({chunk_s}) must exceed 2 * context_s + crossfade_s ({2 * context_s + crossfade_s} s)"
            )
        wave = torch.from_numpy(samples).to(self.device, self.dtype)[None]  # (1, N)
        if n_frames <= window:
            features = self._run(wave, layers)
            if progress is not None:
                progress(1, 1)
        else:
            needed = None if only is None else self._frames_in(only, n_frames)
            features = self._encode_chunked(wave, n_frames, layers, core, context, fade, progress, needed)
        if features.shape[0] != n_frames:
            raise RuntimeError(f"WavLM gave {features.shape[0]} frames where its conv stack implies {n_frames}")
        return SpeechFeatures(features.to("cpu", torch.float32), self.frame_rate, self.offset_s, mono.duration_s)

    def _encode_chunked(
        self,
        wave: torch.Tensor,
        n_frames: int,
        layers: list[int] | None,
        core: int,
        context: int,
        fade: int,
        progress: Progress | None,
        needed: np.ndarray | None = None,
    ) -> torch.Tensor:
        n_windows = math.ceil(n_frames / core)
        cuts = [round(i * n_frames / n_windows) for i in range(1, n_windows)]
        bounds = [0, *cuts, n_frames]
        reach = context + fade // 2  # frames outside a window segment that still get weight or context
        total = torch.zeros(n_frames, self.hidden_size, dtype=torch.float32)
        grouped = self.model.config.feat_extract_norm == "group"
        stats = self._group_norm_stats(wave) if grouped else None
        runs = [
            i for i in range(n_windows)
            if needed is None or needed[max(0, bounds[i] - reach) : min(n_frames, bounds[i + 1] + reach)].any()
        ]  # fmt: skip
        covered = np.zeros(n_frames)
        for done, i in enumerate(runs):
            start = max(0, bounds[i] - reach)
            end = min(n_frames, bounds[i + 1] + reach)
            piece = wave[:, start * self.hop : (end - 1) * self.hop + self.field]
            if stats is not None:
                with _frozen_group_norm(self.model, *stats):
                    feats = self._run(piece, layers)
            else:
                feats = self._run(piece, layers)
            left = bounds[i] if i > 0 else None
            right = bounds[i + 1] if i + 1 < n_windows else None
            ramp = _crossfade_weights(start, end, left, right, fade)
            weight = torch.from_numpy(ramp).float()
            total[start:end] += feats.cpu() * weight[:, None]
            covered[start:end] += ramp
            if progress is not None:
                progress(done + 1, len(runs))
        if needed is not None:
            total[torch.from_numpy(covered < 1 - 1e-6)] = float("nan")  # a window that would weigh in here was not run
        return total

    def _frames_in(self, ranges: Sequence[tuple[float, float]], n_frames: int) -> np.ndarray:
        """Frames whose time lies in any (start_s, end_s) range."""
        times = self.offset_s + np.arange(n_frames) / self.frame_rate
        needed = np.zeros(n_frames, dtype=bool)
        for start_s, end_s in ranges:
            if not (np.isfinite(start_s) and np.isfinite(end_s) and start_s <= end_s):
                raise ValueError(
                    f"only: a range must be (start_s, end_s) with start_s <= end_s, got {(start_s, end_s)}"
                )
            needed |= (times >= start_s) & (times <= end_s)
        return needed


def _config_from_json(data: dict[str, Any]) -> Any:
    from transformers import WavLMConfig

    return WavLMConfig.from_dict(data)


def _variant_of(config: Any) -> str:
    def same(value: Any, want: Any) -> bool:
        return list(value) == want if isinstance(want, list) else value == want

    matches = (
        n for n, p in PRESETS.items() if all(same(getattr(config, k), v) for k, v in p.items() if k != "conv_bias")
    )
    return next(matches, "custom")


def _build_model(config: Any, state: dict[str, torch.Tensor], source: str) -> Any:
    from transformers import WavLMModel

    with torch.device("meta"):
        model = WavLMModel(config)
    expected = set(model.state_dict())
    if "masked_spec_embed" in expected and "masked_spec_embed" not in state:
        # Only used for training-time masking; some exports leave it out.
        state = {**state, "masked_spec_embed": torch.zeros(config.hidden_size)}
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(
            f"{source}: weights do not fit the WavLM architecture; missing {missing[:6]}"
            f"{' ...' if len(missing) > 6 else ''}, unexpected {unexpected[:6]}{' ...' if len(unexpected) > 6 else ''}"
        )
    shapes = model.state_dict()
    for key, value in state.items():
        if tuple(value.shape) != tuple(shapes[key].shape):
            raise ValueError(
                f"{source}: tensor {key} has shape {tuple(value.shape)}, expected {tuple(shapes[key].shape)}"
            )
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True, assign=True)
    return model


def find_folder_weights(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [folder / s for s in shards]
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return [folder / name]
    found = sorted(folder.glob("*.safetensors"))
    if len(found) == 1:
        return found
    raise FileNotFoundError(
        f"{folder}: no WavLM weights (expected model.safetensors or pytorch_model.bin next to config.json)"
    )


def load_wavlm(
    path: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    normalize: bool | None = None,
    download: bool = False,
    repo_id: str = DEFAULT_REPO,
) -> WavLM:
    """Load WavLM from a Hugging Face style folder or a single ``.safetensors`` file.

    ``normalize`` overrides the waveform normalisation (zero mean, unit variance); by default it comes from
    ``preprocessor_config.json`` (folder), the file's metadata, or the recognised variant (large: on,
    base / base-plus: off). With ``download=True`` a missing folder is filled from ``repo_id`` first.
    """
    path = Path(path).expanduser()
    if download and not (path.is_file() or (path / "config.json").is_file()):
        download_wavlm(path, repo_id)
    if not path.exists():
        raise FileNotFoundError(
            f"WavLM not found at {path}: give a folder with config.json + model.safetensors, a single "
            f".safetensors file, or pass download=True to fetch {repo_id} there (needs internet)"
        )
    source = str(path)
    if path.is_dir():
        config_file = path / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"{path}: a WavLM folder needs config.json")
        config = _config_from_json(read_json_object(config_file, "a WavLM config"))
        state: dict[str, torch.Tensor] = {}
        for weights in find_folder_weights(path):
            state.update(read_weights(weights)[0])
        state, ignored = _clean_state_dict(state, source)
        variant = _variant_of(config)
        preprocessor = path / "preprocessor_config.json"
        file_normalize = None
        if preprocessor.is_file():
            file_normalize = bool(read_json_object(preprocessor, "a feature extractor config").get("do_normalize"))
    elif path.suffix == ".safetensors":
        raw, metadata = _read_safetensors(path)
        state, ignored = _clean_state_dict(raw, source)
        inferred, variant = infer_config(state)
        if "config" in metadata:
            config = _config_from_json(json.loads(metadata["config"]))
        else:
            config = _config_from_json(inferred)
        file_normalize = json.loads(metadata["do_normalize"]) if "do_normalize" in metadata else None
    else:
        raise ValueError(f"{path}: expected a folder or a .safetensors file")
    if file_normalize is None:
        file_normalize = _PRESET_NORMALIZE.get(variant, False)
    model = _build_model(config, state, source).to(device=device, dtype=dtype)
    if ignored:
        log.info("%s: ignored %d non-WavLM tensors (task heads), e.g. %s", source, len(ignored), ignored[:3])
    return WavLM(model, file_normalize if normalize is None else normalize, variant, tuple(ignored), source)


def hub_download(folder: str | Path, repo_id: str, files: Sequence[str]) -> Path:
    """Download ``files`` (small config files) and the weights of ``repo_id`` into ``folder``: the
    ``.safetensors`` weights when the repository has them, else ``pytorch_model.bin``."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError as err:
        raise ImportError("downloading models needs huggingface_hub: pip install huggingface_hub") from err
    folder = Path(folder).expanduser()
    try:
        snapshot_download(
            repo_id, local_dir=str(folder), allow_patterns=[*files, "*.safetensors", "*.safetensors.index.json"]
        )
        if not any(folder.glob("*.safetensors")):
            snapshot_download(repo_id, local_dir=str(folder), allow_patterns=["pytorch_model.bin"])
    except Exception as err:  # noqa: BLE001 - offline, DNS, HTTP and auth errors all mean the same to the user
        raise ConnectionError(
            f"could not download {repo_id} into {folder} ({type(err).__name__}: {err}). If this machine is "
            f"offline, copy {', '.join(files)} and the weights (model.safetensors or pytorch_model.bin) of "
            f"{repo_id} into {folder}"
        ) from err
    return folder


def download_wavlm(folder: str | Path, repo_id: str = DEFAULT_REPO) -> Path:
    """Download a WavLM (config, preprocessor config, weights) from the Hugging Face Hub into ``folder``."""
    return hub_download(folder, repo_id, ["config.json", "preprocessor_config.json"])


def save_wavlm_safetensors(model: Any, path: str | Path, normalize: bool | None = None, prefix: str = "") -> Path:
    """Write a WavLMModel's weights (and its config in the metadata) as one ``.safetensors`` file."""
    from safetensors.torch import save_file

    metadata = {"config": model.config.to_json_string(use_diff=False)}
    if normalize is not None:
        metadata["do_normalize"] = json.dumps(bool(normalize))
    state = {prefix + k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=metadata)
    return Path(path)

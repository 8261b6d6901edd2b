"""Training data: per-clip shards, the manifest, random infill masks and frame-budget batches.

A preprocessed cache (``facedit/preprocess.py``) is a folder with ``manifest.jsonl`` (one JSON object per
clip: id, frames, seconds, fps, source, shard, speech_frames) and ``shards/<id>.safetensors``, each holding

    motion  float32 [T, 75]   LivePortrait motion per frame (facedit.motion layout), frame i at i / fps
    speech  float16/32 [N, D] speech features, frame j at speech_offset_s + j / speech_frame_rate seconds

with fps, speech_frame_rate, speech_offset_s and provenance in the safetensors metadata.

Crops and speech alignment. A training item is a crop of motion frames [s, s + L) with the speech frames
from ``context_s`` before its first frame to ``context_s`` after its end (the cross-attention window; speech
outside it is never seen by any frame). The model takes ONE speech offset per batch, so every crop start s
is a multiple of the smallest frame count that spans a whole number of speech frames (1 when the speech rate
is a multiple of fps, e.g. 50 Hz over 25 fps; 3 for 50 Hz over 30 fps). Then speech frame a = s * rate / fps
stands exactly speech_offset_s after the crop's first frame, and an item's speech starts a fixed number of
frames before frame a: every item of a batch shares one offset (``ShardDataset.item_speech_offset_s``). The
window holds exactly the speech frames within [-context_s, L / fps + context_s) of the crop's first frame;
speech before the clip's start or after its end is padding.

Batches. Per epoch, one generator seeded by (seed, epoch) shuffles the clips, draws each crop's length
(uniform in [min_frames, max_frames], capped by the clip), start and mask seed, sorts items by length and
packs them greedily while batch size x longest item stays within ``batch_frames`` (little padding), then
shuffles the batches. Every rank builds the same list and takes every world_size-th batch, all ranks the
same count. A batch is a pure function of (seed, epoch, index), so ``(epoch, index)`` is the whole data-order
state a resumed run needs, independent of loader workers.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .motion import MOTION_DIM

SHARD_FORMAT = "facedit-shard"
SHARD_VERSION = 1
MANIFEST_NAME = "manifest.jsonl"
SHARD_DIR = "shards"


# ---------------------------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class ManifestEntry:
    """One preprocessed clip. ``shard`` is relative to the cache folder."""

    id: str
    frames: int
    seconds: float
    fps: float
    source: str
    shard: str
    speech_frames: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ManifestEntry:
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"manifest entry misses {missing}")
        return cls(**{n: data[n] for n in names})


def read_manifest(cache: str | os.PathLike) -> list[ManifestEntry]:
    """Entries of ``cache/manifest.jsonl`` in file order; a clip listed twice keeps its last line."""
    path = Path(cache) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no {MANIFEST_NAME} in {cache}: expected a cache written by facedit/preprocess.py")
    entries: dict[str, ManifestEntry] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = ManifestEntry.from_dict(json.loads(line))
        except (ValueError, TypeError) as error:
            raise ValueError(f"{path}:{number}: not a manifest entry ({error})") from error
        entries.pop(entry.id, None)
        entries[entry.id] = entry
    return list(entries.values())


# ------------------------------------------------------------------------------------------------ shards


@dataclass(frozen=True)
class ShardInfo:
    """What a shard's header says; no tensor data is read."""

    path: Path
    frames: int
    speech_frames: int
    speech_dim: int
    fps: Fraction
    speech_frame_rate: float
    speech_offset_s: float
    metadata: dict[str, str]


def write_shard(
    path: str | os.PathLike,
    motion: np.ndarray | torch.Tensor,
    speech: np.ndarray | torch.Tensor,
    *,
    fps: Fraction | float,
    speech_frame_rate: float,
    speech_offset_s: float,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write one clip's shard atomically (temp file + rename); speech keeps the dtype it is given."""
    path = Path(path)
    motion_t = torch.as_tensor(motion).detach().cpu().float().contiguous()
    speech_t = torch.as_tensor(speech).detach().cpu().contiguous()
    if motion_t.ndim != 2 or motion_t.shape[1] != MOTION_DIM:
        raise ValueError(f"motion must be [T, {MOTION_DIM}], got {tuple(motion_t.shape)}")
    if speech_t.ndim != 2 or not speech_t.is_floating_point():
        raise ValueError(f"speech must be a float [N, D] array, got {tuple(speech_t.shape)} {speech_t.dtype}")
    if not (torch.isfinite(motion_t).all() and torch.isfinite(speech_t).all()):
        raise ValueError(f"{path.name}: motion or speech contains NaN or infinite values")
    info = {
        **(metadata or {}),
        "format": SHARD_FORMAT,
        "format_version": str(SHARD_VERSION),
        "fps": str(Fraction(fps).limit_denominator(1_000_000)),
        "frames": str(motion_t.shape[0]),
        "speech_frame_rate": repr(float(speech_frame_rate)),
        "speech_offset_s": repr(float(speech_offset_s)),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file({"motion": motion_t, "speech": speech_t}, str(temp), metadata=info)
        os.replace(temp, path)
    finally:
        if temp.exists():
            temp.unlink()
    return path


def read_shard_info(path: str | os.PathLike) -> ShardInfo:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"shard not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            motion_shape = handle.get_slice("motion").get_shape()
            speech_shape = handle.get_slice("speech").get_shape()
    except Exception as error:  # safetensors raises its own types for damaged files and missing tensors
        raise ValueError(f"{path}: not a readable FacEDiT shard ({error})") from error
    if meta.get("format") != SHARD_FORMAT or meta.get("format_version") != str(SHARD_VERSION):
        raise ValueError(
            f"{path}: metadata format={meta.get('format')!r} version={meta.get('format_version')!r}; expected "
            f"{SHARD_FORMAT!r} version {SHARD_VERSION} (re-run facedit/preprocess.py)"
        )
    if len(motion_shape) != 2 or motion_shape[1] != MOTION_DIM or len(speech_shape) != 2:
        raise ValueError(f"{path}: motion {motion_shape} / speech {speech_shape} are not [T, 75] / [N, D]")
    return ShardInfo(
        path=path,
        frames=int(motion_shape[0]),
        speech_frames=int(speech_shape[0]),
        speech_dim=int(speech_shape[1]),
        fps=Fraction(meta["fps"]),
        speech_frame_rate=float(meta["speech_frame_rate"]),
        speech_offset_s=float(meta["speech_offset_s"]),
        metadata=dict(meta),
    )


def read_shard(
    path: str | os.PathLike, frames: slice | None = None, speech: slice | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(motion float32 [T, 75], speech float32 [N, D]); slices read only the rows asked for."""
    with safe_open(str(path), framework="pt") as handle:
        motion = handle.get_slice("motion")[frames or slice(None)]
        feats = handle.get_slice("speech")[speech or slice(None)]
    return motion.float().numpy(), feats.float().numpy()


# ------------------------------------------------------------------------------------------------- masks


@dataclass(frozen=True)
class MaskConfig:
    """Random infill masks: editing-like inner spans or generation-like suffixes (paper 3.2).

    generation_prob: share of items whose mask is a suffix after a known prompt (generation), the rest get
    1..max_edit_spans inner spans (editing). edit_fraction: share of the crop the inner spans cover together.
    prompt_fraction: share of the crop kept as the prompt of a suffix mask (at least one frame).
    min_context: known frames kept before the first and after the last inner span.
    """

    generation_prob: float = 0.3
    edit_fraction: tuple[float, float] = (0.1, 0.6)
    prompt_fraction: tuple[float, float] = (0.0, 0.5)
    max_edit_spans: int = 2
    min_context: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.generation_prob <= 1.0:
            raise ValueError(f"MaskConfig.generation_prob must be in [0, 1], got {self.generation_prob}")
        for name in ("edit_fraction", "prompt_fraction"):
            low, high = getattr(self, name)
            if not 0.0 <= low <= high <= 1.0:
                raise ValueError(f"MaskConfig.{name} must be (low, high) with 0 <= low <= high <= 1, got {(low, high)}")
        if self.max_edit_spans < 1 or self.min_context < 1:
            raise ValueError(
                f"MaskConfig.max_edit_spans and min_context must be >= 1, got {self.max_edit_spans}, {self.min_context}"
            )


def _split(total: int, parts: int, minimum: Sequence[int], rng: np.random.Generator) -> list[int]:
    """Random composition of ``total`` into ``parts`` integers, part i at least minimum[i]."""
    free = total - sum(minimum)
    cuts = np.sort(rng.integers(0, free + 1, size=parts - 1))
    sizes = np.diff(np.concatenate([[0], cuts, [free]]))
    return [int(m + s) for m, s in zip(minimum, sizes, strict=True)]


def random_infill_mask(frames: int, rng: np.random.Generator, config: MaskConfig = MaskConfig()) -> np.ndarray:
    """np.bool_ [frames], True where motion is to be generated; at least one frame is known and one masked."""
    if frames < 2:
        raise ValueError(f"a mask needs at least 2 frames (one known, one generated), got {frames}")
    mask = np.zeros(frames, dtype=bool)
    ctx = config.min_context
    if rng.random() < config.generation_prob or frames < 2 * ctx + 1:
        prompt = int(round(rng.uniform(*config.prompt_fraction) * frames))
        mask[min(max(prompt, 1), frames - 1) :] = True
        return mask
    masked = int(round(rng.uniform(*config.edit_fraction) * frames))
    spans = int(rng.integers(1, config.max_edit_spans + 1))
    while spans > 1 and masked + 2 * ctx + spans - 1 > frames:  # inner gaps need one known frame at least
        spans -= 1
    masked = min(max(masked, spans), frames - 2 * ctx - (spans - 1))
    lengths = _split(masked, spans, [1] * spans, rng)
    gaps = _split(frames - masked, spans + 1, [ctx] + [1] * (spans - 1) + [ctx], rng)
    position = 0
    for gap, length in zip(gaps[:-1], lengths, strict=True):
        position += gap
        mask[position : position + length] = True
        position += length
    return mask


# ----------------------------------------------------------------------------------------------- batches


@dataclass(frozen=True)
class ItemSpec:
    """One training item: motion frames [start, start + length) of clip ``clip``, and its mask's seed."""

    clip: int
    start: int
    length: int
    mask_seed: int


class FrameBudgetSampler:
    """Batches of ItemSpecs whose padded size (items x longest) stays within ``batch_frames``; see module doc.

    Iterating yields this rank's batches of the current epoch from the current index on; the training
    loop advances the position (``set_position``) because it knows which batches it really consumed.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        *,
        batch_frames: int,
        max_frames: int,
        min_frames: int | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start_multiple: int = 1,
    ):
        self.lengths = [int(n) for n in lengths]
        self.min_frames = max_frames if min_frames is None else int(min_frames)
        if not 2 <= self.min_frames <= max_frames:
            raise ValueError(f"need 2 <= min_frames ({self.min_frames}) <= max_frames ({max_frames})")
        if batch_frames < max_frames:
            raise ValueError(f"batch_frames ({batch_frames}) must hold at least one crop of max_frames ({max_frames})")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        if start_multiple < 1:
            raise ValueError(f"start_multiple must be >= 1, got {start_multiple}")
        short = [i for i, n in enumerate(self.lengths) if n < 2]
        if short:
            raise ValueError(f"clips {short[:5]} have fewer than 2 frames; filter them before sampling")
        if not self.lengths:
            raise ValueError("no clips to sample from")
        self.batch_frames, self.max_frames = int(batch_frames), int(max_frames)
        self.seed, self.rank, self.world_size, self.start_multiple = int(seed), rank, world_size, start_multiple
        self.epoch, self.index = 0, 0
        self._cache: tuple[int, list[list[ItemSpec]]] | None = None

    def global_batches(self, epoch: int) -> list[list[ItemSpec]]:
        rng = np.random.default_rng([self.seed, epoch])
        items = []
        for clip in rng.permutation(len(self.lengths)):
            n = self.lengths[clip]
            length = int(rng.integers(min(n, self.min_frames), min(n, self.max_frames) + 1))
            starts = (n - length) // self.start_multiple + 1
            start = int(rng.integers(0, starts)) * self.start_multiple
            items.append(ItemSpec(int(clip), start, length, int(rng.integers(0, 2**63 - 1))))
        items.sort(key=lambda item: item.length)  # stable: equal lengths keep the shuffled order
        batches: list[list[ItemSpec]] = []
        current: list[ItemSpec] = []
        for item in items:
            if current and (len(current) + 1) * item.length > self.batch_frames:
                batches.append(current)
                current = []
            current.append(item)
        if current:
            batches.append(current)
        return [batches[i] for i in rng.permutation(len(batches))]

    def epoch_batches(self, epoch: int | None = None) -> list[list[ItemSpec]]:
        """This rank's batches of ``epoch`` (default: the current one)."""
        epoch = self.epoch if epoch is None else epoch
        if self._cache is None or self._cache[0] != epoch:
            batches = self.global_batches(epoch)
            per_rank = len(batches) // self.world_size
            if per_rank == 0:
                raise ValueError(
                    f"epoch {epoch} has {len(batches)} batches for {self.world_size} ranks; add clips or lower "
                    f"batch_frames"
                )
            self._cache = (epoch, batches[self.rank :: self.world_size][:per_rank])
        return self._cache[1]

    def set_position(self, epoch: int, index: int) -> None:
        if epoch < 0 or index < 0:
            raise ValueError(f"sampler position must be non-negative, got epoch={epoch}, index={index}")
        self.epoch, self.index = int(epoch), int(index)

    def __len__(self) -> int:
        return len(self.epoch_batches())

    def __iter__(self):
        yield from self.epoch_batches()[self.index :]


# ------------------------------------------------------------------------------------------------ dataset


def _as_fraction(value: float | Fraction) -> Fraction:
    return Fraction(value).limit_denominator(1_000_000) if not isinstance(value, Fraction) else value


class ShardDataset(torch.utils.data.Dataset):
    """Items of a preprocessed cache: ``dataset[ItemSpec]`` -> dict of numpy arrays (see ``item``)."""

    def __init__(
        self,
        cache: str | os.PathLike,
        entries: Sequence[ManifestEntry],
        *,
        context_s: float,
        mask: MaskConfig = MaskConfig(),
    ):
        self.cache = Path(cache)
        self.entries = list(entries)
        if not self.entries:
            raise ValueError(f"no clips from {self.cache} to train on")
        self.mask = mask
        self.infos = [read_shard_info(self.cache / e.shard) for e in self.entries]
        first = self.infos[0]
        for entry, info in zip(self.entries, self.infos, strict=True):
            if info.frames != entry.frames:
                raise ValueError(f"{info.path}: {info.frames} frames, the manifest says {entry.frames}")
            facts = (info.fps, info.speech_frame_rate, info.speech_offset_s, info.speech_dim)
            if facts != (first.fps, first.speech_frame_rate, first.speech_offset_s, first.speech_dim):
                raise ValueError(
                    f"{info.path}: fps / speech rate / offset / dim {facts} differ from {first.path}'s "
                    f"{(first.fps, first.speech_frame_rate, first.speech_offset_s, first.speech_dim)}; one cache "
                    f"must come from one preprocessing setup"
                )
        self.fps = first.fps
        self.speech_frame_rate = first.speech_frame_rate
        self.speech_offset_s = first.speech_offset_s
        self.speech_dim = first.speech_dim
        ratio = _as_fraction(self.speech_frame_rate) / self.fps  # speech frames per motion frame
        self.start_multiple = ratio.denominator
        self._speech_per_frame = ratio
        self.context_s = float(context_s)
        # Speech frames before the one at the crop's first frame that still fall within context_s of it.
        self.context = max(0, math.floor((context_s + self.speech_offset_s) * self.speech_frame_rate + 1e-9))
        self.item_speech_offset_s = self.speech_offset_s - self.context / self.speech_frame_rate

    @property
    def lengths(self) -> list[int]:
        return [info.frames for info in self.infos]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, spec: ItemSpec) -> dict[str, Any]:
        mask = random_infill_mask(spec.length, np.random.default_rng(spec.mask_seed), self.mask)
        return self.item(spec.clip, spec.start, spec.length, mask)

    def item(self, clip: int, start: int, length: int, infill_mask: np.ndarray) -> dict[str, Any]:
        """motion [L, 75], infill_mask [L], speech [S, D] with speech_valid [S]; speech frame 0 stands at
        ``item_speech_offset_s`` seconds after motion frame ``start``."""
        info = self.infos[clip]
        if start % self.start_multiple or not 0 <= start < start + length <= info.frames:
            raise ValueError(
                f"crop [{start}, {start + length}) does not fit clip {self.entries[clip].id} of {info.frames} frames "
                f"with starts on multiples of {self.start_multiple}"
            )
        infill_mask = np.asarray(infill_mask, dtype=bool)
        if infill_mask.shape != (length,):
            raise ValueError(f"infill_mask must be [{length}], got {infill_mask.shape}")
        at_start = int(start * self._speech_per_frame)  # exact: start is a multiple of the denominator
        first = at_start - self.context
        end_s = length / float(self.fps) + self.context_s - self.speech_offset_s  # window end after frame at_start
        last = at_start + max(0, math.ceil(end_s * self.speech_frame_rate - 1e-9))
        lo, hi = max(first, 0), min(last, info.speech_frames)
        speech = np.zeros((last - first, self.speech_dim), np.float32)
        valid = np.zeros(last - first, bool)
        motion, feats = read_shard(info.path, slice(start, start + length), slice(lo, max(lo, hi)))
        speech[lo - first : lo - first + len(feats)] = feats
        valid[lo - first : lo - first + len(feats)] = True
        return {
            "motion": motion,
            "infill_mask": infill_mask,
            "speech": speech,
            "speech_valid": valid,
            "speech_offset_s": self.item_speech_offset_s,
            "speech_frame_rate": self.speech_frame_rate,
        }


def collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pad items into a batch: motion (B, T, 75), motion_mask / infill_mask (B, T), speech (B, S, D),
    speech_mask (B, S); padding is False in every mask."""
    if not items:
        raise ValueError("cannot collate an empty batch")
    offsets = {item["speech_offset_s"] for item in items}
    rates = {item["speech_frame_rate"] for item in items}
    if len(offsets) != 1 or len(rates) != 1:
        raise ValueError(f"items of one batch must share speech offset and rate, got {offsets} and {rates}")
    batch, frames = len(items), max(len(item["motion"]) for item in items)
    speech_frames, dim = max(len(item["speech"]) for item in items), items[0]["speech"].shape[1]
    motion = torch.zeros(batch, frames, MOTION_DIM)
    motion_mask = torch.zeros(batch, frames, dtype=torch.bool)
    infill = torch.zeros(batch, frames, dtype=torch.bool)
    speech = torch.zeros(batch, speech_frames, dim)
    speech_mask = torch.zeros(batch, speech_frames, dtype=torch.bool)
    for b, item in enumerate(items):
        n, s = len(item["motion"]), len(item["speech"])
        motion[b, :n] = torch.from_numpy(item["motion"])
        motion_mask[b, :n] = True
        infill[b, :n] = torch.from_numpy(item["infill_mask"])
        speech[b, :s] = torch.from_numpy(item["speech"])
        speech_mask[b, :s] = torch.from_numpy(item["speech_valid"])
    return {
        "motion": motion,
        "motion_mask": motion_mask,
        "infill_mask": infill,
        "speech": speech,
        "speech_mask": speech_mask,
        "speech_offset_s": offsets.pop(),
        "speech_frame_rate": rates.pop(),
    }

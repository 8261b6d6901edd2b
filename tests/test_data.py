"""Training data: manifest and shard files, random infill masks, frame-budget batches, crops with aligned speech."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from facedit.data import (
    MANIFEST_NAME,
    FrameBudgetSampler,
    ItemSpec,
    ManifestEntry,
    MaskConfig,
    ShardDataset,
    collate,
    random_infill_mask,
    read_manifest,
    read_shard,
    read_shard_info,
    write_shard,
)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


# ------------------------------------------------------------------------------------------ files


def test_manifest_round_trip_and_later_lines_win(tmp_path):
    a = ManifestEntry("a", 50, 2.0, 25.0, "/v/a.mp4", "shards/a.safetensors", 99)
    b = ManifestEntry("b", 75, 3.0, 25.0, "/v/b.mp4", "shards/b.safetensors", 149)
    a2 = ManifestEntry("a", 60, 2.4, 25.0, "/v/a.mp4", "shards/a.safetensors", 119)
    (tmp_path / MANIFEST_NAME).write_text("\n".join(e.to_json() for e in (a, b, a2)) + "\n\n")
    assert read_manifest(tmp_path) == [b, a2]


def test_manifest_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.jsonl"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"id": "a", "frames": 3}) + "\n")
    with pytest.raises(ValueError, match=r"manifest.jsonl:1: .*misses"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("speech_dtype", [torch.float16, torch.float32])
def test_shard_round_trip_with_slices(tmp_path, speech_dtype):
    motion = torch.randn(40, 75)
    speech = torch.randn(81, 12).to(speech_dtype)
    path = write_shard(tmp_path / "s.safetensors", motion, speech, fps=30000 / 1001, speech_frame_rate=50.0,
                       speech_offset_s=0.0125, metadata={"source": "x.mp4"})  # fmt: skip
    info = read_shard_info(path)
    assert (info.frames, info.speech_frames, info.speech_dim) == (40, 81, 12)
    assert info.fps == __import__("fractions").Fraction(30000, 1001)
    assert (info.speech_frame_rate, info.speech_offset_s, info.metadata["source"]) == (50.0, 0.0125, "x.mp4")
    m, s = read_shard(path, slice(5, 9), slice(10, 20))
    assert m.dtype == np.float32 and s.dtype == np.float32
    np.testing.assert_array_equal(m, motion[5:9].numpy())
    np.testing.assert_array_equal(s, speech[10:20].float().numpy())
    assert not list(tmp_path.glob(".*.tmp"))


def test_shard_rejects_bad_input_and_foreign_files(tmp_path):
    with pytest.raises(ValueError, match=r"\[T, 75\]"):
        write_shard(tmp_path / "a.safetensors", torch.zeros(4, 74), torch.zeros(8, 4), fps=25, speech_frame_rate=50,
                    speech_offset_s=0)  # fmt: skip
    bad = torch.zeros(4, 75)
    bad[1, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        write_shard(tmp_path / "a.safetensors", bad, torch.zeros(8, 4), fps=25, speech_frame_rate=50, speech_offset_s=0)
    save_file({"motion": torch.zeros(4, 75), "speech": torch.zeros(8, 4)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ValueError, match="facedit-shard"):
        read_shard_info(tmp_path / "foreign.safetensors")
    with pytest.raises(FileNotFoundError):
        read_shard_info(tmp_path / "missing.safetensors")


# ------------------------------------------------------------------------------------------ masks


@pytest.mark.parametrize("frames", [2, 3, 5, 17, 64, 250])
@pytest.mark.parametrize("seed", range(6))
def test_masks_always_have_known_and_generated_frames(frames, seed):
    config = MaskConfig(generation_prob=0.5, max_edit_spans=3, min_context=2)
    mask = random_infill_mask(frames, np.random.default_rng(seed), config)
    assert mask.dtype == bool and mask.shape == (frames,)
    assert mask.any() and not mask.all()
    runs = _runs(mask)
    if runs[-1][1] == frames:  # a generation-like suffix: one run, at least one prompt frame
        assert len(runs) == 1 and runs[0][0] >= 1
    else:  # editing-like inner spans keep min_context known frames at both ends
        assert len(runs) <= 3 and runs[0][0] >= 2 and frames - runs[-1][1] >= 2


def test_mask_proportions_follow_the_config():
    config = MaskConfig(generation_prob=0.3, edit_fraction=(0.2, 0.4), prompt_fraction=(0.1, 0.3), max_edit_spans=2)
    rng = np.random.default_rng(0)
    kinds, edit_shares, prompt_shares, span_counts = Counter(), [], [], Counter()
    for _ in range(3000):
        mask = random_infill_mask(100, rng, config)
        runs = _runs(mask)
        if runs[-1][1] == 100:
            kinds["generation"] += 1
            prompt_shares.append(runs[0][0] / 100)
        else:
            kinds["edit"] += 1
            edit_shares.append(mask.mean())
            span_counts[len(runs)] += 1
    assert abs(kinds["generation"] / 3000 - 0.3) < 0.03  # binomial sd 0.008
    assert 0.195 <= min(edit_shares) and max(edit_shares) <= 0.405
    assert 0.095 <= min(prompt_shares) and max(prompt_shares) <= 0.305
    assert abs(np.mean(edit_shares) - 0.3) < 0.01 and abs(np.mean(prompt_shares) - 0.2) < 0.01
    assert set(span_counts) == {1, 2} and abs(span_counts[2] / sum(span_counts.values()) - 0.5) < 0.05


def test_mask_config_validation():
    with pytest.raises(ValueError, match="generation_prob"):
        MaskConfig(generation_prob=1.5)
    with pytest.raises(ValueError, match="edit_fraction"):
        MaskConfig(edit_fraction=(0.6, 0.2))
    with pytest.raises(ValueError, match="at least 2 frames"):
        random_infill_mask(1, np.random.default_rng(0))


# ---------------------------------------------------------------------------------------- batches


LENGTHS = [30, 250, 400, 90, 12, 301, 260, 55, 700, 180, 220, 240, 75, 3]


@pytest.mark.parametrize("multiple", [1, 3])
def test_batches_respect_the_frame_budget_and_cover_every_clip(multiple):
    sampler = FrameBudgetSampler(LENGTHS, batch_frames=600, max_frames=250, min_frames=50, seed=3,
                                 start_multiple=multiple)  # fmt: skip
    for epoch in range(3):
        batches = sampler.epoch_batches(epoch)
        seen = Counter()
        for batch in batches:
            assert len(batch) * max(item.length for item in batch) <= 600
            for item in batch:
                n = LENGTHS[item.clip]
                assert min(n, 50) <= item.length <= min(n, 250)
                assert item.start % multiple == 0 and 0 <= item.start and item.start + item.length <= n
                seen[item.clip] += 1
        assert seen == Counter(range(len(LENGTHS)))
    lengths = [it.length for b in sampler.epoch_batches(0) for it in b]
    assert len(set(lengths)) > 5  # lengths really are drawn, not all max_frames


def test_batches_are_a_function_of_seed_and_epoch():
    make = lambda seed: FrameBudgetSampler(LENGTHS, batch_frames=600, max_frames=250, min_frames=50, seed=seed)  # noqa: E731
    assert make(1).epoch_batches(0) == make(1).epoch_batches(0)
    assert make(1).epoch_batches(0) != make(1).epoch_batches(1)
    assert make(1).epoch_batches(0) != make(2).epoch_batches(0)


def test_ranks_share_the_batches_without_overlap():
    global_batches = FrameBudgetSampler(LENGTHS, batch_frames=300, max_frames=100, seed=0).global_batches(0)
    ranks = [
        FrameBudgetSampler(LENGTHS, batch_frames=300, max_frames=100, seed=0, rank=r, world_size=3) for r in range(3)
    ]
    shares = [r.epoch_batches(0) for r in ranks]
    assert len({len(s) for s in shares}) == 1 and len(shares[0]) == len(global_batches) // 3
    flat = [tuple(b) for s in shares for b in s]
    assert len(set(flat)) == len(flat) and set(flat) <= {tuple(b) for b in global_batches}


def test_sampler_resumes_at_a_position():
    sampler = FrameBudgetSampler(LENGTHS, batch_frames=300, max_frames=100, seed=5)
    full = sampler.epoch_batches(2)
    sampler.set_position(2, 3)
    assert list(sampler) == full[3:]
    sampler.set_position(2, len(full))
    assert list(sampler) == []


def test_sampler_rejects_impossible_settings():
    with pytest.raises(ValueError, match="batch_frames"):
        FrameBudgetSampler([50], batch_frames=40, max_frames=50)
    with pytest.raises(ValueError, match="fewer than 2 frames"):
        FrameBudgetSampler([50, 1], batch_frames=100, max_frames=50)
    with pytest.raises(ValueError, match="batches for 4 ranks"):
        FrameBudgetSampler([50, 60], batch_frames=100, max_frames=50, world_size=4, rank=1).epoch_batches(0)


# ---------------------------------------------------------------------------------- crops, speech


def _timed_cache(
    root: Path, fps: float, rate: float, offset: float, clips: list[tuple[int, int]]
) -> list[ManifestEntry]:
    """Shards whose motion channel 0 is each frame's time and speech channel 0 each speech frame's time."""
    entries = []
    for index, (frames, speech_frames) in enumerate(clips):
        motion = np.zeros((frames, 75), np.float32)
        motion[:, 0] = np.arange(frames) / fps
        speech = np.zeros((speech_frames, 4), np.float32)
        speech[:, 0] = offset + np.arange(speech_frames) / rate
        speech[:, 1] = index
        shard = f"shards/c{index}.safetensors"
        write_shard(root / shard, motion, speech, fps=fps, speech_frame_rate=rate, speech_offset_s=offset)
        entries.append(ManifestEntry(f"c{index}", frames, frames / fps, fps, "synthetic", shard, speech_frames))
    return entries


@pytest.mark.parametrize("fps, multiple", [(25.0, 1), (30.0, 3), (50.0, 1)])
def test_item_speech_is_aligned_with_the_crop(tmp_path, fps, multiple):
    rate, offset = 50.0, 0.0125
    entries = _timed_cache(tmp_path, fps, rate, offset, [(120, int(120 / fps * rate) - 3)])
    ds = ShardDataset(tmp_path, entries, context_s=0.3)
    assert ds.start_multiple == multiple and ds.context == 15
    for start in (0, multiple * 4, 120 - 30 - (120 - 30) % multiple):
        item = ds.item(0, start, 30, np.arange(30) >= 10)
        np.testing.assert_allclose(item["motion"][:, 0], (start + np.arange(30)) / fps, atol=1e-6)
        times = item["speech"][:, 0] - start / fps  # speech time relative to the crop's first frame
        expected = item["speech_offset_s"] + np.arange(len(times)) / rate
        valid = item["speech_valid"]
        np.testing.assert_allclose(times[valid], expected[valid], atol=1e-5)
        assert np.all(item["speech"][~valid] == 0)
        # exactly the speech within [-0.3, 30 / fps + 0.3) of the crop's first frame: the cross-attention reach
        assert -0.3 - 1e-9 <= expected[0] < -0.3 + 1 / rate
        assert 30 / fps + 0.3 - 1 / rate <= expected[-1] < 30 / fps + 0.3
        j = np.round((expected - (offset - start / fps)) * rate)  # the clip's speech frame at each slot
        np.testing.assert_array_equal(valid, (j >= 0) & (j < entries[0].speech_frames))
    assert not ds.item(0, 0, 30, np.ones(30, bool))["speech_valid"][:10].any()  # before the clip: padding
    with pytest.raises(ValueError, match="does not fit"):
        ds.item(0, 100, 30, np.ones(30, bool))
    if multiple > 1:
        with pytest.raises(ValueError, match="multiples of 3"):
            ds.item(0, 1, 30, np.ones(30, bool))


def test_dataset_refuses_mixed_caches(tmp_path):
    a = _timed_cache(tmp_path, 25.0, 50.0, 0.0125, [(40, 80)])
    b = _timed_cache(tmp_path / "b", 30.0, 50.0, 0.0125, [(40, 80)])
    b = [ManifestEntry(e.id + "b", e.frames, e.seconds, e.fps, e.source, "b/" + e.shard, e.speech_frames) for e in b]
    with pytest.raises(ValueError, match="one preprocessing setup"):
        ShardDataset(tmp_path, a + b, context_s=0.3)


def test_collate_pads_and_masks(tmp_path):
    entries = _timed_cache(tmp_path, 25.0, 50.0, 0.0125, [(60, 120), (90, 178)])
    ds = ShardDataset(tmp_path, entries, context_s=0.2, mask=MaskConfig(generation_prob=0.0))
    items = [ds[ItemSpec(0, 10, 25, mask_seed=1)], ds[ItemSpec(1, 40, 40, mask_seed=2)]]
    batch = collate(items)
    assert batch["motion"].shape == (2, 40, 75) and batch["speech"].shape[:2] == (2, 80 + 20)
    assert batch["motion_mask"].sum(1).tolist() == [25, 40]
    assert not batch["infill_mask"][0, 25:].any() and not batch["motion"][0, 25:].any()
    assert batch["infill_mask"][0, :25].tolist() == items[0]["infill_mask"].tolist()
    assert batch["speech_mask"][0].sum() == 50 + 20 and not batch["speech_mask"][0, 70:].any()
    assert torch.all(batch["speech"][1, :, 1][batch["speech_mask"][1]] == 1)  # clip 1's features
    assert batch["speech_offset_s"] == pytest.approx(0.0125 - 0.2)
    other = dict(items[1], speech_offset_s=0.0)
    with pytest.raises(ValueError, match="share speech offset"):
        collate([items[0], other])


def test_loader_yields_the_sampler_batches(tmp_path):
    entries = _timed_cache(tmp_path, 25.0, 50.0, 0.0125, [(60, 120), (90, 178), (45, 88), (70, 140)])
    ds = ShardDataset(tmp_path, entries, context_s=0.32)
    sampler = FrameBudgetSampler(ds.lengths, batch_frames=120, max_frames=40, min_frames=20, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=0)
    batches = list(loader)
    assert len(batches) == len(sampler)
    for batch, specs in zip(batches, sampler.epoch_batches(0), strict=True):
        assert batch["motion_mask"].sum(1).tolist() == [s.length for s in specs]
        for b, spec in enumerate(specs):
            start_time = spec.start / 25.0
            assert float(batch["motion"][b, 0, 0]) == pytest.approx(start_time)

"""FacEDiT checkpoints: bit-exact round trips through the real safetensors loader; clear errors for wrong files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import facedit.checkpoint as checkpoint_module
from facedit.checkpoint import load_facedit, read_facedit_metadata, save_facedit
from facedit.config import FacEDiTConfig
from tests._model_helpers import random_inputs, random_model


@pytest.mark.parametrize("adaln", ["shared", "per_block"])
def test_save_load_round_trip_is_bit_exact(tmp_path, adaln):
    model = random_model(adaln=adaln)
    path = save_facedit(tmp_path / "facedit_tiny.safetensors", model, metadata={"step": "1200"})
    loaded = load_facedit(path)
    assert loaded.config == model.config and not loaded.training
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) and original[k].dtype == restored[k].dtype for k in original)
    inputs = random_inputs(model)
    assert torch.equal(loaded(*inputs), model(*inputs))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["facedit_tiny.safetensors"]  # no temp file left


def test_metadata_is_readable_without_loading_the_model(tmp_path):
    model = random_model(window=5)
    path = save_facedit(tmp_path / "m.safetensors", model, weights="raw", metadata={"step": "7", "data": "vox"})
    info = read_facedit_metadata(path)
    assert info["config"] == model.config and info["weights"] == "raw"
    assert info["extra"] == {"step": "7", "data": "vox"}
    assert np.array_equal(info["motion_mean"], model.normalizer.mean.numpy())
    assert np.array_equal(info["motion_std"], model.normalizer.std.numpy())
    with safe_open(str(path), framework="pt") as handle:
        raw = handle.metadata()
    assert raw["format"] == "facedit" and raw["format_version"] == "1"
    assert json.loads(raw["config"])["window"] == 5


def test_ema_weights_are_what_gets_saved(tmp_path):
    model = random_model(seed=0)
    ema = random_model(seed=1).state_dict()
    path = save_facedit(tmp_path / "ema.safetensors", model, state_dict=ema)
    loaded = load_facedit(path)
    assert all(torch.equal(loaded.state_dict()[k], ema[k]) for k in ema)
    assert read_facedit_metadata(path)["weights"] == "ema"
    bad = dict(ema)
    bad.pop("proj_out.bias")
    with pytest.raises(ValueError, match="missing \\['proj_out.bias'\\]"):
        save_facedit(tmp_path / "bad.safetensors", model, state_dict=bad)


def test_half_precision_file_and_load_dtype_keep_statistics_float32(tmp_path):
    model = random_model()
    path = save_facedit(tmp_path / "half.safetensors", model, dtype=torch.float16)
    loaded = load_facedit(path, dtype=torch.bfloat16)
    assert loaded.dtype == torch.bfloat16
    assert loaded.normalizer.mean.dtype == torch.float32
    assert torch.equal(loaded.normalizer.mean, model.normalizer.mean)
    expected = model.proj_out.weight.detach().half().to(torch.bfloat16)
    assert torch.equal(loaded.proj_out.weight, expected)


def test_overwrite_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    first = random_model(seed=0)
    save_facedit(path, first)
    before = path.read_bytes()

    def broken_save(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module, "save_file", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_facedit(path, random_model(seed=1))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_save_rejects_bad_arguments(tmp_path):
    model = random_model()
    with pytest.raises(ValueError, match=".safetensors"):
        save_facedit(tmp_path / "m.pth", model)
    with pytest.raises(ValueError, match="weights"):
        save_facedit(tmp_path / "m.safetensors", model, weights="best")
    with pytest.raises(ValueError, match="reserved"):
        save_facedit(tmp_path / "m.safetensors", model, metadata={"config": "{}"})


# ---------------------------------------------------------------- files that are not FacEDiT checkpoints


def _rewrite_metadata(src, dst, **changes):
    with safe_open(str(src), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
        metadata = dict(handle.metadata())
    metadata.update(changes)
    save_file(tensors, str(dst), metadata=metadata)
    return dst


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        load_facedit(tmp_path / "nothing.safetensors")


def test_liveportrait_file_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "spade_generator.safetensors"
    save_file({"spade_generator.fc.weight": torch.zeros(4, 4)}, str(path))
    with pytest.raises(ValueError, match="spade_generator.safetensors is not a FacEDiT checkpoint") as error:
        load_facedit(path)
    assert "spade_generator.fc.weight" in str(error.value)


def test_pickle_file_is_never_unpickled(tmp_path):
    path = tmp_path / "model.pth"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="model.pth is not a .safetensors file.*never loaded"):
        load_facedit(path)
    renamed = tmp_path / "model.safetensors"
    renamed.write_bytes(path.read_bytes())
    with pytest.raises(ValueError, match="model.safetensors is not a readable safetensors file"):
        load_facedit(renamed)


def test_truncated_file_is_refused(tmp_path):
    path = save_facedit(tmp_path / "m.safetensors", random_model())
    data = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.safetensors"):
        load_facedit(cut)
    stub = tmp_path / "stub.safetensors"
    stub.write_bytes(data[:5])
    with pytest.raises(ValueError, match="stub.safetensors is not a readable safetensors file"):
        load_facedit(stub)


def test_config_that_does_not_match_the_weights_is_refused(tmp_path):
    path = save_facedit(tmp_path / "m.safetensors", random_model())
    deeper = FacEDiTConfig.tiny(depth=3).to_dict()
    bad = _rewrite_metadata(path, tmp_path / "deeper.safetensors", config=json.dumps(deeper))
    with pytest.raises(ValueError, match="deeper.safetensors: weights do not match.*missing \\['blocks.2"):
        load_facedit(bad)
    wider = _rewrite_metadata(
        path, tmp_path / "wider.safetensors", config=json.dumps(FacEDiTConfig.tiny(ffn_dim=64).to_dict())
    )
    with pytest.raises(ValueError, match="wrong shapes"):
        load_facedit(wider)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(format_version="2"), "format_version '2' is not supported"),
        (dict(config=json.dumps({**FacEDiTConfig.tiny().to_dict(), "experts": 4})), "unknown keys \\['experts'\\]"),
        (dict(config="{not json"), "damaged"),
        (dict(motion_mean=json.dumps([0.0] * 75)), "disagrees with the statistics"),
    ],
)
def test_damaged_or_foreign_metadata_is_refused(tmp_path, changes, message):
    path = save_facedit(tmp_path / "m.safetensors", random_model())
    bad = _rewrite_metadata(path, tmp_path / "bad.safetensors", **changes)
    with pytest.raises(ValueError, match=message) as error:
        load_facedit(bad)
    assert "bad.safetensors" in str(error.value)

"""`facedit.accel.fused.prepacked`: weights packed once per sample for the linears, same results, nothing kept."""

from __future__ import annotations

import pytest
import torch
from _model_helpers import random_inputs, random_model

from facedit.accel import fused
from facedit.flow import sample

KINDS = {
    torch.float32: pytest.mark.skipif(not fused._has_mkl_packed_linear(), reason="no MKL packed GEMM in this build"),
    torch.bfloat16: pytest.mark.skipif(not fused._has_onednn_linear(), reason="no native bfloat16 oneDNN linear"),
}
DTYPES = [pytest.param(dtype, marks=mark, id=str(dtype).removeprefix("torch.")) for dtype, mark in KINDS.items()]


@pytest.fixture
def reorders(monkeypatch):
    """Every weight packing, as (kind, out_features, rows)."""
    calls = []
    packers = (("mkldnn", "_reorder_linear_weight", "onednn"), ("mkl", "_mkl_reorder_linear_weight", "mkl"))
    for namespace, name, kind in packers:
        ops = getattr(torch.ops, namespace)
        original = getattr(ops, name)

        def counted(weight, rows, original=original, kind=kind):
            calls.append((kind, weight.shape[0], rows))
            return original(weight, rows)

        monkeypatch.setattr(ops, name, counted)
    return calls


def _unpacked(layer: fused.Linear, x: torch.Tensor) -> torch.Tensor:
    """layer(x) as outside any `prepacked` scope: the same primitive on the weight as it is."""
    token = fused._packs.set(None)
    try:
        return layer(x)
    finally:
        fused._packs.reset(token)


# A bfloat16 convolution as fused.conv1d runs it (channels-last) may pick another oneDNN kernel than conv1d's, with
# another summation order on some CPUs: one bfloat16 rounding step apart at most.
BF16_STEP = dict(rtol=2**-7, atol=2**-7)


def _tolerance(dtype: torch.dtype) -> dict:
    # MKL's packed float32 GEMM sums in another order than the unpacked one; oneDNN's bfloat16 result is the same bits
    return dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gelu", [False, True])
def test_linear_packs_on_the_second_call_and_gives_the_same_result(dtype, gelu, reorders):
    torch.manual_seed(0)
    layer = fused.Linear(48, 80).to(dtype)
    x = torch.randn(2, 37, 48).to(dtype)
    with torch.no_grad():
        plain = layer(x, gelu_tanh=gelu)
        with fused.prepacked():
            first = layer(x, gelu_tanh=gelu)
            assert reorders == []  # a layer called once is not copied
            later = [layer(x, gelu_tanh=gelu) for _ in range(3)]
        assert len(reorders) == 1 and reorders[0][1:] == (80, 74)  # packed once, for the 2 x 37 rows
    torch.testing.assert_close(first, plain, rtol=0, atol=0)
    for out in later:
        torch.testing.assert_close(out, plain, **_tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_changed_or_replaced_weight_and_a_new_row_count_are_packed_again(dtype, reorders):
    torch.manual_seed(0)
    layer = fused.Linear(32, 64, bias=False).to(dtype)
    x, y = torch.randn(1, 20, 32).to(dtype), torch.randn(1, 9, 32).to(dtype)
    with torch.no_grad(), fused.prepacked():
        layer(x), layer(x)
        layer.weight.mul_(-2.0)  # in place: same tensor, new version
        for _ in range(2):
            torch.testing.assert_close(layer(x), _unpacked(layer, x), **_tolerance(dtype))
        layer.weight = torch.nn.Parameter(torch.randn(64, 32).to(dtype))
        for _ in range(2):
            torch.testing.assert_close(layer(x), _unpacked(layer, x), **_tolerance(dtype))
        for _ in range(2):
            torch.testing.assert_close(layer(y), _unpacked(layer, y), **_tolerance(dtype))
    assert [rows for _, _, rows in reorders] == [20, 20, 20, 9]


@pytest.mark.parametrize("dtype", DTYPES)
def test_nothing_is_kept_after_the_scope_and_parameters_are_untouched(dtype):
    torch.manual_seed(0)
    layer = fused.Linear(16, 16).to(dtype)
    before = {name: p.clone() for name, p in layer.named_parameters()}
    x = torch.randn(5, 16).to(dtype)
    assert fused._packs.get() is None
    with torch.no_grad(), fused.prepacked():
        with fused.prepacked():  # nested: the outer scope's packs
            layer(x), layer(x)
        packs = fused._packs.get()
        assert packs is not None and any(entry.packed is not None for entry in packs.values())
    assert fused._packs.get() is None
    for name, p in layer.named_parameters():
        assert torch.equal(p, before[name]) and p.dtype == dtype and p.is_contiguous()


def test_training_and_gradients_bypass_the_packs(reorders):
    torch.manual_seed(0)
    layer = fused.Linear(16, 8)
    x = torch.randn(4, 16, requires_grad=True)
    with fused.prepacked():
        for _ in range(3):
            layer(x).sum().backward()
    assert reorders == [] and x.grad is not None and layer.weight.grad is not None


@pytest.mark.parametrize("dtype", DTYPES)
def test_sample_runs_on_packed_weights_and_keeps_its_result(dtype, reorders, monkeypatch):
    model = random_model(dtype=dtype)
    _, cond, speech, _ = random_inputs(model, batch=1, frames=30)
    mask = torch.zeros(1, 30, dtype=torch.bool)
    mask[:, 10:20] = True
    packed = sample(model, cond, mask, speech, steps=4, seed=3)
    assert reorders, "no weight was packed"
    assert {rows for _, _, rows in reorders} == {30}  # the motion rows; the speech side is prepared once, not packed
    assert len(reorders) == 8 * model.config.depth  # each block's 8 motion-side linears, once for the whole sample
    assert fused._packs.get() is None
    monkeypatch.setattr(fused, "_packed_kind", lambda *a: None)
    plain = sample(model, cond, mask, speech, steps=4, seed=3)
    tolerance = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=0, atol=0)
    torch.testing.assert_close(packed, plain, **tolerance)


def test_the_scope_leaves_torch_compile_one_graph():
    model = random_model()
    _, cond, speech, t = random_inputs(model, batch=1, frames=30)
    with torch.no_grad(), fused.prepacked():
        cache = model.prepare(speech, 30)
        explained = torch._dynamo.explain(model)(cond, cond, None, t, cache=cache)
    assert explained.graph_break_count == 0, [b.reason for b in explained.break_reasons]


@pytest.mark.parametrize("dtype", DTYPES)
def test_long_inputs_are_not_packed(dtype, reorders, monkeypatch):
    monkeypatch.setattr(fused, "PACKED_MAX_ROWS", 16)
    layer = fused.Linear(8, 8).to(dtype)
    with torch.no_grad(), fused.prepacked():
        for rows in (17, 17, 16, 16):
            layer(torch.randn(rows, 8).to(dtype))
    assert [rows for _, _, rows in reorders] == [16]


@pytest.mark.skipif(not fused._has_onednn_linear(), reason="no native bfloat16 oneDNN kernels")
@pytest.mark.parametrize("stride, groups, padding", [(1, 16, 15), (2, 4, 3), (1, 1, 0)])
def test_bfloat16_conv1d_as_channels_last_conv2d_matches_the_module(stride, groups, padding, reorders):
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(32, 48, 31 if padding == 15 else 7, stride=stride, groups=groups, padding=padding)
    conv = conv.to(torch.bfloat16)
    tokens = torch.randn(2, 90, 32).to(torch.bfloat16)  # token-major, as the model holds it
    x = tokens.transpose(1, 2)
    with torch.no_grad():
        plain = conv(x)
        fast = fused.conv1d(x, conv)
        with fused.prepacked():
            packed = [fused.conv1d(x, conv) for _ in range(3)]
            (entry,) = fused._packs.get().values()
            assert entry.weight is conv.weight and entry.packed is not None  # laid out once, kept for the scope
    assert fast.shape == plain.shape
    torch.testing.assert_close(fast, plain, **BF16_STEP)
    assert all(torch.equal(out, fast) for out in packed)  # the same kernel on the weight laid out once
    assert len(reorders) == 0  # the conv weight is laid out by a reshape, not a linear packing
    if stride == 1:
        assert fast.transpose(1, 2).is_contiguous()  # back to token-major without a copy


def test_conv1d_elsewhere_is_the_module_itself():
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(8, 8, 3, padding=1)
    x = torch.randn(1, 8, 20, requires_grad=True)
    torch.testing.assert_close(fused.conv1d(x, conv), conv(x), rtol=0, atol=0)
    fused.conv1d(x, conv).sum().backward()
    assert x.grad is not None


@pytest.mark.parametrize("dtype", DTYPES)
def test_weights_made_in_inference_mode_are_packed_too(dtype, reorders):
    # ComfyUI runs nodes under torch.inference_mode: weights loaded there are inference tensors, without a version
    torch.manual_seed(0)
    with torch.inference_mode():
        layer = fused.Linear(24, 40).to(dtype)
        conv = torch.nn.Conv1d(24, 24, 5, padding=2, groups=4).to(dtype)
        x = torch.randn(1, 30, 24).to(dtype)
        plain, plain_conv = layer(x), fused.conv1d(x.transpose(1, 2), conv)  # outside the scope: unpacked
        with fused.prepacked():
            outs = [layer(x) for _ in range(3)]
            convs = [fused.conv1d(x.transpose(1, 2), conv) for _ in range(3)]
    assert len(reorders) == 1
    for out in outs:
        torch.testing.assert_close(out, plain, **_tolerance(dtype))
    for out in convs:
        torch.testing.assert_close(out, plain_conv, **_tolerance(dtype))

"""Executing a gazelle plan on ``sim`` performs exactly the predicted ops and computes
the masked convolution."""

from __future__ import annotations

import pytest
import torch
from artemis_plugins.backends.sim import SimBackend
from artemis_plugins.cost.gazelle import GazelleCostModel
from hypothesis import given, settings
from hypothesis import strategies as st

from artemis_core import ConvSpec, HEParams, SpecError
from artemis_core.he.executor import run_layer
from artemis_core.he.verify import reference_output

MODEL = GazelleCostModel()


def random_mask(kind: str, spec: ConvSpec, params: HEParams, gen: torch.Generator):
    """A mask of one pruning shape: whole groups of a kind, single weights, filters."""
    numel = torch.Size(spec.weight_shape).numel()
    mask = torch.ones(numel)
    if kind == "unstructured":
        mask = (torch.rand(numel, generator=gen) < 0.5).float()
    elif kind == "filter":
        keep = torch.rand(spec.c_out, generator=gen) < 0.5
        mask = mask.view(spec.c_out, -1).mul(keep.view(-1, 1)).view(-1)
    elif kind in MODEL.group_kinds:
        index = MODEL.group_index(spec, params, kind)
        drop = index[torch.rand(index.shape[0], generator=gen) < 0.5]
        mask[drop[drop >= 0]] = 0
    elif kind == "mixed":
        for part in ("positional", "diagonal", "unstructured"):
            mask = mask * random_mask(part, spec, params, gen).view(-1)
    return mask.view(spec.weight_shape)


@st.composite
def layers(draw, max_channels=24):
    kind = draw(st.sampled_from(["conv", "conv", "conv", "linear"]))
    c_in, c_out = draw(st.integers(1, max_channels)), draw(st.integers(1, max_channels))
    if kind == "linear":
        spec = ConvSpec("fc", c_in, c_out, 1, 1, 0, kind="linear", bias=draw(st.booleans()))
    else:
        k, stride = draw(st.sampled_from([1, 3])), draw(st.sampled_from([1, 2]))
        size = draw(st.sampled_from([1, 2, 3, 4, 6, 8]))
        gap = draw(st.sampled_from([1, 2]))
        spec = ConvSpec("conv", c_in, c_out, k, stride, k // 2, size, draw(st.sampled_from(
            [size, max(1, size // 2)])), gap, bias=draw(st.booleans()))
    return spec, HEParams(draw(st.integers(10, 12)), allow_insecure=True)


MASK_KINDS = st.sampled_from(
    ["dense", "unstructured", "positional", "diagonal", "block", "filter", "mixed"])


@settings(max_examples=60, deadline=None)
@given(layer=layers(), mask_kind=MASK_KINDS, seed=st.integers(0, 2**31 - 1))
def test_sim_executes_exactly_the_predicted_ops_and_the_masked_conv(layer, mask_kind, seed):
    check_execution(layer, mask_kind, seed)


@pytest.mark.slow
@settings(max_examples=1000, deadline=None)
@given(layer=layers(max_channels=70), mask_kind=MASK_KINDS, seed=st.integers(0, 2**31 - 1))
def test_sim_execution_wide_sweep(layer, mask_kind, seed):
    check_execution(layer, mask_kind, seed)


def check_execution(layer, mask_kind, seed):
    spec, params = layer
    gen = torch.Generator().manual_seed(seed)
    mask = random_mask(mask_kind, spec, params, gen)
    weight = torch.randn(spec.weight_shape, generator=gen, dtype=torch.float64)
    bias = torch.randn(spec.c_out, generator=gen, dtype=torch.float64) if spec.bias else None
    x = torch.randn(spec.c_in, spec.height, spec.width, generator=gen, dtype=torch.float64)
    plan = MODEL.plan(spec, params, mask)
    backend = SimBackend(params)
    out = run_layer(plan, backend, x, weight, bias)
    assert backend.ops == plan.op_count()
    assert backend.ops_by_level == plan.op_count_at(params.levels)  # each op at its level
    expected = reference_output(spec, x, weight * mask, bias)
    assert out.shape == expected.shape
    assert (out - expected).abs().max().item() < 1e-9


def test_plan_refuses_the_wrong_number_of_inputs():
    spec = ConvSpec("conv", 4, 4, height=4, width=4)
    params = HEParams(11, allow_insecure=True)
    backend = SimBackend(params)
    with pytest.raises(SpecError, match="got 2 input ciphertexts, expected 1"):
        MODEL.plan(spec, params).execute(backend, [None, None], torch.ones(spec.weight_shape))


def test_plan_refuses_a_bias_the_spec_does_not_have():
    spec = ConvSpec("conv", 4, 4, height=4, width=4)
    params = HEParams(11, allow_insecure=True)
    plan = MODEL.plan(spec, params)
    with pytest.raises(SpecError, match="bias=False"):
        run_layer(plan, SimBackend(params), torch.ones(4, 4, 4), torch.ones(spec.weight_shape),
                  torch.ones(4))


def test_fully_pruned_output_block_is_zero_without_any_op():
    spec = ConvSpec("conv", 4, 8, height=4, width=4)
    params = HEParams(11, allow_insecure=True)
    plan = MODEL.plan(spec, params, torch.zeros(spec.weight_shape))
    backend = SimBackend(params)
    out = run_layer(plan, backend, torch.randn(4, 4, 4), torch.randn(spec.weight_shape))
    assert backend.ops.pmult == backend.ops.rotations == 0
    assert not out.any()


@pytest.mark.parametrize("cost_model", ["gazelle", "bsgs"])
def test_a_plan_run_with_new_weights_uses_them(cost_model):
    """Plans keep their weight plaintexts between runs (a server's queries); new weight
    values must replace them, not be answered with the old ones."""
    from artemis_core.registry import get

    spec = ConvSpec("conv", 3, 5, height=4, width=4, bias=True)
    params = HEParams(11, allow_insecure=True)
    plan = get("cost_model", cost_model)().plan(spec, params)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 4, generator=gen, dtype=torch.float64)
    bias = torch.randn(5, generator=gen, dtype=torch.float64)
    for _ in range(2):
        weight = torch.randn(spec.weight_shape, generator=gen, dtype=torch.float64)
        out = run_layer(plan, SimBackend(params), x, weight, bias)
        assert (out - reference_output(spec, x, weight, bias)).abs().max() < 1e-9
    weight.mul_(2)  # changed in place: the same tensor, new values
    out = run_layer(plan, SimBackend(params), x, weight, bias)
    assert (out - reference_output(spec, x, weight, bias)).abs().max() < 1e-9

"""The bsgs cost model: agreement with a naive Orion/Lattigo reference, Lattigo's N1
rule, groups and their exact savings, and execution on the sim backend."""

from __future__ import annotations

import bsgs_reference as ref
import numpy as np
import pytest
import torch
from artemis_plugins.backends.sim import SimBackend
from artemis_plugins.cost.bsgs import BsgsBestCostModel, BsgsCostModel, orion_log_ratio
from hypothesis import given, settings
from hypothesis import strategies as st

from artemis_core import ConvSpec, HEParams, SpecError, registry
from artemis_core.he.backend import canonical_step
from artemis_core.he.executor import run_layer
from artemis_core.he.verify import check_layer, reference_output

MODEL, BEST = BsgsCostModel(), BsgsBestCostModel()


def small(log_n: int) -> HEParams:
    return HEParams(log_n, allow_insecure=True)


@st.composite
def layers(draw, max_channels: int = 12):
    """Small layers of every shape the project supports, at 2^9 .. 2^11 slots: one or
    several blocks, hybrid or square, channels straddling ciphertexts or not."""
    c_in, c_out = draw(st.integers(1, max_channels)), draw(st.integers(1, max_channels))
    if draw(st.integers(0, 4)) == 0:
        spec = ConvSpec("fc", c_in, c_out, 1, 1, 0, kind="linear", bias=draw(st.booleans()))
    else:
        k, stride = draw(st.sampled_from([1, 3, 5])), draw(st.sampled_from([1, 2]))
        size = draw(st.sampled_from([2, 3, 4, 6, 8])) * (1 if stride == 1 else 1)
        if stride == 2 and size % 2:
            size += 1
        gap = draw(st.sampled_from([1, 2]))
        spec = ConvSpec("conv", c_in, c_out, k, stride, k // 2, size, size, gap,
                        bias=draw(st.booleans()))
    return spec, small(draw(st.integers(10, 12)))


def random_mask(model, kind: str, spec: ConvSpec, params: HEParams,
                gen: torch.Generator) -> torch.Tensor:
    """Whole groups of a kind dropped at random, single weights, or nothing."""
    numel = torch.Size(spec.weight_shape).numel()
    mask = torch.ones(numel)
    if kind == "unstructured":
        mask = (torch.rand(numel, generator=gen) < 0.4).float()
    elif kind in model.group_kinds:
        index = model.group_index(spec, params, kind)
        drop = index[torch.rand(index.shape[0], generator=gen) < 0.5]
        mask[drop[drop >= 0]] = 0
    return mask.view(spec.weight_shape)


MASKS = st.sampled_from(["dense", "unstructured", "positional", "diagonal", "baby-step",
                         "giant-step", "block"])


def test_both_rules_are_registered():
    assert registry.get("cost_model", "bsgs") is BsgsCostModel
    assert registry.get("cost_model", "bsgs-best") is BsgsBestCostModel


def test_orion_ratio_is_a_natural_log_truncated():
    assert orion_log_ratio(2) == 0  # Orion's default: int(math.Log(2)) = 0
    assert orion_log_ratio(8) == 2
    with pytest.raises(SpecError, match="bsgs_ratio=0.5 must be at least 1"):
        BsgsCostModel(bsgs_ratio=0.5)


@settings(max_examples=40, deadline=None)
@given(layer=layers(), mask_kind=MASKS, rule=st.sampled_from(["lattigo", "best"]),
       seed=st.integers(0, 2**31 - 1))
def test_counts_equal_the_naive_orion_lattigo_reference(layer, mask_kind, rule, seed):
    spec, params = layer
    model = MODEL if rule == "lattigo" else BEST
    mask = random_mask(model, mask_kind, spec, params, torch.Generator().manual_seed(seed))
    ops = model.count(spec, params, mask)
    expected = ref.count(spec, mask.numpy(), params.slots, hybrid=True, rule=rule)
    assert (ops.input_rotations, ops.output_rotations, ops.other_rotations, ops.pmult) == (
        expected["baby"], expected["giant"], expected["other"], expected["pmult"])
    assert ops.rotation_steps == expected["steps"]


def test_dense_reference_16_channels_8x8():
    # L = 16·64 = 1024 slots of 8192: hybrid, period 1024, 3 output rotations; the
    # 144 diagonals are (i − o)·64 + tap shift for 16 channel offsets × 9 taps
    ops = MODEL.count(ConvSpec("c", 16, 16, height=8, width=8), HEParams(14))
    assert ops.pmult == 144
    assert ops.other_rotations == 3
    assert ops.rescales == 1
    # N1 = 64: 9 baby classes (the tap shifts mod 64), 16 giant ones (the channel
    # offsets); N1 = 128 overshoots the ratio (17 / 7 > 1), so Lattigo steps back to 64
    plan = MODEL.plan(ConvSpec("c", 16, 16, height=8, width=8), HEParams(14))
    assert int(plan.log_n1[0]) == 6
    assert (ops.input_rotations, ops.output_rotations) == (8, 15)
    assert BEST.count(ConvSpec("c", 16, 16, height=8, width=8), HEParams(14)).rotations == 23 + 3


def test_lattigo_rule_steps_back_when_the_ratio_overshoots():
    # diagonals {0..7}: N1 = 2 gives (1 baby, 3 giants), N1 = 4 (3, 1) -> ratio 3 > 1,
    # so Lattigo takes N1 = 2 (one baby, three giant rotations)
    spec = ConvSpec("fc", 8, 1, 1, 1, 0, kind="linear")
    params = small(10)
    weight_mask = torch.ones(1, 8)
    ops = MODEL.count(spec, params, weight_mask)
    assert ops.pmult == 8
    assert (ops.input_rotations, ops.output_rotations) == (1, 3)
    assert BEST.count(spec, params, weight_mask).rotations <= ops.rotations


def test_best_rule_never_needs_more_rotations_than_lattigo():
    for spec in (ConvSpec("c", 16, 16, height=8, width=8), ConvSpec("c", 3, 16, height=8,
                 width=8), ConvSpec("c", 16, 32, stride=2, height=8, width=8)):
        assert BEST.count(spec, HEParams(14)).rotations <= MODEL.count(spec, HEParams(14)).rotations


def test_one_level_and_one_rescale_per_output_ciphertext():
    ops = MODEL.count(ConvSpec("c", 64, 64, height=32, width=32), HEParams(16))
    assert ops.rescales == 2  # 64·1024 slots = two ciphertexts, square embedding
    assert ops.other_rotations == 0


def test_fully_pruned_layer_costs_nothing():
    spec = ConvSpec("c", 8, 8, height=8, width=8, bias=True)
    ops = MODEL.count(spec, small(12), torch.zeros(spec.weight_shape))
    assert ops.rotations == ops.pmult == ops.adds == ops.rescales == ops.keys == 0


@pytest.mark.parametrize("spec, message", [
    (ConvSpec("c", 4, 4, groups=2), "groups=2"),
    (ConvSpec("c", 4, 4, padding=0), "'same' padding"),
])
def test_unsupported_layers_are_refused(spec, message):
    with pytest.raises(SpecError, match=message):
        MODEL.count(spec, small(12))


def test_unknown_group_kind_lists_the_known_ones():
    with pytest.raises(SpecError, match="positional, diagonal, baby-step, giant-step, block"):
        MODEL.group_index(ConvSpec("c", 4, 4), small(12), "tap")


@pytest.mark.parametrize("kind", BsgsCostModel.group_kinds)
@pytest.mark.parametrize("spec", [
    ConvSpec("c", 5, 12, height=4, width=4),
    ConvSpec("c", 20, 16, stride=2, height=12, width=12),  # straddles 2^10 slots
    ConvSpec("fc", 37, 10, 1, 1, 0, kind="linear"),
])
def test_groups_of_each_kind_partition_the_weights(kind, spec):
    index = MODEL.group_index(spec, small(11), kind)
    members = index[index >= 0]
    assert sorted(members.tolist()) == list(range(torch.Size(spec.weight_shape).numel()))
    assert not ((index[:, 1:] >= 0) & (index[:, :-1] < 0)).any()


def test_positional_and_diagonal_groups_follow_their_definitions():
    spec = ConvSpec("c", 4, 4, height=4, width=4)  # 64 slots, one block of 2^10
    params = small(11)
    weight = torch.arange(4 * 4 * 9).reshape(4, 4, 9)
    tap = 2
    positional = MODEL.group_index(spec, params, "positional")
    assert set(positional[tap].tolist()) == set(weight[:, :, tap].reshape(-1).tolist())
    # channel diagonal: pairs with equal (i − o)·16 mod 64, i.e. i − o mod 4, all taps
    diagonal = MODEL.group_index(spec, params, "diagonal")
    rows = {frozenset(r[r >= 0].tolist()) for r in diagonal}
    for delta in range(4):
        assert frozenset(int(weight[o, (o + delta) % 4, t]) for o in range(4)
                         for t in range(9)) in rows


def test_a_tap_saves_its_baby_class_but_a_channel_diagonal_needs_its_neighbour():
    # 16 -> 16 on 8x8 (N1 = 64): baby classes are the tap shifts mod 64, giant class
    # j·64 holds channel offset j's taps with shift >= 0 and offset j+1's with shift < 0
    spec = ConvSpec("c", 16, 16, height=8, width=8)
    params = HEParams(14)
    taps = MODEL.group_savings(spec, params, MODEL.group_index(spec, params, "positional"))
    assert taps.pmult.tolist() == [16] * 9
    assert taps.rotations.tolist() == [1, 1, 1, 1, 0, 1, 1, 1, 1]  # centre tap: no rotation
    index = MODEL.group_index(spec, params, "diagonal")
    alone = MODEL.group_savings(spec, params, index)
    assert alone.pmult.tolist() == [9] * 16
    assert alone.rotations.tolist() == [0] * 16
    pair = torch.cat([index[3], index[4]]).view(1, -1)
    assert MODEL.group_savings(spec, params, pair).rotations.tolist() == [1]


def _count_without(model, spec, params, members):
    mask = torch.ones(spec.weight_shape).reshape(-1)
    mask[members] = 0
    return model.count(spec, params, mask.reshape(spec.weight_shape))


@settings(max_examples=30, deadline=None)
@given(layer=layers(), data=st.data(), best=st.booleans())
def test_group_savings_equal_the_count_difference(layer, data, best):
    spec, params = layer
    model = BEST if best else MODEL
    numel = torch.Size(spec.weight_shape).numel()
    kind = data.draw(st.sampled_from([*model.group_kinds, "single", "random"]))
    if kind == "single":
        index = torch.arange(numel).view(-1, 1)
    elif kind == "random":
        rows = data.draw(st.lists(st.lists(st.integers(-1, numel - 1), min_size=1, max_size=12),
                                  min_size=1, max_size=6))
        width = max(map(len, rows))
        index = torch.tensor([r + [-1] * (width - len(r)) for r in rows])
    else:
        index = model.group_index(spec, params, kind)
    picks = data.draw(st.lists(st.integers(0, index.shape[0] - 1), min_size=1, max_size=6))
    savings = model.group_savings(spec, params, index)
    dense = model.count(spec, params)
    for g in picks:
        zeroed = _count_without(model, spec, params, index[g][index[g] >= 0])
        assert savings.rotations[g] == dense.rotations - zeroed.rotations
        assert savings.pmult[g] == dense.pmult - zeroed.pmult


def test_group_index_out_of_range_is_refused():
    spec = ConvSpec("c", 2, 2, height=2, width=2)
    with pytest.raises(SpecError, match="group index 99 out of range for 36 weights"):
        MODEL.group_savings(spec, small(10), torch.tensor([[99]]))


@settings(max_examples=40, deadline=None)
@given(layer=layers(), mask_kind=MASKS, seed=st.integers(0, 2**31 - 1))
def test_sim_executes_exactly_the_predicted_ops_and_the_masked_conv(layer, mask_kind, seed):
    spec, params = layer
    gen = torch.Generator().manual_seed(seed)
    mask = random_mask(MODEL, mask_kind, spec, params, gen)
    weight = torch.randn(spec.weight_shape, generator=gen, dtype=torch.float64)
    bias = torch.randn(spec.c_out, generator=gen, dtype=torch.float64) if spec.bias else None
    x = torch.randn(spec.c_in, spec.height, spec.width, generator=gen, dtype=torch.float64)
    plan = MODEL.plan(spec, params, mask)
    backend = SimBackend(params)
    out = run_layer(plan, backend, x, weight, bias)
    assert backend.ops == plan.op_count()
    assert backend.ops_by_level == plan.op_count_at(params.levels)
    expected = reference_output(spec, x, weight * mask, bias)
    assert out.shape == expected.shape
    assert (out - expected).abs().max().item() < 1e-9


def test_plan_refuses_the_wrong_number_of_inputs():
    spec = ConvSpec("conv", 4, 4, height=4, width=4)
    params = small(11)
    with pytest.raises(SpecError, match="got 2 input ciphertexts, expected 1"):
        MODEL.plan(spec, params).execute(SimBackend(params), [None, None],
                                         torch.ones(spec.weight_shape))


def test_pack_then_unpack_of_an_identity_1x1_conv_is_the_input():
    spec = ConvSpec("c", 6, 6, kernel=1, padding=0, height=4, width=4, gap=2)
    params = small(10)
    x = torch.randn(6, 4, 4, dtype=torch.float64)
    weight = torch.eye(6, dtype=torch.float64).view(6, 6, 1, 1)
    plan = MODEL.plan(spec, params, weight != 0)
    out = run_layer(plan, SimBackend(params), x, weight)
    assert torch.allclose(out, x)


def test_keys_are_the_union_of_baby_giant_and_output_steps():
    spec = ConvSpec("c", 4, 8, stride=2, height=8, width=8)
    plan = MODEL.plan(spec, small(12))
    babies, giants = plan.steps(0)
    expected = {canonical_step(int(s), 2048) for s in np.concatenate([babies, giants]) if s}
    expected |= {1024, 512, 256, 128}  # hybrid: 2·64 = 128 rows of 2048 slots
    assert plan.op_count().rotation_steps == frozenset(expected)


@pytest.mark.parametrize("spec", [
    ConvSpec("hybrid", 4, 8, stride=2, height=8, width=8, bias=True),  # 4 output rotations
    ConvSpec("rows", 8, 24, height=16, width=16),  # 6144 output slots: two ciphertexts
    ConvSpec("straddle", 6, 6, height=12, width=12),  # 144-slot channels across 4096
])
def test_pyfhel_runs_the_plan_with_exactly_its_ops_to_ckks_precision(spec):
    # Pyfhel has no hoisting: each baby step is a full key switch there
    params = HEParams.with_depth(13, 1)
    gen = torch.Generator().manual_seed(5)
    weight = torch.randn(spec.weight_shape, generator=gen, dtype=torch.float64)
    weight = weight * (torch.rand(spec.weight_shape, generator=gen) < 0.5)
    bias = torch.randn(spec.c_out, generator=gen, dtype=torch.float64) if spec.bias else None
    x = torch.randn(spec.c_in, spec.height, spec.width, generator=gen, dtype=torch.float64)
    check = check_layer(spec, params, MODEL, x, weight, bias)
    assert check.executed == check.predicted and check.dense_counts_match
    assert check.max_abs_error < check.tolerance


def test_with_transform_prices_each_live_block_is_priced_as_one_transform():
    from dataclasses import replace

    from artemis_core.he.latency import estimate_seconds, load_calibration
    from artemis_core.he.specs import OpCount

    terms = {"transform": 0.02, "diagonal": 1e-4, "baby": 2e-3, "giant": 4e-3}
    base = load_calibration()
    priced = replace(base, engine="orion", transform={1: terms, 2: terms})
    spec = ConvSpec("c", 8, 16, 3, 2, 1, 8, 8, bias=True)
    params = HEParams.with_depth(13, 2, allow_insecure=True)
    plan = BsgsCostModel().plan(spec, params)
    details, ops = plan.details(), plan.op_count()
    assert details["blocks"] == 1
    outside = {2: OpCount(rescales=1), 1: OpCount(other_rotations=details["hybrid_rotations"],
                                                  adds=details["hybrid_rotations"] + 1)}
    expected = (0.02 + ops.pmult * 1e-4 + details["baby_rotations"] * 2e-3
                + details["giant_rotations"] * 4e-3 + estimate_seconds(outside, priced))
    assert plan.estimated_seconds(2, priced) == pytest.approx(expected)
    # without transform prices, every operation at its own price
    assert plan.estimated_seconds(2, base) == pytest.approx(
        estimate_seconds(plan.op_count_at(2), base))

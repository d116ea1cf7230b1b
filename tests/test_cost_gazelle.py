"""The gazelle cost model: dense references, geometry rules, groups and their savings."""

from __future__ import annotations

import pytest
import torch
from artemis_plugins.cost.gazelle import GazelleCostModel
from hypothesis import given, settings
from hypothesis import strategies as st

from artemis_core import ConvSpec, HEParams, SpecError, registry
from artemis_core.he.extract import extract_specs
from artemis_core.learning.zoo import build_model

MODEL = GazelleCostModel()


def small_params(log_n: int) -> HEParams:
    return HEParams(log_n, allow_insecure=True)


def test_is_registered_as_gazelle():
    assert registry.get("cost_model", "gazelle") is GazelleCostModel


def test_dense_reference_64_channels_32x32():
    ops = MODEL.count(ConvSpec("c", 64, 64, height=32, width=32), HEParams(16))
    assert (ops.input_rotations, ops.output_rotations, ops.rotations) == (16, 62, 78)
    assert ops.pmult == 1152
    assert ops.rescales == 2


def test_dense_reference_16_channels_8x8():
    ops = MODEL.count(ConvSpec("c", 16, 16, height=8, width=8), HEParams(14))
    assert (ops.rotations, ops.pmult) == (23, 144)


def test_keys_are_the_distinct_steps():
    ops = MODEL.count(ConvSpec("c", 16, 16, height=8, width=8), HEParams(14))
    # 8 tap shifts ±1, ±7, ±8, ±9 and 15 diagonal shifts −d·64
    assert ops.rotation_steps == frozenset({1, -1, 7, -7, 8, -8, 9, -9}
                                           | {-d * 64 for d in range(1, 16)})
    assert ops.keys == 23


def test_adds_accumulate_products_then_diagonals():
    ops = MODEL.count(ConvSpec("c", 16, 16, height=8, width=8), HEParams(14))
    assert ops.adds == 16 * (9 - 1) + (16 - 1)


def test_pointwise_conv_needs_no_input_rotation():
    ops = MODEL.count(ConvSpec("c", 16, 16, kernel=1, padding=0, height=8, width=8),
                      HEParams(14))
    assert ops.input_rotations == 0
    assert ops.output_rotations == 15


def test_taps_that_touch_no_pixel_cost_nothing():
    one_pixel = MODEL.count(ConvSpec("c", 4, 4, height=1, width=1, gap=8), small_params(12))
    assert one_pixel.input_rotations == 0
    assert one_pixel.pmult == 4  # only the centre tap: 4 diagonals
    # stride 2 on 2x2 reads rows/cols {0}: taps with dy or dx = -1 read padding only
    strided = MODEL.count(ConvSpec("c", 4, 4, stride=2, height=2, width=2), small_params(12))
    assert strided.input_rotations == 3
    assert strided.pmult == 4 * 4


def test_linear_layer_is_the_wide_diagonal_method():
    # q = 64, p = 16: 16 diagonals, 15 output rotations, then fold 64 -> 16 (2 rotations)
    ops = MODEL.count(ConvSpec("fc", 64, 10, 1, 1, 0, kind="linear"), HEParams(13))
    assert (ops.input_rotations, ops.output_rotations, ops.other_rotations) == (0, 15, 2)
    assert ops.pmult == 16


@pytest.mark.parametrize("c_in, c_out, rotations, pmult", [
    (1, 8, 8, 9), (3, 16, 11, 36), (16, 64, 23, 144),  # tall: q - 1 output rotations
    (16, 16, 23, 144), (64, 64, 71, 576),  # square: as before
])
def test_dense_3x3_counts_at_n_2_14(c_in, c_out, rotations, pmult):
    ops = MODEL.count(ConvSpec("c", c_in, c_out, height=8, width=8), HEParams(14))
    assert (ops.rotations, ops.pmult) == (rotations, pmult)


def test_wide_layer_folds_its_output_blocks():
    narrow = MODEL.count(ConvSpec("c", 16, 16, height=8, width=8), HEParams(14))
    ops = MODEL.count(ConvSpec("c", 64, 16, height=8, width=8), HEParams(14))
    assert ops.other_rotations == 2  # q/p = 64/16: log2(4) rotate-and-adds
    assert (ops.output_rotations, ops.pmult) == (15, 144)
    assert ops.adds == narrow.adds + 2
    assert ops.rotation_steps - narrow.rotation_steps == {16 * 64, 32 * 64}


def test_fully_pruned_layer_costs_nothing():
    spec = ConvSpec("c", 64, 16, height=8, width=8, bias=True)
    ops = MODEL.count(spec, HEParams(14), torch.zeros(spec.weight_shape))
    assert ops.rotations == ops.pmult == ops.adds == ops.rescales == ops.keys == 0


def test_bias_adds_one_plaintext_per_output_block():
    plain = MODEL.count(ConvSpec("c", 64, 64, height=32, width=32), HEParams(16))
    biased = MODEL.count(ConvSpec("c", 64, 64, height=32, width=32, bias=True), HEParams(16))
    assert biased.adds - plain.adds == 2


@pytest.mark.parametrize("spec, message", [
    (ConvSpec("c", 4, 4, groups=2), "groups=2"),
    (ConvSpec("c", 4, 4, kernel=2, padding=1), "odd kernels"),
    (ConvSpec("c", 4, 4, padding=0), "'same' padding"),
    (ConvSpec("c", 4, 4, height=64, width=64), "does not fit"),
])
def test_unsupported_layers_are_refused(spec, message):
    with pytest.raises(SpecError, match=message):
        MODEL.count(spec, small_params(12))


def test_mask_of_the_wrong_shape_is_refused():
    spec = ConvSpec("conv1", 4, 4, height=4, width=4)
    with pytest.raises(SpecError, match=r"conv1.*mask shape \(4, 4, 1, 1\)"):
        MODEL.count(spec, small_params(12), torch.ones(4, 4, 1, 1))


def test_input_layout_narrower_than_the_input_is_refused():
    with pytest.raises(SpecError, match="layout_channels=8 must be 0 .* at least c_in=16"):
        ConvSpec("c", 16, 16, layout_channels=8)


def test_unknown_group_kind_lists_the_known_ones():
    with pytest.raises(SpecError, match="positional, diagonal, block"):
        MODEL.group_index(ConvSpec("c", 4, 4), small_params(12), "tap")


@pytest.mark.parametrize("kind", GazelleCostModel.group_kinds)
@pytest.mark.parametrize("spec", [
    ConvSpec("c", 5, 12, height=4, width=4),
    ConvSpec("c", 40, 24, height=8, width=8),
    ConvSpec("fc", 37, 10, 1, 1, 0, kind="linear"),
])
def test_groups_of_each_kind_partition_the_weights(kind, spec):
    index = MODEL.group_index(spec, small_params(11), kind)
    members = index[index >= 0]
    assert sorted(members.tolist()) == list(range(torch.Size(spec.weight_shape).numel()))
    padding_after_members = (index[:, 1:] >= 0) & (index[:, :-1] < 0)
    assert not padding_after_members.any()


def test_groups_follow_the_design_definitions():
    spec = ConvSpec("c", 8, 8, height=4, width=4)  # p = 8, one block
    params = small_params(11)
    weight = torch.arange(8 * 8 * 9).reshape(8, 8, 9)
    positional = MODEL.group_index(spec, params, "positional")
    tap = 4
    assert set(positional[tap].tolist()) == set(weight[:, :, tap].reshape(-1).tolist())
    diagonal = MODEL.group_index(spec, params, "diagonal")
    d = 3
    expected = {int(weight[(i + d) % 8, i, t]) for i in range(8) for t in range(9)}
    assert set(diagonal[d].tolist()) == expected


def _count_without(spec, params, flat_indices):
    mask = torch.ones(spec.weight_shape).reshape(-1)
    mask[flat_indices] = 0
    return MODEL.count(spec, params, mask.reshape(spec.weight_shape))


layer_shapes = st.builds(
    lambda c_in, c_out, k, stride, size, gap: ConvSpec(
        "c", c_in, c_out, k, stride, k // 2, size, size, gap),
    st.integers(1, 70), st.integers(1, 70), st.sampled_from([1, 3]), st.sampled_from([1, 2]),
    st.sampled_from([1, 2, 4]), st.sampled_from([1, 2]),
)


@settings(max_examples=25, deadline=None)
@given(spec=layer_shapes, data=st.data())
def test_group_savings_equal_the_count_difference(spec, data):
    check_savings(spec, data)


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(spec=layer_shapes, data=st.data())
def test_group_savings_wide_sweep(spec, data):
    check_savings(spec, data)


def check_savings(spec, data):
    params = small_params(11)
    numel = torch.Size(spec.weight_shape).numel()
    kind = data.draw(st.sampled_from([*MODEL.group_kinds, "single", "filter", "random"]))
    if kind == "single":
        index = torch.arange(numel).view(-1, 1)
    elif kind == "filter":
        index = torch.arange(numel).view(spec.c_out, -1)
    elif kind == "random":
        rows = data.draw(st.lists(st.lists(st.integers(-1, numel - 1), min_size=1, max_size=12),
                                  min_size=1, max_size=6))
        width = max(map(len, rows))
        index = torch.tensor([r + [-1] * (width - len(r)) for r in rows])
    else:
        index = MODEL.group_index(spec, params, kind)
    picks = data.draw(st.lists(st.integers(0, index.shape[0] - 1), min_size=1, max_size=6))
    savings = MODEL.group_savings(spec, params, index)
    dense = MODEL.count(spec, params)
    for g in picks:
        members = index[g][index[g] >= 0]
        zeroed = _count_without(spec, params, members)
        assert savings.rotations[g] == dense.rotations - zeroed.rotations
        assert savings.pmult[g] == dense.pmult - zeroed.pmult


def test_whole_layer_group_saves_everything_including_the_fold():
    spec = ConvSpec("c", 16, 4, height=4, width=4)
    params = small_params(11)
    index = torch.arange(4 * 16 * 9).view(1, -1)
    dense = MODEL.count(spec, params)
    savings = MODEL.group_savings(spec, params, index)
    assert dense.other_rotations == 2
    assert (savings.rotations[0], savings.pmult[0]) == (dense.rotations, dense.pmult)


def test_overlapping_groups_get_the_same_savings_as_alone():
    spec, params = ConvSpec("c", 12, 20, height=4, width=4), small_params(11)
    positional = MODEL.group_index(spec, params, "positional")
    diagonal = MODEL.group_index(spec, params, "diagonal")
    width = max(positional.shape[1], diagonal.shape[1])
    both = torch.cat([torch.nn.functional.pad(g, (0, width - g.shape[1]), value=-1)
                      for g in (positional, diagonal)])
    together = MODEL.group_savings(spec, params, both)
    alone = [MODEL.group_savings(spec, params, g) for g in (positional, diagonal)]
    assert list(together.rotations) == [*alone[0].rotations, *alone[1].rotations]
    assert list(together.pmult) == [*alone[0].pmult, *alone[1].pmult]


# Dense (rotations, PMult) per layer with the square layout of period
# next_pow2(max(C_in, C_out)) (commit 6995f23, `artemis cost --model M --format json`).
SQUARE_LAYOUT_COUNTS = {
    ("digits-resnet", 14): {
        "conv1": (39, 288), "layer1.0.conv1": (39, 288), "layer1.0.conv2": (39, 288),
        "layer2.0.conv1": (71, 576), "layer2.0.conv2": (71, 576),
        "layer2.0.shortcut.0": (63, 64), "fc": (63, 64)},
    ("resnet20", 16): {
        **{f"layer1.{b}.conv{c}": (23, 144) for b in range(3) for c in (1, 2)},
        "conv1": (23, 144), "layer2.0.conv1": (39, 288), "layer2.0.shortcut.0": (31, 32),
        **{f"layer2.{b}.conv{c}": (39, 288) for b in range(3) for c in (1, 2) if (b, c) != (0, 1)},
        "layer3.0.conv1": (70, 576), "layer3.0.shortcut.0": (62, 64),
        **{f"layer3.{b}.conv{c}": (78, 1152) for b in range(3) for c in (1, 2) if (b, c) != (0, 1)},
        "fc": (63, 64)},
}


@pytest.mark.parametrize("model, log_n", SQUARE_LAYOUT_COUNTS)
def test_no_resnet_layer_costs_more_than_with_the_square_layout(model, log_n):
    shape = (1, 8, 8) if model == "digits-resnet" else (3, 32, 32)
    specs = extract_specs(build_model(model, 10, shape, seed=0), shape)
    before = SQUARE_LAYOUT_COUNTS[model, log_n]
    assert {s.name for s in specs} == set(before)
    for spec in specs:
        ops = MODEL.count(spec, HEParams(log_n))
        assert ops.rotations <= before[spec.name][0], spec.name
        assert ops.pmult <= before[spec.name][1], spec.name

"""Physical channel removal: which convs can lose filters, and counts of the smaller model."""

from __future__ import annotations

import torch
from torch import nn

from artemis_core.he.extract import extract_specs
from artemis_core.he.params import HEParams
from artemis_core.learning.zoo import build_model
from artemis_core.pruning.budget import parse_target, select
from artemis_core.pruning.channels import channel_chains, propagate, shrink
from artemis_core.pruning.groups import collect_groups
from artemis_core.pruning.pipeline import HESetting
from artemis_core.registry import get

PARAMS = HEParams(13)


def _net(width: int) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4)).eval()


def test_only_convs_that_feed_one_conv_and_nothing_else_form_chains():
    resnet = build_model("digits-resnet", 10, (1, 8, 8), seed=0)
    # the block's inner conv feeds conv2 only; the stem and conv2 feed residual additions
    assert channel_chains(resnet) == {"layer1.0.conv1": "layer1.0.conv2",
                                      "layer2.0.conv1": "layer2.0.conv2"}
    assert channel_chains(_net(8)) == {"0": "3"}  # conv 3 feeds a flatten


def test_removed_filters_count_as_the_smaller_model_and_compute_the_same():
    # 16 -> 7 channels: the consumer's input period drops from 16 to 8 (gazelle packs an
    # input at next_pow2(C_in)), which is what makes the smaller model cheaper
    net, dead = _net(16), torch.tensor([1, 4, 5, 9, 10, 11, 12, 13, 14])
    specs = extract_specs(net, (3, 8, 8))
    chains = channel_chains(net)
    masks = {"0": torch.ones(16, 3, 3, 3)}
    masks["0"][dead] = 0
    shapes = {s.name: torch.Size(s.weight_shape) for s in specs}
    masks = propagate(masks, chains, shapes)
    assert masks["3"][:, dead].eq(0).all() and masks["3"].sum() == 6 * 7 * 9
    # the same network built with 7 channels, from the surviving weights
    keep = torch.ones(16, dtype=torch.bool)
    keep[dead] = False
    small = _net(7)
    with torch.no_grad():
        small[0].weight.copy_(net[0].weight[keep])
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(small[1], name).copy_(getattr(net[1], name)[keep])
        small[3].weight.copy_(net[3].weight[:, keep])
        small[4].load_state_dict(net[4].state_dict())
        small[8].load_state_dict(net[8].state_dict())
        for module, mask in ((net[0], masks["0"]), (net[3], masks["3"])):
            module.weight.mul_(mask)
    x = torch.randn(5, 3, 8, 8)
    assert torch.allclose(net(x), small(x), atol=1e-5)
    cost = get("cost_model", "gazelle")()
    cut_specs, cut_masks = shrink(specs, masks, chains)
    small_specs = extract_specs(small, (3, 8, 8))
    assert cut_specs == small_specs
    counted = HESetting(specs, PARAMS, cost, chains).count(masks)
    assert counted == HESetting(small_specs, PARAMS, cost).count()
    assert counted.rotations < HESetting(specs, PARAMS, cost).count(masks).rotations


def test_filter_pruning_reaches_reductions_zeroing_in_place_could_not():
    net = build_model("digits-resnet", 10, (1, 8, 8), seed=0)
    setting = HESetting.for_model(net, (1, 8, 8))
    strategy = get("strategy", "filter")()
    layers = collect_groups(net, setting.specs, setting.params, setting.cost_model, strategy)
    goal = parse_target("1.15x")  # in place, filter pruning stops at 1.08x on this model
    selection = select(layers, strategy, setting.specs, setting.params, setting.cost_model,
                       goal, chains=channel_chains(net))
    assert selection.ops.rotations <= int(selection.dense_ops.rotations / 1.15)
    in_place = select(layers, strategy, setting.specs, setting.params, setting.cost_model,
                      goal, best_effort=True)
    assert not in_place.reached

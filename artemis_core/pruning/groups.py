"""The prunable groups of a whole model under one strategy and cost model."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from ..he.cost_model import CostModel
from ..he.latency import Calibration, estimate_seconds
from ..he.params import HEParams
from ..he.specs import ConvSpec, OpCount
from .strategy import GroupSet, Strategy


@dataclass(frozen=True)
class LayerGroups:
    """One layer's spec, its module and its groups (all kinds concatenated)."""

    spec: ConvSpec
    module: nn.Module
    groups: GroupSet


def _concat(layer: str, sets: list[GroupSet]) -> GroupSet:
    width = max(s.index.shape[1] for s in sets)
    index = torch.cat([
        torch.nn.functional.pad(s.index, (0, width - s.index.shape[1]), value=-1) for s in sets
    ])
    return GroupSet(
        layer=layer,
        kind="+".join(dict.fromkeys(s.kind for s in sets)),
        index=index,
        rotations=torch.cat([torch.as_tensor(s.rotations) for s in sets]),
        pmult=torch.cat([torch.as_tensor(s.pmult) for s in sets]),
        cost=torch.cat([torch.as_tensor(s.cost, dtype=torch.float32) for s in sets]),
    )


def collect_groups(
    model: nn.Module, specs: list[ConvSpec], params: HEParams, cost_model: CostModel,
    strategy: Strategy,
) -> list[LayerGroups]:
    """Ask ``strategy`` for every layer's groups; layers with none are left out."""
    modules = dict(model.named_modules())
    layers = []
    for spec in specs:
        sets = [s for s in strategy.groups(spec, params, cost_model) if len(s)]
        if sets:
            layers.append(LayerGroups(spec, modules[spec.name], _concat(spec.name, sets)))
    return layers



def latency_weighted(layers: list[LayerGroups], calibration: Calibration) -> list[LayerGroups]:
    """The same groups with c_g = the estimated seconds zeroing each group saves (its
    rotations and PMults at the calibrated per-op latencies) instead of its rotations."""
    per_rotation = estimate_seconds(OpCount(other_rotations=1), calibration)
    per_pmult = estimate_seconds(OpCount(pmult=1), calibration)
    return [
        replace(lg, groups=replace(
            lg.groups, cost=(lg.groups.rotations * per_rotation
                             + lg.groups.pmult * per_pmult).clamp(min=0)))
        for lg in layers
    ]

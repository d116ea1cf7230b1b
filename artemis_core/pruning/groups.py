"""The prunable groups of a whole model under one strategy and cost model."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..he.cost_model import CostModel
from ..he.params import HEParams
from ..he.specs import ConvSpec
from .masking import effective_weight
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



def batchnorm_after(model: nn.Module, names: list[str],
                    input_shape: tuple[int, ...]) -> dict[str, nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm that directly normalises each named layer's output, found in one
    forward pass (a BN whose input tensor is that layer's output); layers without are
    absent."""
    modules = dict(model.named_modules())
    produced: dict[int, tuple[str, torch.Tensor]] = {}
    found: dict[str, nn.modules.batchnorm._BatchNorm] = {}

    def remember(name: str, output: torch.Tensor) -> None:
        produced[id(output)] = (name, output)  # the tensor is kept, so its id stays unique

    def match(bn: nn.modules.batchnorm._BatchNorm, args: tuple) -> None:
        if id(args[0]) in produced:
            found.setdefault(produced[id(args[0])][0], bn)

    handles = [modules[n].register_forward_hook(lambda m, a, out, n=n: remember(n, out))
               for n in names]
    handles += [m.register_forward_pre_hook(match) for m in modules.values()
                if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return found


def folded_weights(layers: list[LayerGroups], batchnorms: dict[str, nn.Module],
                   ) -> dict[str, torch.Tensor]:
    """Each layer's weight as the network uses it: times |γ|/√(running var + ε) of the
    BatchNorm after it, per output channel (BN rescales a conv's output, so the raw
    weight's size says little about a group's effect)."""
    out = {}
    for lg in layers:
        weight = effective_weight(lg.module).detach()
        bn = batchnorms.get(lg.spec.name)
        if bn is not None and bn.running_var is not None:
            gamma = bn.weight.detach().abs() if bn.weight is not None else 1.0
            scale = gamma / (bn.running_var + bn.eps).sqrt()
            weight = weight * scale.view(-1, *([1] * (weight.dim() - 1)))
        out[lg.spec.name] = weight
    return out

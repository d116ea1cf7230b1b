"""Physical channel removal, as a channel-pruned model really runs.

A conv whose output reaches exactly one other conv, through nothing but per-channel
layers (BatchNorm, ReLU, the polynomial activation), can drop an output filter *and* the
consumer's matching input channel: the network computes the same function, and both
layers are packed with fewer channels (a smaller block period, fewer rotations). A conv
whose output also feeds a residual addition, a concatenation or a flatten keeps its
channels (removing one would need the whole dependency group, as Torch-Pruning builds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..he.specs import ConvSpec
from ..learning.polyact import PolyAct

#: Modules a channel passes through unchanged in number and meaning.
PER_CHANNEL = (nn.BatchNorm2d, nn.ReLU, nn.Identity, PolyAct)
_PER_CHANNEL_FUNCTIONS = (F.relu, torch.relu)


class _Tracer(fx.Tracer):
    """torch.fx's tracer, keeping the per-channel modules (PolyAct too) as single nodes."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, PER_CHANNEL) or super().is_leaf_module(m, module_qualified_name)


def channel_chains(model: nn.Module) -> dict[str, str]:
    """``{producer conv: its only consumer conv}`` for every conv whose output reaches one
    conv and nothing else; ``{}`` when torch.fx cannot trace the model."""
    try:
        graph = _Tracer().trace(model)
    except Exception:  # noqa: BLE001 (any model torch.fx cannot trace keeps its channels)
        return {}
    modules = dict(model.named_modules())
    chains = {}
    for node in graph.nodes:
        if node.op == "call_module" and isinstance(modules.get(node.target), nn.Conv2d):
            consumer = _sole_consumer(node, modules)
            if consumer is not None:
                chains[node.target] = consumer
    return chains


def _sole_consumer(node: fx.Node, modules: Mapping[str, nn.Module]) -> str | None:
    while len(node.users) == 1:
        (user,) = node.users
        module = modules.get(user.target) if user.op == "call_module" else None
        if isinstance(module, nn.Conv2d) and module.groups == 1 and user.args[0] is node:
            return str(user.target)
        if isinstance(module, PER_CHANNEL) or (
                user.op == "call_function" and user.target in _PER_CHANNEL_FUNCTIONS):
            node = user
            continue
        return None
    return None


def dead_filters(masks: Mapping[str, torch.Tensor], chains: Mapping[str, str]
                 ) -> dict[str, torch.Tensor]:
    """Bool [C_out] per producer of ``chains``: output filters its mask zeroes entirely."""
    return {p: ~masks[p].reshape(masks[p].shape[0], -1).bool().any(dim=1)
            for p in chains if p in masks}


def propagate(masks: Mapping[str, torch.Tensor], chains: Mapping[str, str],
              shapes: Mapping[str, torch.Size]) -> dict[str, torch.Tensor]:
    """``masks`` with each consumer's input channels zeroed where its producer's filter is
    (so removing both changes nothing); ``shapes`` gives a layer without a mask."""
    out = dict(masks)
    for producer, dead in dead_filters(masks, chains).items():
        consumer = chains[producer]
        mask = out.get(consumer, torch.ones(shapes[consumer])).clone()
        mask[:, dead] = 0
        out[consumer] = mask
    return out


def shrink(specs: list[ConvSpec], masks: Mapping[str, torch.Tensor],
           chains: Mapping[str, str]) -> tuple[list[ConvSpec], dict[str, torch.Tensor]]:
    """The layers with every dead filter of a chain's producer removed, and the matching
    input channel of its consumer: smaller specs (channel counts and the consumer's input
    layout) and the masks cut to them. At least one filter of a layer is kept."""
    keep = {p: ~dead if (~dead).any() else torch.arange(len(dead)) == 0
            for p, dead in dead_filters(masks, chains).items()}
    producer_of = {c: p for p, c in chains.items()}
    out_specs, out_masks, shrunk = [], {}, {}
    for spec in specs:
        mask = masks.get(spec.name)
        keep_out, keep_in = keep.get(spec.name), keep.get(producer_of.get(spec.name, ""))
        c_out = int(keep_out.sum()) if keep_out is not None else spec.c_out
        c_in = int(keep_in.sum()) if keep_in is not None else spec.c_in
        layout = spec.layout_channels
        if keep_in is not None and layout:
            source = shrunk[producer_of[spec.name]]
            layout = max(source.c_in, source.c_out)
        new = replace(spec, c_in=c_in, c_out=c_out, layout_channels=layout)
        if mask is not None:
            if keep_out is not None:
                mask = mask[keep_out]
            if keep_in is not None:
                mask = mask[:, keep_in]
            out_masks[spec.name] = mask
        shrunk[spec.name] = new
        out_specs.append(new)
    return out_specs, out_masks

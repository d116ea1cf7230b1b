"""Plaintext baseline: whole output filters by L1 norm (Li et al., ICLR 2017)."""

import torch

from artemis_core import ConvSpec, CostModel, GroupSet, HEParams, Strategy, hookimpl
from artemis_core.pruning.strategy import make_group_set


class FilterStrategy(Strategy):
    """Each output filter W[o] is a group, ranked globally by its mean absolute weight
    (L1 norm / size, so filters of layers with different fan-in compare). HE-blind. A
    zeroed filter whose output reaches only the next conv is removed physically, with
    that conv's input channel, so the packing and the counts shrink."""

    name = "filter"
    description = "whole output filters by L1 norm, removed physically (Li et al. 2017)"
    rotation_aware = False
    he_aware = False
    removes_channels = True

    def groups(self, spec: ConvSpec, params: HEParams, cost_model: CostModel) -> list[GroupSet]:
        numel = int(torch.Size(spec.weight_shape).numel())
        index = torch.arange(numel).view(spec.c_out, -1)
        return [make_group_set(spec, params, cost_model, "filter", index)]

    def importance(self, weight: torch.Tensor, groups: GroupSet) -> torch.Tensor:
        return groups.gather(weight.detach()).abs().sum(dim=1) / groups.sizes.clamp(min=1)


@hookimpl
def register_strategies(register) -> None:
    register(FilterStrategy)

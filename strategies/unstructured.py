"""Plaintext baseline: global L1 magnitude pruning of single weights."""

import torch

from artemis_core import ConvSpec, CostModel, GroupSet, HEParams, Strategy, hookimpl
from artemis_core.pruning.strategy import make_group_set


class UnstructuredStrategy(Strategy):
    """Every weight is its own group, pruned by |w| globally across layers — the order
    ``torch.nn.utils.prune.global_unstructured(..., L1Unstructured)`` uses. HE-blind."""

    name = "unstructured"
    description = "single weights by global L1 magnitude (plaintext baseline)"
    rotation_aware = False
    he_aware = False

    def groups(self, spec: ConvSpec, params: HEParams, cost_model: CostModel) -> list[GroupSet]:
        numel = int(torch.Size(spec.weight_shape).numel())
        index = torch.arange(numel).unsqueeze(1)
        return [make_group_set(spec, params, cost_model, "weight", index)]

    def importance(self, weight: torch.Tensor, groups: GroupSet) -> torch.Tensor:
        return groups.gather(weight.detach()).abs().squeeze(1)


@hookimpl
def register_strategies(register) -> None:
    register(UnstructuredStrategy)

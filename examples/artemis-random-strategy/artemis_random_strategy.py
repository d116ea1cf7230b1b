"""A third-party Artemis strategy: random groups of weights (a sanity baseline).

Install with ``pip install ./examples/artemis-random-strategy``; ``artemis plugins``
then lists ``random`` with this distribution's name and version.
"""

from __future__ import annotations

import torch

from artemis_core import (
    ConvSpec,
    CostModel,
    GroupSet,
    HEParams,
    Strategy,
    hookimpl,
    make_group_set,
)

GROUP_SIZE = 16


class RandomStrategy(Strategy):
    """Weights shuffled (seeded by the layer name) into groups of ``GROUP_SIZE``."""

    name = "random"
    description = "random groups of 16 weights (example third-party plugin)"

    def groups(self, spec: ConvSpec, params: HEParams, cost_model: CostModel) -> list[GroupSet]:
        numel = int(torch.Size(spec.weight_shape).numel())
        generator = torch.Generator().manual_seed(sum(map(ord, spec.name)))
        order = torch.randperm(numel, generator=generator)
        padded = torch.full((-(-numel // GROUP_SIZE) * GROUP_SIZE,), -1, dtype=torch.long)
        padded[:numel] = order
        index = padded.view(-1, GROUP_SIZE)
        return [make_group_set(spec, params, cost_model, "random", index)]


@hookimpl
def register_strategies(register) -> None:
    register(RandomStrategy)

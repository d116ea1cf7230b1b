"""A third-party Artemis plugin: a strategy (random groups of weights, a sanity baseline)
and a model (a small CNN without BatchNorm and with odd channel counts).

Install with ``pip install ./examples/artemis-random-strategy``; ``artemis plugins``
then lists ``random`` and ``plain-odd-cnn`` with this distribution's name and version.
"""

from __future__ import annotations

import torch
from torch import nn

from artemis_core import (
    ConvSpec,
    CostModel,
    GroupSet,
    HEParams,
    ModelInfo,
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


def plain_odd_cnn(num_classes: int, input_shape: tuple[int, int, int]) -> nn.Module:
    """Two convs with biases and no BatchNorm, 5 then 7 channels (the second strided)."""
    channels = input_shape[0]
    return nn.Sequential(
        nn.Conv2d(channels, 5, 3, padding=1), nn.ReLU(),
        nn.Conv2d(5, 7, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(7, num_classes),
    )


@hookimpl
def register_models(register) -> None:
    register(ModelInfo("plain-odd-cnn", plain_odd_cnn, (1, 8, 8),
                       "5/7-channel CNN without BatchNorm (example third-party plugin)"))

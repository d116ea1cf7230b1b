"""A small plain CNN (no shortcuts): quick to train, handy in tests and examples."""

from __future__ import annotations

from torch import nn

from artemis_core import ModelInfo, hookimpl

from .resnet import conv_bn, init_weights


def build(num_classes: int, input_shape: tuple[int, int, int]) -> nn.Sequential:
    """Three same-padded 3×3 conv-BN-ReLU layers (the second with stride 2), average
    pooling and a linear classifier."""
    layers: list[nn.Module] = []
    for c_in, c_out, stride in ((input_shape[0], 16, 1), (16, 32, 2), (32, 32, 1)):
        layers += [*conv_bn(c_in, c_out, 3, stride), nn.ReLU()]
    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes)]
    model = nn.Sequential(*layers, *head)
    init_weights(model)
    return model


@hookimpl
def register_models(register) -> None:
    register(ModelInfo("small-cnn", build, (3, 8, 8), "three conv-BN-ReLU layers, for tests"))

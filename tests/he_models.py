"""HE-friendly test networks of any widths (shared by the sim and Pyfhel tests)."""

from __future__ import annotations

import torch
from torch import nn

from artemis_core.learning.polyact import PolyAct


def chain(widths: list[int], strides: list[int], classes: int, seed: int,
          channels: int = 1) -> nn.Sequential:
    """conv → BN → act per width (any widths: narrowing, widening, not powers of two),
    then avgpool and a linear classifier, with random BN statistics and activations."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for width, stride in zip(widths, strides, strict=True):
        layers += [nn.Conv2d(channels, width, 3, stride=stride, padding=1, bias=False),
                   nn.BatchNorm2d(width), PolyAct()]
        channels = width
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(channels, classes)).eval()
    with torch.no_grad():
        for act in (m for m in model if isinstance(m, PolyAct)):
            act.coefficients.copy_(torch.tensor([0.5, 0.3, -0.2]) + 0.1 * torch.randn(3))
        for bn in (m for m in model if isinstance(m, nn.BatchNorm2d)):
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2.0)
    return model

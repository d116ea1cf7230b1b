"""Build registered models by name."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import get


def build_model(name: str, num_classes: int, input_shape: tuple[int, int, int],
                seed: int | None = None) -> nn.Module:
    """A fresh ``name`` model; with ``seed`` its initial weights are reproducible (the
    global RNG is left as it was)."""
    info = get("model", name)
    if seed is None:
        return info.build(num_classes, tuple(input_shape))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return info.build(num_classes, tuple(input_shape))

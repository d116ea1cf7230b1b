"""Helpers shared by the built-in datasets (no hooks: not a dataset itself)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import TensorDataset

from artemis_core import ArtemisError

SPLITS = ("train", "test")


def check_split(dataset: str, split: str) -> None:
    """Refuse any split but ``train`` and ``test`` with a one-line error."""
    if split not in SPLITS:
        raise ArtemisError(f"dataset {dataset!r} has no split {split!r}; allowed: train, test")


def normalized(images: torch.Tensor, mean: Sequence[float], std: Sequence[float],
               labels: torch.Tensor) -> TensorDataset:
    """Images (N×C×H×W, values in [0, 1]) standardised per channel, with long labels."""
    shape = (1, -1, 1, 1)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(shape)
    std_t = torch.tensor(std, dtype=torch.float32).view(shape)
    return TensorDataset((images.float() - mean_t) / std_t, labels.long())


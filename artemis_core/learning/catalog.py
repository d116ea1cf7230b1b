"""Value types for the model and dataset plugin kinds."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch.utils.data import TensorDataset

from ..errors import ArtemisError
from ..registry import declare_kind


@dataclass(frozen=True)
class ModelInfo:
    """A registered architecture: ``build(num_classes, input_shape)`` returns the model."""

    name: str
    build: Callable[[int, tuple[int, int, int]], torch.nn.Module]
    default_input: tuple[int, int, int]
    description: str = ""


#: Environment variable naming the directory that holds local datasets (e.g. CIFAR).
DATA_ROOT_ENV = "ARTEMIS_DATA"


class Dataset(ABC):
    """A labelled image dataset (plugin kind ``dataset``).

    ``root`` is the directory of local data files; it defaults to ``$ARTEMIS_DATA``.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    input_shape: ClassVar[tuple[int, int, int]]
    num_classes: ClassVar[int]
    default_model: ClassVar[str]

    def __init__(self, root: str | Path | None = None) -> None:
        root = root if root is not None else os.environ.get(DATA_ROOT_ENV)
        self.root = Path(root) if root else None

    @abstractmethod
    def load(self, split: str) -> TensorDataset:
        """``split`` is ``"train"`` or ``"test"``; images are float C×H×W, labels long."""


#: Seed of :func:`subset`'s draw: fixed, so every run and seed sees the same images.
SUBSET_SEED = 0


def subset(data: TensorDataset, size: int | None) -> TensorDataset:
    """``size`` samples of ``data`` drawn without replacement (seeded with
    :data:`SUBSET_SEED`, in their original order); all of it for ``None``."""
    if size is None:
        return data
    total = len(data)
    if not 1 <= size <= total:
        raise ArtemisError(f"a subset of {size} samples is not possible: the split has {total}; "
                           f"allowed: 1..{total}")
    generator = torch.Generator().manual_seed(SUBSET_SEED)
    chosen = torch.randperm(total, generator=generator)[:size].sort().values
    return TensorDataset(*(t[chosen] for t in data.tensors))


declare_kind("model", ModelInfo, instances=True)
declare_kind("dataset", Dataset)

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


def check_samples(dataset: Dataset, split: str, data: TensorDataset, source: str) -> None:
    """One-line errors for a split that is empty, has labels outside [0, num_classes) or
    images of another shape than the dataset declares (``source`` names the files)."""
    images, labels = data.tensors
    name = dataset.name
    if not len(labels):
        raise ArtemisError(f"dataset {name!r}: the {split} split in {source!r} has no samples")
    if tuple(images.shape[1:]) != tuple(dataset.input_shape):
        raise ArtemisError(f"dataset {name!r}: {split} images in {source!r} are "
                           f"{tuple(images.shape[1:])}, expected {tuple(dataset.input_shape)}")
    bad = labels[(labels < 0) | (labels >= dataset.num_classes)]
    if len(bad):
        raise ArtemisError(f"dataset {name!r}: {split} label {int(bad[0])} in {source!r} is "
                           f"outside 0..{dataset.num_classes - 1} ({len(bad)} such labels)")


declare_kind("model", ModelInfo, instances=True)
declare_kind("dataset", Dataset)

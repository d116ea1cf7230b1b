"""Value types for the model and dataset plugin kinds."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch.utils.data import TensorDataset


@dataclass(frozen=True)
class ModelInfo:
    """A registered architecture: ``build(num_classes, input_shape)`` returns the model."""

    name: str
    build: Callable[[int, tuple[int, int, int]], torch.nn.Module]
    default_input: tuple[int, int, int]
    description: str = ""


class Dataset(ABC):
    """A labelled image dataset (plugin kind ``dataset``)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    input_shape: ClassVar[tuple[int, int, int]]
    num_classes: ClassVar[int]
    default_model: ClassVar[str]

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else None

    @abstractmethod
    def load(self, split: str) -> TensorDataset:
        """``split`` is ``"train"`` or ``"test"``; images are float C×H×W, labels long."""

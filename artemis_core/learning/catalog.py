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


#: The three splits every dataset gives through :meth:`Dataset.split`.
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Split:
    """How a dataset's training data is divided: ``validation`` (a fraction in (0, 1)) is
    carved from the plugin's training split, stratified by class and seeded by ``seed``;
    the rest is what models train on. The test split is left alone."""

    validation: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.validation < 1:
            raise ArtemisError(f"validation fraction {self.validation!r} must be in (0, 1), "
                               "e.g. 0.1")
        if self.seed < 0:
            raise ArtemisError(f"split seed {self.seed!r} must be >= 0")


def carve(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Boolean mask over ``labels``: a seeded, class-stratified ``fraction`` of each class
    (rounded, at least one sample of any class with two or more) marked for validation."""
    n = len(labels)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    by_class = perm[torch.argsort(labels[perm], stable=True)]  # shuffled within each class
    sorted_labels = labels[by_class]
    counts = torch.bincount(sorted_labels)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(n) - starts[sorted_labels]
    take = torch.round(counts.double() * fraction).long()
    take = torch.where(counts >= 2, take.clamp(min=1, max=None), take).minimum(counts - 1)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[by_class[rank < take[sorted_labels]]] = True
    return mask


class Dataset(ABC):
    """A labelled image dataset (plugin kind ``dataset``).

    ``root`` is the directory of local data files; it defaults to ``$ARTEMIS_DATA``. A
    plugin implements :meth:`load` (its own train and test data); :meth:`split` gives the
    train / validation / test protocol on top of it for every dataset.
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

    def split(self, name: str, how: Split | None = None) -> TensorDataset:
        """``"train"`` (the plugin's training data minus the validation part),
        ``"validation"`` (carved by ``how``, default :class:`Split()`) or ``"test"``."""
        if name not in SPLITS:
            raise ArtemisError(f"dataset {self.name!r} has no split {name!r}; allowed: "
                               f"{', '.join(SPLITS)}")
        source = str(self.root) if self.root else self.name
        if name == "test":
            test = self.load("test")
            check_samples(self, "test", test, source)
            return test
        how = how or Split()
        train = self.load("train")
        check_samples(self, "train", train, source)
        images, labels = train.tensors
        held_out = carve(labels, how.validation, how.seed)
        keep = held_out if name == "validation" else ~held_out
        return TensorDataset(images[keep], labels[keep])


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

"""A small seeded synthetic dataset: one fixed random pattern per class plus noise."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from artemis_core import Dataset, hookimpl

from ._common import check_split

SIZES = {"train": 512, "test": 256}
#: Different seeds per split so that test samples are not copies of training ones.
SEEDS = {"train": 1, "test": 2}
PATTERN_SEED = 0
NOISE = 1.0


class Synthetic(Dataset):
    """3×8×8 images of 4 classes: class pattern (fixed, seeded) + Gaussian noise.

    Learnable to high accuracy in seconds; for tests and smoke runs, not for results.
    """

    name = "synthetic"
    description = "seeded random 3×8×8 images, 4 classes (pattern + noise), for tests"
    input_shape = (3, 8, 8)
    num_classes = 4
    default_model = "small-cnn"

    def load(self, split: str) -> TensorDataset:
        check_split(self.name, split)
        patterns = torch.randn((self.num_classes, *self.input_shape),
                               generator=torch.Generator().manual_seed(PATTERN_SEED))
        generator = torch.Generator().manual_seed(SEEDS[split])
        labels = torch.randint(self.num_classes, (SIZES[split],), generator=generator)
        noise = NOISE * torch.randn((SIZES[split], *self.input_shape), generator=generator)
        return TensorDataset(patterns[labels] + noise, labels)


@hookimpl
def register_datasets(register) -> None:
    register(Synthetic)

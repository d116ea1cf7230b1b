"""scikit-learn's handwritten digits (8×8, ships with sklearn: real data, no download)."""

from __future__ import annotations

from functools import cache

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import TensorDataset

from artemis_core import Dataset, hookimpl

from ._common import check_split, normalized

#: The split is fixed so that results are comparable across runs and machines.
TEST_FRACTION = 0.2
SPLIT_SEED = 0


@cache
def _split() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(data.target, dtype=torch.long)
    indices = torch.arange(len(labels)).numpy()
    train, test = train_test_split(indices, test_size=TEST_FRACTION, random_state=SPLIT_SEED,
                                   stratify=labels.numpy())
    return {"train": (images[train], labels[train]), "test": (images[test], labels[test])}


class Digits(Dataset):
    """1,797 handwritten digits, 1×8×8, 10 classes; a fixed stratified 80/20 split
    (``random_state=0``), standardised with the training split's mean and std."""

    name = "digits"
    description = "scikit-learn handwritten digits, 1×8×8, 10 classes, fixed 80/20 split"
    input_shape = (1, 8, 8)
    num_classes = 10
    default_model = "digits-resnet"

    def load(self, split: str) -> TensorDataset:
        check_split(self.name, split)
        train_images = _split()["train"][0]
        images, labels = _split()[split]
        return normalized(images, [train_images.mean().item()], [train_images.std().item()],
                          labels)


@hookimpl
def register_datasets(register) -> None:
    register(Digits)

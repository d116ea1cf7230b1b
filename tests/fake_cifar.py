"""Small CIFAR files in the standard python-pickle format, for tests (no download)."""

import pickle
from pathlib import Path

import numpy as np

CIFAR10_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def write_batch(path: Path, rng: np.random.Generator, count: int, label_key: bytes,
                classes: int) -> tuple[np.ndarray, list[int]]:
    """One batch file: ``b"data"`` uint8 N×3072 and a label list; returns both."""
    data = rng.integers(0, 256, size=(count, 3072), dtype=np.uint8)
    labels = rng.integers(0, classes, size=count).tolist()
    with open(path, "wb") as stream:
        pickle.dump({b"data": data, label_key: labels, b"batch_label": b"x"}, stream)
    return data, labels


def write_cifar10(root: Path, per_batch: int = 3, test: int = 4, seed: int = 0) -> dict:
    """``root/cifar-10-batches-py`` with five training batches and a test batch."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    return {split: [write_batch(folder / name, rng, per_batch if split == "train" else test,
                                b"labels", 10) for name in names]
            for split, names in CIFAR10_FILES.items()}

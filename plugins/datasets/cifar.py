"""CIFAR-10 / CIFAR-100 from a local directory in the standard python-pickle format.

Nothing is downloaded: unpack ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz``
from https://www.cs.toronto.edu/~kriz/cifar.html into a directory and pass it as
``--data-root`` (or set ``ARTEMIS_DATA``).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import TensorDataset

from artemis_core import ArtemisError, Dataset, hookimpl
from artemis_core.learning.catalog import check_samples

from ._common import check_split, normalized

#: The only globals a CIFAR batch file may reference (numpy arrays); anything else in a
#: pickle is refused, so a planted file cannot run code.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_batch(path: Path) -> dict[bytes, Any]:
    """One CIFAR python batch file (a pickled dict with bytes keys)."""
    try:
        with path.open("rb") as stream:
            batch = _BatchUnpickler(stream, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise ArtemisError(f"{str(path)!r} is not a CIFAR python batch file: {exc}") from None
    if not isinstance(batch, dict) or b"data" not in batch:
        raise ArtemisError(f"{str(path)!r} is not a CIFAR python batch file: no b'data' entry")
    return batch


class CifarPickle(Dataset):
    """Common reader; subclasses name the folder, files, label key and statistics."""

    input_shape = (3, 32, 32)
    default_model = "resnet20"
    folder: ClassVar[str]
    files: ClassVar[dict[str, tuple[str, ...]]]
    label_key: ClassVar[bytes]
    mean: ClassVar[tuple[float, float, float]]
    std: ClassVar[tuple[float, float, float]]

    def directory(self) -> Path:
        """``root/<folder>``, or ``root`` itself when it holds the batch files."""
        if self.root is None:
            raise ArtemisError(f"dataset {self.name!r} reads local files: pass --data-root DIR "
                               f"or set ARTEMIS_DATA to the directory that holds "
                               f"{self.folder}/ (Artemis never downloads data)")
        for candidate in (self.root / self.folder, self.root):
            if all((candidate / f).is_file() for names in self.files.values() for f in names):
                return candidate
        expected = ", ".join(f for names in self.files.values() for f in names)
        looked = f"{str(self.root / self.folder)!r} or {str(self.root)!r}"
        raise ArtemisError(f"dataset {self.name!r}: no {expected} in {looked}; unpack the "
                           f"python version of {self.name} there (Artemis never downloads data)")

    def load(self, split: str) -> TensorDataset:
        check_split(self.name, split)
        directory = self.directory()
        images, labels = [], []
        for file in self.files[split]:
            image_array, label_array = self._arrays(directory / file)
            images.append(image_array)
            labels.append(label_array)
        pixels = torch.from_numpy(np.concatenate(images)).float() / 255.0
        data = normalized(pixels, self.mean, self.std, torch.from_numpy(np.concatenate(labels)))
        check_samples(self, split, data, source=str(directory))
        return data

    def _arrays(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """Images (N×C×H×W uint8) and labels of one batch file, checked."""
        batch = read_batch(path)
        if self.label_key not in batch:
            raise ArtemisError(f"{str(path)!r} has no {self.label_key!r} labels")
        size = int(np.prod(self.input_shape))
        try:
            data = np.asarray(batch[b"data"])
            labels = np.asarray(batch[self.label_key])
        except (ValueError, TypeError) as exc:
            raise ArtemisError(f"{str(path)!r}: unreadable arrays: {exc}") from None
        if data.dtype != np.uint8 or data.size % size:
            raise ArtemisError(
                f"{str(path)!r}: b'data' is {data.dtype} with {data.size} values; expected "
                f"uint8 pixels, a multiple of {'x'.join(map(str, self.input_shape))} = {size}")
        if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
            raise ArtemisError(f"{str(path)!r}: {self.label_key!r} is {labels.dtype} of shape "
                               f"{labels.shape}; expected a list of integer labels")
        if len(labels) != data.size // size:
            raise ArtemisError(f"{str(path)!r}: {data.size // size} images but {len(labels)} "
                               f"labels in {self.label_key!r}")
        return data.reshape(-1, *self.input_shape), labels.astype(np.int64)


class Cifar10(CifarPickle):
    """CIFAR-10: 50,000 + 10,000 colour 32×32 images, 10 classes."""

    name = "cifar10"
    description = "CIFAR-10 from a local cifar-10-batches-py directory (no download)"
    num_classes = 10
    folder = "cifar-10-batches-py"
    files = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
    label_key = b"labels"
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)


class Cifar100(CifarPickle):
    """CIFAR-100: 50,000 + 10,000 colour 32×32 images, 100 (fine) classes."""

    name = "cifar100"
    description = "CIFAR-100 (fine labels) from a local cifar-100-python directory (no download)"
    num_classes = 100
    folder = "cifar-100-python"
    files = {"train": ("train",), "test": ("test",)}
    label_key = b"fine_labels"
    mean = (0.5071, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2762)


@hookimpl
def register_datasets(register) -> None:
    register(Cifar10)
    register(Cifar100)

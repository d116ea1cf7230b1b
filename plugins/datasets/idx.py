"""The MNIST family (Fashion-MNIST, MNIST, KMNIST) from the four standard IDX files.

Nothing is downloaded. The files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each gzipped or not) are looked
for under ``--data-root`` / ``$ARTEMIS_DATA`` (in ``ROOT/<folder>``, torchvision's
``ROOT/<Name>/raw`` or ``ROOT`` itself), then in the system directory where a
distribution package puts them (Debian's ``dataset-fashion-mnist``:
``/usr/share/datasets/fashion-mnist``).
"""

from __future__ import annotations

import gzip
import zlib
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch.utils.data import TensorDataset

from artemis_core import ArtemisError, Dataset, hookimpl

from ._common import check_split, normalized

#: The standard file stems per split (each may end in ``.gz``).
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
#: IDX type codes (third magic byte) and the big-endian numpy type each stores.
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
STEMS = tuple(stem for pair in FILES.values() for stem in pair)
GZIP_MAGIC = b"\x1f\x8b"


class IdxError(ValueError):
    """A file that is not a well-formed IDX file (the reason is the message)."""


def parse_idx(raw: bytes) -> np.ndarray:
    """The array an IDX file's bytes hold (magic 0 0 TYPE NDIM, NDIM big-endian uint32
    sizes, then the data); raises :class:`IdxError` on any inconsistency."""
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in IDX_TYPES:
        raise IdxError(f"bad magic number {raw[:4].hex() or 'empty file'}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise IdxError(f"header of {ndim} dimensions is cut short")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise IdxError(f"shape {shape} needs {expected} data bytes, the file has "
                       f"{len(raw) - header}")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape)


def read_idx(path: Path) -> np.ndarray:
    """One IDX file, gzipped (detected by its magic bytes, not its name) or not."""
    raw = path.read_bytes()
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise IdxError(f"gzip data is damaged ({exc})") from None
    return parse_idx(raw)


@lru_cache(maxsize=8)
def _cached(path: str, mtime_ns: int, size: int) -> np.ndarray:
    """``read_idx`` memoised per file version (compare loads a split once per run)."""
    return read_idx(Path(path))


@lru_cache(maxsize=4)
def _pixel_stats(path: str, mtime_ns: int, size: int) -> tuple[float, float]:
    """Mean and std of an image file's pixels scaled to [0, 1], from a 256-bin histogram
    (exact, and without a float copy of the 47 M training pixels), once per file version."""
    images = torch.tensor(_cached(path, mtime_ns, size).reshape(-1))  # the cache is read-only
    counts = torch.bincount(images, minlength=256).double()
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    mean = float(counts @ levels / counts.sum())
    var = float(counts @ (levels - mean) ** 2 / max(counts.sum().item() - 1, 1))
    return mean, var ** 0.5


class IdxDataset(Dataset):
    """Common reader: 1×28×28 uint8 images and uint8 labels from the four IDX files,
    scaled to [0, 1] and standardised with the training images' mean and std."""

    input_shape = (1, 28, 28)
    num_classes = 10
    default_model = "mnist-resnet"
    #: Folder names under the data root, most specific first.
    folders: ClassVar[tuple[str, ...]]
    #: Directory a system package installs the files to (checked last), if any.
    system_dir: ClassVar[Path | None] = None
    #: How to get the files, for the one-line error.
    how_to_get: ClassVar[str]

    def candidates(self) -> list[Path]:
        """Directories searched for the four files, in order."""
        found: list[Path] = []
        if self.root is not None:
            found += [self.root / folder for folder in self.folders] + [self.root]
        if self.system_dir is not None:
            found.append(self.system_dir)
        return found

    def directory(self) -> Path:
        """The first candidate directory that holds any of the four files (it must hold
        all of them: a partial set is an error, not a reason to look further); a one-line
        error naming the missing files, where they were looked for and how to get them."""
        candidates = self.candidates()
        if not candidates:
            raise ArtemisError(f"dataset {self.name!r} reads local files: pass --data-root DIR "
                               f"or set ARTEMIS_DATA; {self.how_to_get}")
        for directory in candidates:
            missing = [stem for stem in STEMS if _either(directory, stem) is None]
            if not missing:
                return directory
            if len(missing) < len(STEMS):
                looked = repr(str(directory))
                break
        else:
            looked = ", ".join(repr(str(d)) for d in candidates)
        raise ArtemisError(f"dataset {self.name!r}: no {', '.join(f'{s}[.gz]' for s in missing)}"
                           f" in {looked}; {self.how_to_get}")

    def read(self, stem: str) -> tuple[Path, np.ndarray]:
        """One of the four files: its path and array; a damaged file is a one-line error."""
        path = _either(self.directory(), stem)
        assert path is not None  # directory() found it
        try:
            return path, _cached(*_version(path))
        except (IdxError, OSError) as exc:
            raise ArtemisError(f"dataset {self.name!r}: {str(path)!r} is not a valid IDX "
                               f"file: {exc}; replace it: {self.how_to_get}") from None

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """A split's images (N×28×28 uint8) and labels (N), checked against each other."""
        (images_path, images), (labels_path, labels) = (self.read(s) for s in FILES[split])
        bad = None
        if images.dtype != np.uint8 or labels.dtype != np.uint8:
            bad = (f"{str(images_path)!r} and {str(labels_path)!r} hold {images.dtype} and "
                   f"{labels.dtype}, expected unsigned bytes (IDX type 0x08)")
        elif images.ndim != 3 or images.shape[1:] != self.input_shape[1:]:
            bad = (f"{str(images_path)!r} holds images of shape {images.shape[1:]}, expected "
                   f"{self.input_shape[1:]}")
        elif labels.ndim != 1 or len(labels) != len(images):
            bad = (f"{str(labels_path)!r} has labels of shape {labels.shape} for "
                   f"{len(images)} images")
        elif labels.size and not 0 <= labels.min() <= labels.max() < self.num_classes:
            bad = f"{str(labels_path)!r} has labels outside 0..{self.num_classes - 1}"
        if bad:
            raise ArtemisError(f"dataset {self.name!r}: {bad}; {self.how_to_get}")
        return images, labels

    def load(self, split: str) -> TensorDataset:
        check_split(self.name, split)
        checked = {name: self.arrays(name) for name in FILES}  # all four, before training
        images, labels = checked[split]
        mean, std = _pixel_stats(*_version(_either(self.directory(), FILES["train"][0])))
        pixels = torch.tensor(images).unsqueeze(1).float() / 255.0  # a copy: the cache is read-only
        return normalized(pixels, [mean], [std], torch.tensor(labels.astype(np.int64)))


def _version(path: Path) -> tuple[str, int, int]:
    """The cache key of one file version: path, modification time and size."""
    stat = path.stat()
    return str(path), stat.st_mtime_ns, stat.st_size


def _either(directory: Path, stem: str) -> Path | None:
    """``directory/stem`` or ``directory/stem.gz``, whichever is a file (plain first)."""
    for name in (stem, f"{stem}.gz"):
        if (directory / name).is_file():
            return directory / name
    return None


class FashionMnist(IdxDataset):
    """Fashion-MNIST (Xiao et al. 2017): 60,000 + 10,000 grey 28×28 clothing images."""

    name = "fashion-mnist"
    description = "Fashion-MNIST, 1×28×28, 10 classes, 60k/10k, from the standard IDX files"
    folders = ("fashion-mnist", "FashionMNIST/raw")
    system_dir = Path("/usr/share/datasets/fashion-mnist")
    how_to_get = ("run `make data` (Debian: apt-get install dataset-fashion-mnist) or put the "
                  "four files from https://github.com/zalandoresearch/fashion-mnist in "
                  "--data-root DIR/fashion-mnist")


class Mnist(IdxDataset):
    """MNIST (LeCun et al. 1998): 60,000 + 10,000 grey 28×28 handwritten digits."""

    name = "mnist"
    description = "MNIST digits, 1×28×28, 10 classes, from local standard IDX files"
    folders = ("mnist", "MNIST/raw")
    how_to_get = ("put the four MNIST IDX files (e.g. from https://yann.lecun.com/exdb/mnist/) "
                  "in --data-root DIR/mnist (Artemis never downloads data)")


class Kmnist(IdxDataset):
    """Kuzushiji-MNIST (Clanuwat et al. 2018): 60,000 + 10,000 grey 28×28 cursive Japanese
    characters, 10 classes."""

    name = "kmnist"
    description = "Kuzushiji-MNIST, 1×28×28, 10 classes, from local standard IDX files"
    folders = ("kmnist", "KMNIST/raw")
    how_to_get = ("put the four KMNIST IDX files (https://github.com/rois-codh/kmnist) in "
                  "--data-root DIR/kmnist (Artemis never downloads data)")


@hookimpl
def register_datasets(register) -> None:
    register(FashionMnist)
    register(Mnist)
    register(Kmnist)

"""The HEBackend plugin interface: CKKS primitive operations that count themselves."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from .params import HEParams
from .specs import OpCount


class HEBackend(ABC):
    """Primitive CKKS operations (plugin kind ``he_backend``).

    A backend is created for one :class:`HEParams`, generates rotation keys only for the
    steps it is given, refuses a rotation without its key, tracks every ciphertext's
    level itself, and counts every operation in :attr:`ops` so executed work can be
    compared with a plan's predicted :class:`OpCount`. Ciphertexts are opaque handles.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""

    def __init__(self, params: HEParams) -> None:
        self.params = params
        self.ops = OpCount()

    def reset_counts(self) -> None:
        """Start counting from zero."""
        self.ops = OpCount()

    def _count(self, **delta: Any) -> None:
        self.ops = self.ops + OpCount(**delta)

    @abstractmethod
    def keygen(self, rotation_steps: Iterable[int]) -> None:
        """Generate secret/public/relinearisation keys and one rotation key per step
        (positive = left shift). Replaces any earlier rotation keys."""

    @abstractmethod
    def encrypt(self, values: np.ndarray) -> Any:
        """Encrypt a real vector of at most ``params.slots`` values at the top level."""

    @abstractmethod
    def decrypt(self, ct: Any) -> np.ndarray:
        """Decrypt to a real vector of ``params.slots`` values."""

    @abstractmethod
    def rotate(self, ct: Any, step: int) -> Any:
        """Cyclic left shift by ``step`` slots (one key switch; needs that step's key)."""

    @abstractmethod
    def add(self, a: Any, b: Any) -> Any:
        """Ciphertext + ciphertext (same level and scale)."""

    @abstractmethod
    def multiply_plain(self, ct: Any, values: np.ndarray) -> Any:
        """Ciphertext × plaintext vector, encoded at the ciphertext's level and scale.
        Not rescaled: call :meth:`rescale` once per accumulated sum."""

    @abstractmethod
    def add_plain(self, ct: Any, values: np.ndarray) -> Any:
        """Ciphertext + plaintext vector (encoded at the ciphertext's level and scale)."""

    @abstractmethod
    def rescale(self, ct: Any) -> Any:
        """Divide by the scale and drop one level; refuses when no level is left."""

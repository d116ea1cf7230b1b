"""The HEBackend plugin interface: CKKS primitive operations that count themselves."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np

from ..errors import BackendError
from ..registry import declare_kind
from .params import HEParams
from .specs import LevelCounts, OpCount

#: Purpose of a rotation -> the OpCount field that counts it.
ROTATION_FIELDS = {
    "input": "input_rotations", "output": "output_rotations", "other": "other_rotations",
}


def canonical_step(step: int, slots: int) -> int:
    """The rotation step in (-slots/2, slots/2]: steps equal modulo ``slots`` are one
    Galois element, hence one key, so keys are counted on this form."""
    step %= slots
    return step - slots if step > slots // 2 else step


class HEBackend(ABC):
    """Primitive CKKS operations (plugin kind ``he_backend``).

    A backend is created for one :class:`HEParams`, generates rotation keys only for the
    steps it is given, refuses a rotation without its key, tracks every ciphertext's
    level itself, and counts every operation in :attr:`ops` so executed work can be
    compared with a plan's predicted :class:`OpCount`. Ciphertexts are opaque handles.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: OpCount field that :meth:`_count_rotation` adds to (see :meth:`rotation_purpose`).
    _rotation_field: str = "other_rotations"

    def __init__(self, params: HEParams) -> None:
        self.params = params
        self.reset_counts()

    def reset_counts(self) -> None:
        """Start counting from zero."""
        self._counts: Counter[tuple[int, str]] = Counter()  # (level, OpCount field) -> n
        self._steps_used: defaultdict[int, set[int]] = defaultdict(set)  # level -> steps

    @property
    def ops(self) -> OpCount:
        """Every operation counted since the last :meth:`reset_counts`."""
        return sum(self.ops_by_level.values(), OpCount())

    @property
    def ops_by_level(self) -> LevelCounts:
        """The counted operations by the level (rescales left) of the ciphertext they
        ran on (prices differ by level: see :mod:`artemis_core.he.latency`)."""
        fields: defaultdict[int, dict[str, int]] = defaultdict(dict)
        for (level, name), n in self._counts.items():
            fields[level][name] = n
        return {level: OpCount(**fields[level],
                               rotation_steps=frozenset(self._steps_used.get(level, ())))
                for level in sorted(fields)}

    def _encrypt_level(self, level: int | None) -> int:
        """``level`` checked against the chain (``None``: the top level)."""
        if level is None:
            return self.params.levels
        if not isinstance(level, int) or not 0 <= level <= self.params.levels:
            raise BackendError(f"encrypt: level={level!r}; allowed: 0..{self.params.levels} "
                               f"(rescales left in {list(self.params.coeff_modulus_bits)})")
        return level

    def _count(self, level: int, **delta: int) -> None:
        """Count operations on a ciphertext at ``level``."""
        for name, n in delta.items():
            self._counts[level, name] += n

    @contextmanager
    def rotation_purpose(self, purpose: str) -> Iterator[None]:
        """Count rotations inside the block as ``purpose`` (``input``, ``output`` or
        ``other``): the caller knows why it rotates, the backend only counts."""
        if purpose not in ROTATION_FIELDS:
            allowed = ", ".join(ROTATION_FIELDS)
            raise BackendError(f"rotation purpose {purpose!r}; allowed: {allowed}")
        previous, self._rotation_field = self._rotation_field, ROTATION_FIELDS[purpose]
        try:
            yield
        finally:
            self._rotation_field = previous

    def _count_rotation(self, level: int, step: int) -> None:
        """Count one rotation by ``step`` of a ciphertext at ``level`` under the current
        purpose."""
        self._counts[level, self._rotation_field] += 1
        self._steps_used[level].add(canonical_step(step, self.params.slots))

    @abstractmethod
    def keygen(self, rotation_steps: Iterable[int]) -> None:
        """Generate secret/public/relinearisation keys and one rotation key per step
        (positive = left shift). Replaces any earlier rotation keys."""

    @abstractmethod
    def encrypt(self, values: np.ndarray, level: int | None = None) -> Any:
        """Encrypt a real vector of at most ``params.slots`` values at ``level`` (rescales
        left; ``None``: the top level, ``params.levels``)."""

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
    def multiply(self, a: Any, b: Any) -> Any:
        """Ciphertext × ciphertext at the same level, relinearised (one cmult).
        Not rescaled: the scale is the product of the operands' scales."""

    @abstractmethod
    def rescale(self, ct: Any) -> Any:
        """Divide by the scale and drop one level; refuses when no level is left."""


declare_kind("he_backend", HEBackend)

"""The ``sim`` HE backend: exact float64 slot vectors that count every operation.

What is counted (into ``self.ops``): each ``rotate`` (one key switch, under the purpose
set by :meth:`HEBackend.rotation_purpose`, its step recorded for the key count),
``multiply_plain`` (pmult), ``multiply`` (cmult), ``add`` and ``add_plain`` (adds) and ``rescale``
(rescales). ``encrypt``/``decrypt``/``keygen`` are client-side and not counted.

Like real CKKS it refuses what would fail there: a rotation without its key, adding
ciphertexts at different levels or scales, a rescale at level 0, and a product with an
all-zero plaintext (SEAL refuses those as a transparent result; plans must skip them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from artemis_core import hookimpl
from artemis_core.errors import BackendError
from artemis_core.he.backend import HEBackend
from artemis_core.he.params import HEParams


@dataclass(frozen=True)
class SimCiphertext:
    """A simulated ciphertext: the plain slot values, its level and its scale as a
    power of the CKKS scale Δ (1 when fresh, 2 after a product, 1 after a rescale)."""

    values: np.ndarray
    level: int
    scale_power: int = 1


class SimBackend(HEBackend):
    """Numpy slot simulator with level/scale tracking and op counting."""

    name = "sim"
    description = "exact float64 slot simulator that counts every HE operation"

    def __init__(self, params: HEParams) -> None:
        super().__init__(params)
        self._keys: frozenset[int] = frozenset()

    def _vector(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.size > self.params.slots:
            raise BackendError(f"{values.size} values do not fit in {self.params.slots} slots")
        out = np.zeros(self.params.slots)
        out[: values.size] = values
        return out

    def keygen(self, rotation_steps: Iterable[int]) -> None:
        """Remember which rotation steps have keys (modulo the slot count)."""
        self._keys = frozenset(int(s) % self.params.slots for s in rotation_steps)

    def encrypt(self, values: np.ndarray, level: int | None = None) -> SimCiphertext:
        """A fresh ciphertext at ``level`` (``None``: the top level)."""
        return SimCiphertext(self._vector(values), self._encrypt_level(level))

    def decrypt(self, ct: SimCiphertext) -> np.ndarray:
        """The slot values (a copy)."""
        return ct.values.copy()

    def rotate(self, ct: SimCiphertext, step: int) -> SimCiphertext:
        """Cyclic left shift by ``step`` (positive = left); needs the step's key."""
        if int(step) % self.params.slots not in self._keys:
            raise BackendError(f"no rotation key for step {step}; keys were generated for "
                               f"{len(self._keys)} steps")
        self._count_rotation(ct.level, int(step))
        return SimCiphertext(np.roll(ct.values, -int(step)), ct.level, ct.scale_power)

    def add(self, a: SimCiphertext, b: SimCiphertext) -> SimCiphertext:
        """Ciphertext sum; both at the same level and scale."""
        if (a.level, a.scale_power) != (b.level, b.scale_power):
            raise BackendError(
                f"cannot add ciphertexts at level {a.level}, scale Δ^{a.scale_power} and "
                f"level {b.level}, scale Δ^{b.scale_power}"
            )
        self._count(a.level, adds=1)
        return SimCiphertext(a.values + b.values, a.level, a.scale_power)

    def multiply_plain(self, ct: SimCiphertext, values: np.ndarray) -> SimCiphertext:
        """Slot-wise product with a plaintext (scale grows by Δ; rescale later)."""
        plain = self._vector(values)
        if not plain.any():
            raise BackendError("multiplication by an all-zero plaintext; skip the product")
        self._count(ct.level, pmult=1)
        return SimCiphertext(ct.values * plain, ct.level, ct.scale_power + 1)

    def add_plain(self, ct: SimCiphertext, values: np.ndarray) -> SimCiphertext:
        """Add a plaintext encoded at the ciphertext's level and scale (counted as an add)."""
        self._count(ct.level, adds=1)
        return SimCiphertext(ct.values + self._vector(values), ct.level, ct.scale_power)

    def multiply(self, a: SimCiphertext, b: SimCiphertext) -> SimCiphertext:
        """Slot-wise product of two ciphertexts at one level (scales multiply)."""
        if a.level != b.level:
            raise BackendError(f"cannot multiply ciphertexts at levels {a.level} and {b.level}")
        self._count(a.level, cmult=1)
        return SimCiphertext(a.values * b.values, a.level, a.scale_power + b.scale_power)

    def rescale(self, ct: SimCiphertext) -> SimCiphertext:
        """Divide the scale by Δ and drop one level."""
        if ct.level == 0:
            raise BackendError("cannot rescale a ciphertext at level 0: no level left "
                               "(use a longer modulus chain)")
        if ct.scale_power < 2:
            raise BackendError(f"cannot rescale a ciphertext at scale Δ^{ct.scale_power}")
        self._count(ct.level, rescales=1)
        return SimCiphertext(ct.values, ct.level - 1, ct.scale_power - 1)


@hookimpl
def register_he_backends(register) -> None:
    """Register the built-in ``sim`` backend."""
    register(SimBackend)

"""The server's HE backend: real CKKS (Pyfhel) holding evaluation keys only.

A :class:`PyfhelEvaluator` is built from the bytes a client sends
(:class:`EvaluationKeys`: context, public, relinearisation and rotation keys). It has
no secret key, so it refuses to decrypt or to make keys; it encrypts with the public
key. It tracks every ciphertext's level and scale itself (Pyfhel's ``mod_level`` is
not reliable) and encodes each plaintext at its ciphertext's level, as SEAL requires,
once: a server answers many queries with the same weights, so encoded plaintexts are
kept for the evaluator's lifetime.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from Pyfhel import PyCtxt, Pyfhel, PyPtxt

from .backend import HEBackend, canonical_step
from .errors import BackendError, ParamsError
from .params import HEParams


def new_context(params: HEParams) -> Pyfhel:
    """A Pyfhel CKKS context for ``params`` (no keys yet); SEAL's own 128-bit check is
    lifted only when ``params.allow_insecure`` says so."""
    he = Pyfhel()
    he.contextGen(scheme="ckks", n=params.n, scale=2.0 ** params.scale_bits,
                  qi_sizes=list(params.coeff_modulus_bits),
                  sec=0 if params.allow_insecure else 128)
    return he


@dataclass(frozen=True)
class EvaluationKeys:
    """What a client sends the server once: serialised context, public key,
    relinearisation key and one rotation key per step in ``rotation_steps``."""

    context: bytes
    public_key: bytes
    relin_key: bytes
    rotation_keys: bytes
    rotation_steps: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        """Bytes on the wire."""
        return (len(self.context) + len(self.public_key) + len(self.relin_key)
                + len(self.rotation_keys))

    @classmethod
    def export(cls, he: Pyfhel, rotation_steps: Iterable[int]) -> EvaluationKeys:
        """Serialise the public parts of a keyed context (never its secret key)."""
        return cls(he.to_bytes_context(), he.to_bytes_public_key(), he.to_bytes_relin_key(),
                   he.to_bytes_rotate_key(), tuple(sorted(rotation_steps)))


@dataclass(frozen=True)
class Ciphertext:
    """A Pyfhel ciphertext with its level (rescales left) and scale as a power of Δ."""

    ctxt: PyCtxt
    level: int
    scale_power: int = 1


class PyfhelEvaluator(HEBackend):
    """CKKS primitives over a context that holds evaluation keys but no secret key."""

    name = "pyfhel-evaluator"
    description = "server-side Pyfhel CKKS with the client's evaluation keys only"

    def __init__(self, params: HEParams, keys: EvaluationKeys) -> None:
        super().__init__(params)
        he = Pyfhel()
        he.from_bytes_context(keys.context)
        he.from_bytes_public_key(keys.public_key)
        he.from_bytes_relin_key(keys.relin_key)
        he.from_bytes_rotate_key(keys.rotation_keys)
        if he.get_nSlots() != params.slots or list(he.qi_sizes) != list(params.coeff_modulus_bits):
            raise ParamsError(
                f"the client's context (N={he.get_poly_modulus_degree()}, primes "
                f"{list(he.qi_sizes)}) does not match N={params.n}, primes "
                f"{list(params.coeff_modulus_bits)}"
            )
        if not he.is_secret_key_empty():
            raise BackendError("evaluation keys must not contain a secret key")
        self.he = he
        self.keys = frozenset(canonical_step(s, params.slots) for s in keys.rotation_steps)
        # Weights are the same for every query: encode each plaintext once per level.
        self._plaintexts: dict[tuple[bytes, float, int], PyPtxt] = {}

    def keygen(self, rotation_steps: Iterable[int]) -> None:
        """Refused: keys come from the client, which alone holds the secret key."""
        raise BackendError("the server cannot generate keys: it holds no secret key; "
                           "load the client's EvaluationKeys instead")

    def decrypt(self, ct: Ciphertext) -> np.ndarray:
        """Refused: only the client, which holds the secret key, can decrypt."""
        raise BackendError("the server holds no secret key and cannot decrypt; "
                           "send the ciphertext back to the client")

    def encrypt(self, values: np.ndarray) -> Ciphertext:
        """Encrypt with the public key at the top level."""
        return Ciphertext(self.he.encrypt(self._vector(values)), self.params.levels)

    def load(self, data: bytes) -> Ciphertext:
        """A fresh ciphertext received from the client (top level)."""
        return Ciphertext(PyCtxt(pyfhel=self.he, bytestring=data), self.params.levels)

    @staticmethod
    def dump(ct: Ciphertext) -> bytes:
        """Serialise a ciphertext to send back to the client."""
        return ct.ctxt.to_bytes()

    def rotate(self, ct: Ciphertext, step: int) -> Ciphertext:
        """Left shift by ``step``; only with that step's own key (SEAL would otherwise
        compose several key switches silently)."""
        step = canonical_step(int(step), self.params.slots)
        if step not in self.keys:
            raise BackendError(f"no rotation key for step {step}; the client made keys for "
                               f"steps {sorted(self.keys)}")
        self._count_rotation(step)
        return Ciphertext(self.he.rotate(ct.ctxt, step, in_new_ctxt=True), ct.level,
                          ct.scale_power)

    def add(self, a: Ciphertext, b: Ciphertext) -> Ciphertext:
        """Ciphertext sum (same level and scale)."""
        self._check_same(a, b, "add")
        self._count(adds=1)
        return Ciphertext(self.he.add(a.ctxt, b.ctxt, in_new_ctxt=True), a.level, a.scale_power)

    def multiply(self, a: Ciphertext, b: Ciphertext) -> Ciphertext:
        """Ciphertext product, relinearised (same level and scale)."""
        self._check_same(a, b, "multiply")
        self._count(cmult=1)
        product = self.he.multiply(a.ctxt, b.ctxt, in_new_ctxt=True)
        self.he.relinearize(product)
        return Ciphertext(product, a.level, a.scale_power + b.scale_power)

    def multiply_plain(self, ct: Ciphertext, values: np.ndarray) -> Ciphertext:
        """Product with a plaintext encoded at scale Δ and the ciphertext's level."""
        vector = self._vector(values)
        if not vector.any():
            raise BackendError("multiplication by an all-zero plaintext; skip the product")
        self._count(pmult=1)
        plain = self._encode(vector, 2.0 ** self.params.scale_bits, ct.level)
        return Ciphertext(self.he.multiply_plain(ct.ctxt, plain, in_new_ctxt=True), ct.level,
                          ct.scale_power + 1)

    def add_plain(self, ct: Ciphertext, values: np.ndarray) -> Ciphertext:
        """Sum with a plaintext encoded at the ciphertext's exact scale and level."""
        self._count(adds=1)
        plain = self._encode(self._vector(values), ct.ctxt.scale, ct.level)
        return Ciphertext(self.he.add_plain(ct.ctxt, plain, in_new_ctxt=True), ct.level,
                          ct.scale_power)

    def rescale(self, ct: Ciphertext) -> Ciphertext:
        """Divide by one prime and drop a level."""
        if ct.level == 0:
            raise BackendError("cannot rescale a ciphertext at level 0: no level left; use a "
                               f"longer modulus chain than {list(self.params.coeff_modulus_bits)}")
        if ct.scale_power < 2:
            raise BackendError(f"cannot rescale a ciphertext at scale Δ^{ct.scale_power}")
        self._count(rescales=1)
        out = ct.ctxt.copy()
        self.he.rescale_to_next(out)
        return Ciphertext(out, ct.level - 1, ct.scale_power - 1)

    def _vector(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.size > self.params.slots:
            raise BackendError(f"{values.size} values do not fit in {self.params.slots} slots")
        return np.pad(values, (0, self.params.slots - values.size))

    def _encode(self, vector: np.ndarray, scale: float, level: int) -> PyPtxt:
        key = (vector.tobytes(), scale, level)
        plain = self._plaintexts.get(key)
        if plain is None:
            plain = self.he.encode(vector, scale=scale)
            for _ in range(self.params.levels - level):  # encode() gives the top level
                self.he.mod_switch_to_next(plain)
            self._plaintexts[key] = plain
        return plain

    @staticmethod
    def _check_same(a: Ciphertext, b: Ciphertext, what: str) -> None:
        if (a.level, a.scale_power) != (b.level, b.scale_power):
            raise BackendError(f"cannot {what} ciphertexts at level {a.level}, scale "
                               f"Δ^{a.scale_power} and level {b.level}, scale Δ^{b.scale_power}")

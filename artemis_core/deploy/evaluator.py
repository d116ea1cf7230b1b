"""The server's HE backend: the ``pyfhel`` backend holding evaluation keys only.

A client serialises its context, public, relinearisation and rotation keys into
:class:`EvaluationKeys` (bytes, as sent over a network; never the secret key). The
server's :class:`PyfhelEvaluator` loads them into a fresh context: it encrypts with the
public key and evaluates, but refuses to decrypt or to make keys. Because a server
answers many queries with the same weights, it encodes each weight plaintext once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from artemis_plugins.backends.pyfhel import PyfhelBackend, PyfhelCiphertext
from Pyfhel import PyCtxt

from ..errors import BackendError, ParamsError
from ..he.backend import canonical_step
from ..he.params import HEParams


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
    def export(cls, backend: PyfhelBackend) -> EvaluationKeys:
        """The public parts of a keyed backend's context (never its secret key)."""
        he = backend.pyfhel
        return cls(he.to_bytes_context(), he.to_bytes_public_key(), he.to_bytes_relin_key(),
                   he.to_bytes_rotate_key(), tuple(sorted(backend.rotation_steps)))


def to_bytes(ct: PyfhelCiphertext) -> bytes:
    """A ciphertext serialised for the wire."""
    return ct.ctxt.to_bytes()


def from_bytes(backend: PyfhelBackend, data: bytes, level: int) -> PyfhelCiphertext:
    """A received ciphertext, owned by ``backend``, at ``level`` (rescales left)."""
    return PyfhelCiphertext(PyCtxt(pyfhel=backend.pyfhel, bytestring=data), level, id(backend))


class PyfhelEvaluator(PyfhelBackend):
    """``pyfhel`` with the client's evaluation keys and no secret key."""

    name = "pyfhel-evaluator"
    description = "server-side pyfhel backend built from a client's evaluation keys"

    def __init__(self, params: HEParams, keys: EvaluationKeys) -> None:
        super().__init__(params)  # a bare context: no key of any kind yet
        he = self.pyfhel
        he.from_bytes_context(keys.context)
        he.from_bytes_public_key(keys.public_key)
        he.from_bytes_relin_key(keys.relin_key)
        he.from_bytes_rotate_key(keys.rotation_keys)
        if list(he.qi_sizes) != list(params.coeff_modulus_bits) or he.n != params.n:
            raise ParamsError(
                f"the client's context (N={he.n}, primes {list(he.qi_sizes)}) does not match "
                f"N={params.n}, primes {list(params.coeff_modulus_bits)}"
            )
        if not he.is_secret_key_empty():
            raise BackendError("evaluation keys must not contain a secret key")
        self._primes = [float(q) for q in he.get_qi()]
        self._steps = frozenset(canonical_step(s, params.slots) for s in keys.rotation_steps)
        self._has_keys = True  # public key: encryption works, decryption does not
        self._plaintexts = {}  # a server encodes each weight plaintext once

    def keygen(self, rotation_steps: Iterable[int]) -> None:
        """Refused: keys come from the client, which alone holds the secret key."""
        raise BackendError("the server cannot generate keys: it holds no secret key; "
                           "load the client's EvaluationKeys instead")

    def decrypt(self, ct: PyfhelCiphertext) -> np.ndarray:
        """Refused: only the client, which holds the secret key, can decrypt."""
        raise BackendError("the server holds no secret key and cannot decrypt; "
                           "send the ciphertext back to the client")

"""Encrypted inference with the client and the server apart.

The client owns the secret key: it makes the CKKS context and keys for the server's
:class:`ServiceInfo`, sends the server :class:`EvaluationKeys` (bytes, as over a
network), encrypts images and decrypts logits. The server owns the model: it holds
the compiled :class:`HEProgram` and a :class:`PyfhelEvaluator` built from the keys,
never a secret key, and turns ciphertext bytes into ciphertext bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from artemis_plugins.backends.pyfhel import PyfhelBackend

from ..he.specs import LevelCounts, OpCount
from .evaluator import EvaluationKeys, PyfhelEvaluator, from_bytes, to_bytes
from .he_program import HEProgram, ServiceInfo


class Client:
    """Holds the secret key; encrypts inputs and decrypts results for one service."""

    def __init__(self, service: ServiceInfo) -> None:
        self.service = service
        self._backend = PyfhelBackend(service.params)
        # exactly the steps the server uses: one key each, no more
        self._backend.keygen(service.rotation_steps)

    def evaluation_keys(self) -> EvaluationKeys:
        """The keys the server needs (public, relinearisation, rotations), serialised."""
        return EvaluationKeys.export(self._backend)

    def encrypt(self, image: torch.Tensor) -> list[bytes]:
        """One C×H×W image, packed for the first layer, encrypted and serialised."""
        return [to_bytes(self._backend.encrypt(v)) for v in self.service.pack(image)]

    def decrypt_slots(self, outputs: list[bytes]) -> list[np.ndarray]:
        """Every slot of the server's serialised output ciphertexts (all but the logits
        decrypt to zero, up to CKKS noise: the server masks them)."""
        level = self.service.output_level
        return [self._backend.decrypt(from_bytes(self._backend, b, level)) for b in outputs]

    def decrypt(self, outputs: list[bytes]) -> torch.Tensor:
        """The logits from the server's serialised output ciphertexts."""
        return self.service.read_logits(self.decrypt_slots(outputs))


@dataclass(frozen=True)
class Reply:
    """The server's answer to one query and the operations it executed (in all, and
    by level)."""

    outputs: list[bytes]
    ops: OpCount
    ops_by_level: LevelCounts


class Server:
    """Runs a compiled network on ciphertexts with the client's evaluation keys only."""

    def __init__(self, program: HEProgram, keys: EvaluationKeys) -> None:
        self.program = program
        self.backend = PyfhelEvaluator(program.service.params, keys)

    def warm_up(self) -> None:
        """Run the network once on a public-key encryption of zeros, so that every
        weight plaintext is encoded before the first real query."""
        spec = self.program.service.input_spec
        zeros = self.program.service.pack(torch.zeros(spec.c_in, spec.height, spec.width))
        self.program.run(self.backend, [self.backend.encrypt(v) for v in zeros])

    def infer(self, inputs: list[bytes]) -> Reply:
        """Evaluate the network on one encrypted image."""
        self.backend.reset_counts()
        top = self.program.service.params.levels
        outputs = self.program.run(self.backend, [from_bytes(self.backend, b, top)
                                                  for b in inputs])
        return Reply([to_bytes(ct) for ct in outputs], self.backend.ops,
                     self.backend.ops_by_level)

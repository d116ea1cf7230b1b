"""One model's client and server pair on our Pyfhel program, timed query by query.

The ``artemis`` engine (``plugins/engines/artemis.py``) wraps a :class:`Session` per
compiled model; :func:`~artemis_core.deploy.engine.run_engine` measures them.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from ..he.latency import load_calibration
from ..he.specs import OpCount
from .engine import CompiledModel
from .he_program import HEProgram
from .inference import Client, Server


class Session(CompiledModel):
    """One compiled program's client (secret key) and key-less server, made and warmed
    up; each :meth:`infer` is encrypt → serialise → server → decrypt, the server timed
    apart."""

    def __init__(self, program: HEProgram) -> None:
        start = time.perf_counter()
        self.program = program
        self.client = Client(program.service)
        keys = self.client.evaluation_keys()
        self.server = Server(program, keys)
        # sizes only: the serialised keys themselves would double the memory held
        self.rotation_keys = len(keys.rotation_steps)
        self.rotation_key_bytes = len(keys.rotation_keys)
        self.evaluation_key_bytes = keys.nbytes
        self.server.warm_up()
        self.setup_seconds = time.perf_counter() - start
        self.queries = 0
        self.server_wall = 0.0
        self.query_bytes = self.reply_bytes = 0
        self.ops = OpCount()

    def infer(self, image: torch.Tensor) -> torch.Tensor:
        """The client encrypts ``image``, the server evaluates, the client decrypts."""
        query = self.client.encrypt(image)
        served = time.perf_counter()
        reply = self.server.infer(query)
        self.server_wall += time.perf_counter() - served
        self.queries += 1
        self.query_bytes += sum(map(len, query))
        self.reply_bytes += sum(map(len, reply.outputs))
        self.ops = reply.ops
        return self.client.decrypt(reply.outputs)

    def stats(self) -> dict[str, Any]:
        """Per query: the operations the server executed, its wall seconds and the
        latency model's price of them (``None`` when the calibration is for another N),
        bytes sent each way; then keys, threads (SEAL runs on one), levels and the
        chain."""
        params = self.program.service.params
        queries = max(self.queries, 1)
        return {
            "rotations": self.ops.rotations, "pmult": self.ops.pmult, "cmult": self.ops.cmult,
            "server_seconds_per_image": self.server_wall / queries,
            "estimated_server_seconds": estimated_seconds(self.program),
            "query_bytes": self.query_bytes // queries,
            "reply_bytes": self.reply_bytes // queries,
            "rotation_keys": self.rotation_keys,
            "rotation_key_bytes": self.rotation_key_bytes,
            "evaluation_key_bytes": self.evaluation_key_bytes,
            "threads": 1, "levels": params.levels, "levels_used": self.program.depth,
            "bootstraps": 0,
            "log_n": params.log_n, "coeff_modulus_bits": list(params.coeff_modulus_bits),
            "security": params.security, "allow_insecure": params.allow_insecure,
        }


def held_bytes(program: HEProgram) -> int:
    """Memory one client and server pair holds for ``program``: every weight plaintext
    encoded at its level and its slot vector (the server keeps both), and the rotation
    keys three times (the client makes them, serialises them, the server loads them).
    For he-lenet under bsgs at N = 2^14 this is 5.2 GB; 5.8 GB peak was measured."""
    params = program.service.params
    plaintexts = sum(ops.pmult * ((level + 1) * params.n * 8 + params.slots * 8)
                     for level, ops in program.op_count_by_level().items())
    return plaintexts + 3 * len(program.service.rotation_steps) * params.rotation_key_bytes


def estimated_seconds(program: HEProgram) -> float | None:
    """The latency model's seconds for one inference of ``program``, each operation at
    its level, with this machine's calibration (``None`` if it is for another N)."""
    calibration = load_calibration()
    if calibration.log_n != program.service.params.log_n:
        return None
    return program.estimated_seconds(calibration)

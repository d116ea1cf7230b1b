"""Measure encrypted inference of models on labelled images, client and server apart.

Several models are measured in one interleaved loop (image 1 on every model, then
image 2, ...), so that a machine shared with other work slows them alike and their
latency ratio is fair; CPU seconds of this process are reported beside wall seconds
for the same reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn
from tqdm import tqdm

from ..errors import ArtemisError
from ..he.cost_model import CostModel
from ..he.latency import estimate_seconds, load_calibration
from ..he.specs import OpCount
from .he_program import HEProgram, compile_model, fit_params
from .inference import Client, Server

MB = 1e6


@dataclass(frozen=True)
class EncryptedRun:
    """Accuracy, agreement and cost of one model's encrypted inference.

    Per image: ``seconds_per_image`` is wall time end to end (client encrypt, server
    evaluation, client decrypt), ``cpu_seconds_per_image`` the process's CPU time for
    the same, ``server_seconds_per_image`` the server's wall time and
    ``estimated_server_seconds`` the latency model's price of the server's operations,
    each at its level (``None`` when the calibration is for another ring size).
    ``setup_seconds``
    covers key generation, key transfer and the server's warm-up (encoding its weights
    once). Operation counts are those the server executed per image.
    """

    label: str
    images: int
    plain_accuracy: float
    encrypted_accuracy: float
    agreement: float
    max_logit_error: float
    seconds_per_image: float
    cpu_seconds_per_image: float
    server_seconds_per_image: float
    estimated_server_seconds: float | None
    setup_seconds: float
    rotations: int
    pmult: int
    cmult: int
    depth: int
    rotation_keys: int
    rotation_key_bytes: int
    evaluation_key_bytes: int
    query_bytes: int
    reply_bytes: int
    log_n: int
    coeff_modulus_bits: tuple[int, ...]
    security: str  # HEParams.security of the chain used
    allow_insecure: bool  # the run switched the security checks off

    def as_dict(self) -> dict:
        """JSON-ready fields."""
        return {**asdict(self), "coeff_modulus_bits": list(self.coeff_modulus_bits)}


class _Session:
    """One model's client and server, and what its queries measured so far."""

    def __init__(self, label: str, program: HEProgram) -> None:
        start = time.perf_counter()
        self.label, self.program = label, program
        self.client = Client(program.service)
        keys = self.client.evaluation_keys()
        self.server = Server(program, keys)
        # sizes only: the serialised keys themselves would double the memory held
        self.rotation_keys = len(keys.rotation_steps)
        self.rotation_key_bytes = len(keys.rotation_keys)
        self.evaluation_key_bytes = keys.nbytes
        self.server.warm_up()
        self.setup = time.perf_counter() - start
        self.logits: list[torch.Tensor] = []
        self.wall = self.cpu = self.server_wall = 0.0
        self.query_bytes = self.reply_bytes = 0
        self.ops = OpCount()

    def query(self, image: torch.Tensor) -> None:
        """Classify one image encrypted, timing each side."""
        wall, cpu = time.perf_counter(), time.process_time()
        query = self.client.encrypt(image)
        served = time.perf_counter()
        reply = self.server.infer(query)
        self.server_wall += time.perf_counter() - served
        self.logits.append(self.client.decrypt(reply.outputs))
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu
        self.query_bytes += sum(map(len, query))
        self.reply_bytes += sum(map(len, reply.outputs))
        self.ops = reply.ops


def run_encrypted(models: Sequence[tuple[str, nn.Module]], images: torch.Tensor,
                  labels: torch.Tensor, cost_model: CostModel, log_n: int = 14,
                  scale_bits: int = 40, progress: bool = True,
                  allow_insecure: bool = False) -> list[EncryptedRun]:
    """Compile each (label, model) with the shortest secure chain at N = 2^log_n (any
    chain with ``allow_insecure``), make a client and a key-less server for it, and
    classify every image encrypted."""
    shape = tuple(images.shape[1:])
    programs = []
    for _, model in models:
        model.eval()
        params = fit_params(model, shape, cost_model, log_n, scale_bits, allow_insecure)
        programs.append(compile_model(model, shape, params, cost_model))
    check_memory(programs)
    sessions, plain = [], []
    for (label, model), program in zip(models, programs, strict=True):
        sessions.append(_Session(label, program))
        with torch.no_grad():
            plain.append(model(images).double())
    for image in tqdm(images, desc="encrypted inference", unit="image", disable=not progress,
                      leave=False, dynamic_ncols=True):
        for session in sessions:
            session.query(image)
    return [_summary(s, p, labels) for s, p in zip(sessions, plain, strict=True)]


def held_bytes(program: HEProgram) -> int:
    """Memory one client and server pair holds for ``program``: every weight plaintext
    encoded at its level and its slot vector (the server keeps both), and the rotation
    keys three times (the client makes them, serialises them, the server loads them).
    For he-lenet under bsgs at N = 2^14 this is 5.2 GB; 5.8 GB peak was measured."""
    params = program.service.params
    plaintexts = sum(ops.pmult * ((level + 1) * params.n * 8 + params.slots * 8)
                     for level, ops in program.op_count_by_level().items())
    return plaintexts + 3 * len(program.service.rotation_steps) * params.rotation_key_bytes


def check_memory(programs: Sequence[HEProgram]) -> None:
    """Refuse, before any key is made, programs that together would hold more than the
    memory this machine has available (they are measured side by side)."""
    needed = sum(held_bytes(p) for p in programs)
    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if needed > available:
        raise ArtemisError(
            f"encrypted inference of {len(programs)} models side by side would hold about "
            f"{needed / 1e9:.1f} GB (encoded weights and rotation keys), more than the "
            f"{available / 1e9:.1f} GB available; measure fewer models at once or a "
            "smaller N")


def _summary(session: _Session, plain: torch.Tensor, labels: torch.Tensor) -> EncryptedRun:
    encrypted = torch.stack(session.logits)
    n = len(labels)
    params = session.program.service.params
    return EncryptedRun(
        label=session.label, images=n,
        plain_accuracy=_share(plain.argmax(1) == labels),
        encrypted_accuracy=_share(encrypted.argmax(1) == labels),
        agreement=_share(encrypted.argmax(1) == plain.argmax(1)),
        max_logit_error=float((encrypted - plain).abs().max()),
        seconds_per_image=session.wall / n, cpu_seconds_per_image=session.cpu / n,
        server_seconds_per_image=session.server_wall / n,
        estimated_server_seconds=_estimate(session.program),
        setup_seconds=session.setup,
        rotations=session.ops.rotations, pmult=session.ops.pmult, cmult=session.ops.cmult,
        depth=session.program.depth, rotation_keys=session.rotation_keys,
        rotation_key_bytes=session.rotation_key_bytes,
        evaluation_key_bytes=session.evaluation_key_bytes,
        query_bytes=session.query_bytes // n,
        reply_bytes=session.reply_bytes // n, log_n=params.log_n,
        coeff_modulus_bits=params.coeff_modulus_bits, security=params.security,
        allow_insecure=params.allow_insecure,
    )


def _estimate(program: HEProgram) -> float | None:
    """The latency model's seconds for one inference of ``program``, each operation at
    its level, with this machine's calibration (``None`` if it is for another N)."""
    calibration = load_calibration()
    if calibration.log_n != program.service.params.log_n:
        return None
    return estimate_seconds(program.op_count_by_level(), calibration)


def _share(hits: torch.Tensor) -> float:
    return float(hits.double().mean())

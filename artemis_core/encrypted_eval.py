"""Measure encrypted inference of a model on labelled images, client and server apart."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
from torch import nn
from tqdm import tqdm

from .cost_model import CostModel
from .he_program import compile_model, fit_params
from .inference import Client, Server
from .specs import OpCount

MB = 1e6


@dataclass(frozen=True)
class EncryptedRun:
    """Accuracy, agreement and cost of encrypted inference on ``images`` images.

    Times are per image: ``seconds_per_image`` is end to end (client encrypt, server
    evaluation, client decrypt), ``server_seconds_per_image`` the server's part;
    ``setup_seconds`` covers key generation, key transfer and the server's warm-up
    (encoding its weights once). Operation counts are those executed per image.
    """

    label: str
    images: int
    plain_accuracy: float
    encrypted_accuracy: float
    agreement: float
    max_logit_error: float
    seconds_per_image: float
    server_seconds_per_image: float
    setup_seconds: float
    rotations: int
    pmult: int
    cmult: int
    rotation_keys: int
    rotation_key_bytes: int
    evaluation_key_bytes: int
    query_bytes: int
    reply_bytes: int
    log_n: int
    coeff_modulus_bits: tuple[int, ...]

    def as_dict(self) -> dict:
        """JSON-ready fields."""
        return {**asdict(self), "coeff_modulus_bits": list(self.coeff_modulus_bits)}


def run_encrypted(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                  cost_model: CostModel, label: str, log_n: int = 14, scale_bits: int = 40,
                  progress: bool = True) -> EncryptedRun:
    """Compile ``model`` with the shortest secure chain at N = 2^log_n, make a client
    and a key-less server, and classify every image encrypted."""
    model.eval()
    shape = tuple(images.shape[1:])
    params = fit_params(model, shape, cost_model, log_n, scale_bits)
    program = compile_model(model, shape, params, cost_model)
    start = time.perf_counter()
    client = Client(program.service)
    keys = client.evaluation_keys()
    server = Server(program, keys)
    server.warm_up()
    setup = time.perf_counter() - start
    with torch.no_grad():
        plain_logits = model(images).double()
    logits, total, server_time, sizes, ops = [], 0.0, 0.0, [0, 0], OpCount()
    for image in tqdm(images, desc=f"encrypted {label}", unit="image", disable=not progress,
                      leave=False, dynamic_ncols=True):
        start = time.perf_counter()
        query = client.encrypt(image)
        served = time.perf_counter()
        reply = server.infer(query)
        server_time += time.perf_counter() - served
        logits.append(client.decrypt(reply.outputs))
        total += time.perf_counter() - start
        sizes[0] += sum(map(len, query))
        sizes[1] += sum(map(len, reply.outputs))
        ops = reply.ops
    encrypted = torch.stack(logits)
    n = len(images)
    return EncryptedRun(
        label=label, images=n,
        plain_accuracy=_share(plain_logits.argmax(1) == labels),
        encrypted_accuracy=_share(encrypted.argmax(1) == labels),
        agreement=_share(encrypted.argmax(1) == plain_logits.argmax(1)),
        max_logit_error=float((encrypted - plain_logits).abs().max()),
        seconds_per_image=total / n, server_seconds_per_image=server_time / n,
        setup_seconds=setup, rotations=ops.rotations, pmult=ops.pmult, cmult=ops.cmult,
        rotation_keys=len(keys.rotation_steps), rotation_key_bytes=len(keys.rotation_keys),
        evaluation_key_bytes=keys.nbytes, query_bytes=sizes[0] // n, reply_bytes=sizes[1] // n,
        log_n=params.log_n, coeff_modulus_bits=params.coeff_modulus_bits,
    )


def _share(hits: torch.Tensor) -> float:
    return float(hits.double().mean())

"""Run layer plans on an HE backend: one layer, or a whole model with the non-linear
and normalisation layers in the clear between encrypted convolutions."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .backend import HEBackend
from .cost_model import CostModel, LayerPlan
from .extract import extract_specs
from .params import HEParams
from .specs import OpCount


def run_layer(plan: LayerPlan, backend: HEBackend, x: torch.Tensor, weight: torch.Tensor,
              bias: torch.Tensor | None = None) -> torch.Tensor:
    """Encrypt ``x`` (C×H×W, or C for a linear layer) in the plan's layout, execute the
    plan on ``backend`` with the keys it needs, and decrypt and unpack the output.

    An output the plan does not compute (``None``: every weight of the block pruned) is
    its bias alone, which the server knows in the clear (see :func:`decrypt_output`).
    """
    inputs = encrypt_input(plan, backend, x)
    return decrypt_output(plan, backend, plan.execute(backend, inputs, weight, bias), bias)


def encrypt_input(plan: LayerPlan, backend: HEBackend, x: torch.Tensor) -> list[Any]:
    """Generate exactly the rotation keys ``plan`` needs on ``backend`` and encrypt
    ``x`` in the plan's layout (the client's side of one layer)."""
    backend.keygen(plan.op_count().rotation_steps)
    return [backend.encrypt(v) for v in plan.pack(x)]


def decrypt_output(plan: LayerPlan, backend: HEBackend, outputs: list[Any],
                   bias: torch.Tensor | None = None) -> torch.Tensor:
    """Decrypt and unpack the output ciphertexts of ``plan.execute``; an output the plan
    did not compute (``None``) is its bias alone, added here in the clear."""
    out = plan.unpack([None if ct is None else backend.decrypt(ct) for ct in outputs])
    if bias is not None and any(ct is None for ct in outputs):
        slots = plan.params.slots
        skipped = plan.unpack([np.ones(slots) if ct is None else None for ct in outputs])
        out = out + skipped * bias.detach().to(out.dtype).view(-1, *[1] * (out.dim() - 1))
    return out


@dataclass(frozen=True)
class ModelRun:
    """The output of an encrypted model pass and the operations it executed."""

    output: torch.Tensor
    ops: OpCount
    predicted: OpCount


def run_model(model: nn.Module, x: torch.Tensor, cost_model: CostModel, params: HEParams,
              backend_factory: Callable[[HEParams], HEBackend]) -> ModelRun:
    """Classify one image ``x`` (C×H×W): every Conv2d/Linear runs encrypted under the plan
    for its mask (``weight != 0``), everything else in the clear on the decrypted values.

    Returns the model output, the ops the backend executed and the ops the plans
    predicted (they are equal when the cost model is honest).
    """
    model = copy.deepcopy(model).double()  # float64 end to end, the caller's model untouched
    specs = {spec.name: spec for spec in extract_specs(model, tuple(x.shape))}
    modules = dict(model.named_modules())
    backend = backend_factory(params)
    predicted = OpCount()

    def encrypted(name: str) -> Callable:
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
            nonlocal predicted
            weight = module.weight.detach()
            plan = cost_model.plan(specs[name], params, weight != 0)
            predicted = predicted + plan.op_count()
            y = run_layer(plan, backend, args[0][0], weight, module.bias)
            return y.to(output.dtype).reshape(output.shape)
        return hook

    handles = [modules[name].register_forward_hook(encrypted(name)) for name in specs]
    model.eval()
    with torch.no_grad():
        output = model(x.unsqueeze(0).to(torch.float64)).squeeze(0)
    for handle in handles:
        handle.remove()
    return ModelRun(output, backend.ops, predicted)

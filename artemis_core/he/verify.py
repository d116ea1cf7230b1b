"""Encrypted layer checks: run a layer's plan on real CKKS and compare it with torch.

For one layer, :func:`check_layer` executes the plan for the layer's own weights
(mask = weight != 0) and the dense plan (every weight kept) on an HE backend, and
reports the decryption error against ``torch``, executed vs predicted operations, the
encrypted latency of both runs and the rotation keys they need.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import get
from .backend import HEBackend
from .calibrate import BACKEND
from .cost_model import CostModel, LayerPlan
from .executor import decrypt_output, encrypt_input
from .params import HEParams
from .specs import ConvSpec, OpCount

#: Largest decryption error accepted, relative to the layer output's largest magnitude
#: (CKKS at scale 2^40 gives 3e-8 to 2e-7 here, gazelle and bsgs alike; 1e-5 leaves a
#: 50x margin and still fails a plan that drops a single small product).
RELATIVE_TOLERANCE = 1e-5


@dataclass(frozen=True)
class LayerCheck:
    """What one encrypted layer check found."""

    name: str
    max_abs_error: float
    tolerance: float
    predicted: OpCount
    executed: OpCount
    dense_counts_match: bool
    dense_seconds: float
    pruned_seconds: float
    key_bytes: int

    @property
    def counts_match(self) -> bool:
        """Executed ops equal the plan's prediction (for the dense run too)."""
        return self.executed == self.predicted and self.dense_counts_match

    @property
    def ok(self) -> bool:
        """Counts match and the decryption error is within tolerance."""
        return self.counts_match and self.max_abs_error <= self.tolerance

    @property
    def speedup(self) -> float:
        """Dense encrypted time over pruned encrypted time."""
        return self.dense_seconds / self.pruned_seconds if self.pruned_seconds else float("inf")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the ``artemis verify --format json`` layer record)."""
        return {
            "name": self.name, "max_abs_error": self.max_abs_error,
            "predicted": self.predicted.as_dict(), "executed": self.executed.as_dict(),
            "counts_match": self.counts_match, "dense_seconds": self.dense_seconds,
            "pruned_seconds": self.pruned_seconds, "speedup": self.speedup,
            "keys": self.predicted.keys, "key_bytes": self.key_bytes,
        }


def reference_output(spec: ConvSpec, x: torch.Tensor, weight: torch.Tensor,
                     bias: torch.Tensor | None) -> torch.Tensor:
    """The layer computed by torch on one input (C×H×W, or C for a linear layer)."""
    if spec.kind == "linear":
        return F.linear(x.reshape(-1), weight, bias)
    return F.conv2d(x[None], weight, bias, stride=spec.stride, padding=spec.padding)[0]


def timed_execute(plan: LayerPlan, backend: HEBackend, x: torch.Tensor,
                  weight: torch.Tensor, bias: torch.Tensor | None = None, repeats: int = 1,
                  ) -> tuple[torch.Tensor, float]:
    """Key generation and encryption, then ``plan.execute`` timed alone (the server's
    encrypted latency in CPU seconds of this thread, as calibrated; median of ``repeats``
    runs, each counted from zero in ``backend.ops``), then decryption of the last run's
    output."""
    inputs = encrypt_input(plan, backend, x)
    times = []
    for _ in range(repeats):
        backend.reset_counts()
        start = time.thread_time()
        outputs = plan.execute(backend, inputs, weight, bias)
        times.append(time.thread_time() - start)
    return decrypt_output(plan, backend, outputs, bias), statistics.median(times)


def check_layer(spec: ConvSpec, params: HEParams, cost_model: CostModel, x: torch.Tensor,
                weight: torch.Tensor, bias: torch.Tensor | None = None,
                seed: int = 0) -> LayerCheck:
    """Run ``spec`` on real CKKS (the ``pyfhel`` backend) with its weights (mask =
    weight != 0) and densely.

    The dense run fills the zero weights with random ones (same spread), so that no
    product is skipped and its output is checked against torch as well.
    """
    weight, x = weight.detach().to(torch.float64), x.detach().to(torch.float64)
    bias = None if bias is None else bias.detach().to(torch.float64)
    mask = weight != 0
    pruned = _Run.of(cost_model.plan(spec, params, mask), spec, x, weight, bias)
    dense = pruned
    if not bool(mask.all()):
        gen = torch.Generator().manual_seed(seed)
        filler = torch.randn(weight.shape, generator=gen, dtype=torch.float64)
        dense_weight = torch.where(mask, weight, filler * weight.std().clamp_min(1e-3))
        dense = _Run.of(cost_model.plan(spec, params, None), spec, x, dense_weight, bias)
    scale = max(pruned.output_scale, dense.output_scale, 1.0)
    return LayerCheck(
        name=spec.name, max_abs_error=max(pruned.error, dense.error),
        tolerance=RELATIVE_TOLERANCE * scale, predicted=pruned.predicted,
        executed=pruned.executed, dense_counts_match=dense.executed == dense.predicted,
        dense_seconds=dense.seconds, pruned_seconds=pruned.seconds,
        key_bytes=pruned.key_bytes,
    )


@dataclass(frozen=True)
class _Run:
    """One encrypted execution of a plan, compared with torch."""

    predicted: OpCount
    executed: OpCount
    seconds: float
    error: float
    output_scale: float
    key_bytes: int

    @classmethod
    def of(cls, plan: LayerPlan, spec: ConvSpec, x: torch.Tensor, weight: torch.Tensor,
           bias: torch.Tensor | None) -> _Run:
        backend = get("he_backend", BACKEND)(plan.params)
        out, seconds = timed_execute(plan, backend, x, weight, bias)
        expected = reference_output(spec, x, weight, bias)
        return cls(plan.op_count(), backend.ops, seconds, float((out - expected).abs().max()),
                   float(expected.abs().max()), backend.rotation_key_bytes)


def layer_inputs(model: nn.Module, names: Sequence[str], x: torch.Tensor,
                 ) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """Each named layer's module and its input (batch item 0) on one forward pass of
    ``x`` (C×H×W), read with forward pre-hooks."""
    modules = dict(model.named_modules())
    seen: dict[str, tuple[nn.Module, torch.Tensor]] = {}

    def capture(name: str) -> Callable:
        def hook(module: nn.Module, args: tuple) -> None:
            seen.setdefault(name, (module, args[0][0].detach()))
        return hook

    handles = [modules[name].register_forward_pre_hook(capture(name)) for name in names]
    try:
        model.eval()
        with torch.no_grad():
            model(x[None])
    finally:
        for handle in handles:
            handle.remove()
    return seen

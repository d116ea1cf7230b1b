"""Compile an HE-friendly torch model into a sequence of encrypted steps.

Convolutions run through the cost model's own plans (:meth:`LayerPlan.execute`), so
the server executes exactly what the cost model counts. A :class:`PolyAct`
a·x² + b·x + c is evaluated as x·(x + b/a) + c/a (one ciphertext product, one level)
and its factor ``a`` is folded into the next layer's weights; a batch norm after a
convolution is folded into it (running statistics: eval-mode semantics). Global
average pooling and the linear classifier become a 1×1 convolution on the last feature
map (weights divided by the pixel count) followed by a rotate-and-sum over each class's
pixels.
Every step counts its operations from the same data it executes with.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ParamsError, SpecError
from ..he.backend import HEBackend
from ..he.cost_model import CostModel, LayerPlan
from ..he.extract import extract_specs
from ..he.params import HEParams
from ..he.specs import ConvSpec, OpCount
from ..learning.polyact import PolyAct

SUPPORTED_LAYERS = ("Conv2d (optionally followed by BatchNorm2d), PolyAct, then "
                    "AdaptiveAvgPool2d(1) + Flatten + Linear, in an nn.Sequential")
#: |a| below this makes b/a and c/a blow up when a PolyAct is folded.
MIN_QUADRATIC = 1e-4


class Step(ABC):
    """One stage of the encrypted network: ciphertexts in, ciphertexts out."""

    name: str

    @abstractmethod
    def run(self, backend: HEBackend, cts: list[Any]) -> list[Any]:
        """Evaluate the step on ``backend``."""

    @abstractmethod
    def op_count(self) -> OpCount:
        """Operations :meth:`run` performs."""


def _live(name: str, cts: list[Any]) -> list[Any]:
    if any(ct is None for ct in cts):
        raise SpecError(f"step {name!r}: a whole output block of the previous layer is "
                        "pruned; encrypted inference needs at least one weight per block")
    return cts


@dataclass(frozen=True)
class ConvStep(Step):
    """A convolution executed by its cost-model plan (weights already folded)."""

    name: str
    plan: LayerPlan
    weight: torch.Tensor
    bias: torch.Tensor | None

    def run(self, backend: HEBackend, cts: list[Any]) -> list[Any]:
        """Execute the plan."""
        return self.plan.execute(backend, _live(self.name, cts), self.weight, self.bias)

    def op_count(self) -> OpCount:
        """The plan's count."""
        return self.plan.op_count()


@dataclass(frozen=True)
class PolyStep(Step):
    """z = x·(x + shift) + offset on each of ``blocks`` ciphertexts (shift = b/a,
    offset = c/a of a PolyAct whose ``a`` went into the next layer)."""

    name: str
    shift: float
    offset: float
    blocks: int
    slots: int

    def run(self, backend: HEBackend, cts: list[Any]) -> list[Any]:
        """One add, one relinearised product and rescale, one add per ciphertext."""
        shift, offset = np.full(self.slots, self.shift), np.full(self.slots, self.offset)
        out = []
        for ct in _live(self.name, cts):
            product = backend.rescale(backend.multiply(ct, backend.add_plain(ct, shift)))
            out.append(backend.add_plain(product, offset))
        return out

    def op_count(self) -> OpCount:
        """Per ciphertext: 1 product, 2 additions, 1 rescale."""
        return OpCount(cmult=self.blocks, adds=2 * self.blocks, rescales=self.blocks)


@dataclass(frozen=True)
class SumStep(Step):
    """Sum each class's pixels into its first slot (rotate-and-sum by ``steps``), then
    add the classifier bias there."""

    name: str
    steps: tuple[int, ...]
    bias: tuple[np.ndarray, ...]  # one slot vector per ciphertext

    def run(self, backend: HEBackend, cts: list[Any]) -> list[Any]:
        """log2(window) rotations and additions per ciphertext, then the bias."""
        out = []
        with backend.rotation_purpose("other"):
            for ct, bias in zip(_live(self.name, cts), self.bias, strict=True):
                for step in self.steps:
                    ct = backend.add(ct, backend.rotate(ct, step))
                out.append(backend.add_plain(ct, bias))
        return out

    def op_count(self) -> OpCount:
        """Rotations and additions of :meth:`run`."""
        blocks = len(self.bias)
        return OpCount(other_rotations=len(self.steps) * blocks,
                       adds=(len(self.steps) + 1) * blocks,
                       rotation_steps=frozenset(self.steps))


@dataclass(frozen=True)
class ServiceInfo:
    """What the server tells a client (public, no weights): the parameters, how to pack
    the input, which rotation keys to make and where each logit comes back."""

    params: HEParams
    cost_model: CostModel
    input_spec: ConvSpec
    rotation_steps: tuple[int, ...]
    output_slots: tuple[tuple[int, int], ...]  # (ciphertext, slot) of each class
    output_level: int  # rescales left on the outputs

    def pack(self, image: torch.Tensor) -> list[np.ndarray]:
        """Slot vectors of one C×H×W image, laid out for the first layer."""
        return self.cost_model.plan(self.input_spec, self.params).pack(image)

    def read_logits(self, slots: Sequence[np.ndarray]) -> torch.Tensor:
        """The logits from the decrypted output vectors."""
        return torch.tensor([float(slots[b][s]) for b, s in self.output_slots], dtype=torch.float64)


@dataclass(frozen=True)
class HEProgram:
    """A compiled network: its steps and the public :class:`ServiceInfo`."""

    steps: tuple[Step, ...]
    service: ServiceInfo

    @property
    def depth(self) -> int:
        """Levels the network consumes."""
        return self.service.params.levels - self.service.output_level

    def op_count(self) -> OpCount:
        """Operations of one encrypted inference."""
        return sum((s.op_count() for s in self.steps), OpCount())

    def run(self, backend: HEBackend, cts: list[Any]) -> list[Any]:
        """Evaluate every step; returns the output ciphertexts."""
        for step in self.steps:
            cts = step.run(backend, cts)
        return cts


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    if not isinstance(model, nn.Sequential):
        raise SpecError(f"model is a {type(model).__name__}; supported: {SUPPORTED_LAYERS}")
    return [(n, m) for n, m in model.named_modules() if not isinstance(m, nn.Sequential)]


def _classifier_spec(name: str, last: ConvSpec, c_out: int) -> ConvSpec:
    """The pooled linear layer as a 1×1 convolution on the last conv's output grid."""
    return ConvSpec(name, last.c_out, c_out, kernel=1, stride=1, padding=0,
                    height=-(-last.height // last.stride), width=-(-last.width // last.stride),
                    gap=last.gap * last.stride, layout_channels=max(last.c_in, last.c_out))


def _pixel_sum(name: str, dense: LayerPlan, bias: torch.Tensor | None,
               slots: int) -> tuple[SumStep, tuple[tuple[int, int], ...]]:
    """The rotate-and-sum that gathers each class's pixels into one slot, found by
    probing where the dense plan's :meth:`LayerPlan.unpack` reads every output."""
    n_out = dense.op_count().rescales  # one rescale per output ciphertext
    probe = [np.arange(slots, dtype=np.float64) + b * slots for b in range(n_out)]
    where = dense.unpack(probe).reshape(dense.spec.c_out, -1).to(torch.long)
    block, slot = where // slots, where % slots
    base = slot.min(dim=1).values
    offsets = slot - base[:, None]
    window = 1 << int(offsets.max()).bit_length()
    starts = (block[:, 0] * slots + base).sort().values
    same = bool((offsets == offsets[0]).all()) and bool((block == block[:, :1]).all())
    if same and not bool((starts.diff() < window).any()):
        # disjoint windows holding zeros between the pixels: sum the whole window
        steps = tuple(window >> k for k in range(1, window.bit_length()))
    else:
        # interleaved classes (a multiplexed layout): sum exactly each class's pixels
        steps = _cube_steps(offsets[0].tolist()) if same else None
        if steps is None:
            raise SpecError(f"layer {name!r}: the classes' pixels are neither in equal, "
                            "disjoint windows nor on one power-of-two lattice; cannot pool "
                            "them by rotate-and-sum")
    vectors = np.zeros((n_out, slots))
    if bias is not None:
        vectors[block[:, 0].numpy(), base.numpy()] = bias.detach().double().numpy()
    outputs = tuple(zip(block[:, 0].tolist(), base.tolist(), strict=True))
    return SumStep(f"{name}.sum", steps, tuple(vectors)), outputs


def _cube_steps(offsets: list[int]) -> tuple[int, ...] | None:
    """Steps s_1 … s_k whose 0/1 sums are exactly ``offsets`` (each once), so that
    rotate-and-sum by them adds precisely those slots into the first; None if none."""
    rest = sorted(offsets)
    if len(set(rest)) != len(rest) or rest[0] != 0:
        return None
    steps = []
    while len(rest) > 1:
        step, members, low = rest[1], set(rest), []
        for offset in rest:
            if offset in members:
                if offset + step not in members:
                    return None
                members -= {offset, offset + step}
                low.append(offset)
        steps.append(step)
        rest = low
    return tuple(steps)


def compile_model(model: nn.Module, input_shape: Sequence[int], params: HEParams,
                  cost_model: CostModel) -> HEProgram:
    """The encrypted form of an HE-friendly ``model`` (see :data:`SUPPORTED_LAYERS`);
    pruned (zero) weights are skipped by the plans. Refuses a model deeper than the
    modulus chain of ``params``."""
    program = _build(model, input_shape, params, cost_model)
    if program.depth > params.levels:
        raise ParamsError(f"the model needs {program.depth} levels but the modulus chain "
                          f"{list(params.coeff_modulus_bits)} gives {params.levels}; use "
                          f"HEParams.with_depth(log_n, {program.depth})")
    return program


def fit_params(model: nn.Module, input_shape: Sequence[int], cost_model: CostModel,
               log_n: int = 14, scale_bits: int = 40) -> HEParams:
    """The shortest chain [60, scale_bits × depth, 60] for ``model`` at N = 2^log_n,
    checked against the 128-bit security table."""
    probe = HEParams.with_depth(log_n, 1, scale_bits, allow_insecure=True)
    depth = _build(model, input_shape, probe, cost_model).depth
    return HEParams.with_depth(log_n, depth, scale_bits)


def _build(model: nn.Module, input_shape: Sequence[int], params: HEParams,
           cost_model: CostModel) -> HEProgram:
    specs = {s.name: s for s in extract_specs(model, input_shape)}
    steps: list[Step] = []
    fold, last, pool, outputs = 1.0, None, None, ()
    leaves = _leaves(model)
    for i, (name, module) in enumerate(leaves):
        if outputs:
            raise SpecError(f"layer {name!r} follows the classifier; supported: "
                            f"{SUPPORTED_LAYERS}")
        if isinstance(module, nn.Conv2d) and pool is None:
            after = leaves[i + 1][1] if i + 1 < len(leaves) else None
            weight, bias = _fold_batch_norm(module, after)
            last = replace(specs[name], bias=bias is not None)
            steps.append(ConvStep(name, cost_model.plan(last, params, weight != 0),
                                  weight * fold, bias))
            fold = 1.0
        elif isinstance(module, nn.BatchNorm2d) and isinstance(leaves[i - 1][1], nn.Conv2d):
            continue  # folded into the convolution before it
        elif isinstance(module, PolyAct) and last is not None and pool is None:
            a, b, c = module.coefficients.detach().double().tolist()
            if abs(a) < MIN_QUADRATIC:
                raise SpecError(f"layer {name!r}: quadratic coefficient a={a:.3g} is too close "
                                f"to 0 to fold (|a| >= {MIN_QUADRATIC} needed)")
            steps.append(PolyStep(name, b / a, c / a, steps[-1].op_count().rescales,
                                  params.slots))
            fold = a
        elif isinstance(module, nn.AdaptiveAvgPool2d) and last is not None \
                and module.output_size in (1, (1, 1)):
            pool = name
        elif isinstance(module, nn.Flatten) and pool is not None:
            continue
        elif isinstance(module, nn.Linear) and pool is not None:
            spec = _classifier_spec(name, last, module.out_features)
            pixels = spec.height * spec.width
            weight = (module.weight.detach().double() * fold / pixels).view(*spec.weight_shape)
            steps.append(ConvStep(name, cost_model.plan(spec, params, weight != 0),
                                  weight, None))
            summed, outputs = _pixel_sum(name, cost_model.plan(spec, params), module.bias,
                                         params.slots)
            steps.append(summed)
        else:
            raise SpecError(f"layer {name!r} ({type(module).__name__}) is not supported "
                            f"here; supported: {SUPPORTED_LAYERS}")
    if not outputs:
        raise SpecError(f"model has no pooled linear classifier; supported: {SUPPORTED_LAYERS}")
    rotation_steps = sum((s.op_count() for s in steps), OpCount()).rotation_steps
    depth = sum(1 for s in steps if s.op_count().rescales)  # each rescales at most once
    service = ServiceInfo(params, cost_model, next(iter(specs.values())),
                          tuple(sorted(rotation_steps)), outputs, params.levels - depth)
    return HEProgram(tuple(steps), service)


def _fold_batch_norm(conv: nn.Conv2d, after: nn.Module | None,
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The convolution's (weight, bias) in float64 with a following batch norm folded
    in: W·γ/σ and (b − μ)·γ/σ + β per output channel (zero weights stay zero)."""
    weight = conv.weight.detach().double()
    bias = None if conv.bias is None else conv.bias.detach().double()
    if not isinstance(after, nn.BatchNorm2d):
        return weight, bias
    channels = after.num_features
    gamma = torch.ones(channels) if after.weight is None else after.weight.detach()
    beta = torch.zeros(channels) if after.bias is None else after.bias.detach()
    scale = gamma.double() / (after.running_var.double() + after.eps).sqrt()
    shift = beta.double() - after.running_mean.double() * scale
    if bias is not None:
        shift = shift + bias * scale
    return weight * scale.view(-1, 1, 1, 1), shift

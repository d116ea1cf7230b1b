"""Compile an HE-friendly torch model into a sequence of encrypted steps.

Convolutions run through the cost model's own plans (:meth:`LayerPlan.execute`), so
the server executes exactly what the cost model counts. A :class:`PolyAct`
a·x² + b·x + c is evaluated as x·(x + b/a) + c/a (one ciphertext product, one level)
and its factor ``a`` is folded into the next layer's weights; the constant c/a is added
only at the slots where the next layer reads a pixel, so every other slot stays zero. A
batch norm after a convolution is folded into it (running statistics: eval-mode
semantics). Global average pooling is a rotate-and-sum of each channel's pixels into
its first pixel, and the linear classifier a 1×1 convolution that reads that pixel only
(weights divided by the pixel count): its plaintexts are zero everywhere else, so the
reply holds the logits (one copy per replica of the layout) and zeros, with no extra
product or level. A cost model that ``fuses_classifier`` (``bsgs``, as Orion) instead
runs pooling and classifier as one linear layer over the last convolution's output
slots. Every step counts its operations from the same data it executes with, by level.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ParamsError, SpecError
from ..he.backend import HEBackend
from ..he.cost_model import CostModel, LayerPlan, split_at_rescale
from ..he.extract import extract_specs
from ..he.latency import Calibration, estimate_seconds
from ..he.params import HEParams
from ..he.specs import ConvSpec, OpCount, add_levels
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

    def op_count_at(self, level: int) -> dict[int, OpCount]:
        """:meth:`op_count` by the level each operation runs at, for inputs at ``level``
        (all at ``level`` unless the step keeps working after its rescale)."""
        return split_at_rescale(level, self.op_count(), OpCount())

    def estimated_seconds(self, level: int, calibration: Calibration) -> float:
        """The latency model's seconds for the step with inputs at ``level``."""
        return estimate_seconds(self.op_count_at(level), calibration)


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

    def op_count_at(self, level: int) -> dict[int, OpCount]:
        """The plan's count by level."""
        return self.plan.op_count_at(level)

    def estimated_seconds(self, level: int, calibration: Calibration) -> float:
        """The plan's price (as transforms, where the calibration has their prices)."""
        return self.plan.estimated_seconds(level, calibration)


@dataclass(frozen=True)
class PolyStep(Step):
    """z = x·(x + shift) + offset on each ciphertext (shift = b/a of a PolyAct whose
    ``a`` went into the next layer; ``offset`` holds c/a at the slots the next layer
    reads and 0 elsewhere, one vector per ciphertext)."""

    name: str
    shift: float
    offset: tuple[np.ndarray, ...]

    def run(self, backend: HEBackend, cts: list[Any]) -> list[Any]:
        """One add, one relinearised product and rescale, one add per ciphertext."""
        out = []
        for ct, offset in zip(_live(self.name, cts), self.offset, strict=True):
            shifted = backend.add_plain(ct, np.full(offset.size, self.shift))
            out.append(backend.add_plain(backend.rescale(backend.multiply(ct, shifted)), offset))
        return out

    def op_count(self) -> OpCount:
        """Per ciphertext: 1 product, 2 additions, 1 rescale."""
        return sum(self.op_count_at(1).values(), OpCount())

    def op_count_at(self, level: int) -> dict[int, OpCount]:
        """The shift, product and rescale at ``level``; the offset one level lower."""
        blocks = len(self.offset)
        return split_at_rescale(level, OpCount(cmult=blocks, adds=blocks, rescales=blocks),
                                OpCount(adds=blocks))


@dataclass(frozen=True)
class SumStep(Step):
    """Average pooling's sum: rotate-and-sum by ``steps`` on every ciphertext, which
    gathers each channel's pixels into its first pixel."""

    name: str
    steps: tuple[int, ...]
    blocks: int

    def run(self, backend: HEBackend, cts: list[Any]) -> list[Any]:
        """log2(window) rotations and additions per ciphertext."""
        out = []
        with backend.rotation_purpose("other"):
            for ct in _live(self.name, cts):
                for step in self.steps:
                    ct = backend.add(ct, backend.rotate(ct, step))
                out.append(ct)
        return out

    def op_count(self) -> OpCount:
        """Rotations and additions of :meth:`run`."""
        return OpCount(other_rotations=len(self.steps) * self.blocks,
                       adds=len(self.steps) * self.blocks,
                       rotation_steps=frozenset(self.steps) if self.blocks else frozenset())


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

    def op_count_by_level(self) -> dict[int, OpCount]:
        """:meth:`op_count` by the level each operation runs at (the server's
        ``ops_by_level`` for one inference): each step starts at the level its
        predecessors left."""
        return add_levels(*(step.op_count_at(level) for step, level in self._at_levels()))

    def estimated_seconds(self, calibration: Calibration) -> float:
        """The latency model's seconds for one inference: each step at its level, at
        ``calibration``'s prices (an engine's transform prices included)."""
        return sum(self.step_seconds(calibration).values())

    def step_seconds(self, calibration: Calibration) -> dict[str, float]:
        """:meth:`estimated_seconds` per step, by step name, in execution order."""
        return {step.name: step.estimated_seconds(level, calibration)
                for step, level in self._at_levels()}

    def _at_levels(self) -> Iterator[tuple[Step, int]]:
        """Each step with the level its predecessors left its inputs at."""
        level = self.service.params.levels
        for step in self.steps:
            yield step, level
            level -= 1 if step.op_count().rescales else 0

    def run(self, backend: HEBackend, cts: list[Any]) -> list[Any]:
        """Evaluate every step; returns the output ciphertexts."""
        for step in self.steps:
            cts = step.run(backend, cts)
        return cts


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    if not isinstance(model, nn.Sequential):
        raise SpecError(f"model is a {type(model).__name__}; supported: {SUPPORTED_LAYERS}")
    return [(n, m) for n, m in model.named_modules() if not isinstance(m, nn.Sequential)]


def _classifier_spec(name: str, last: ConvSpec, c_out: int, bias: bool) -> ConvSpec:
    """The pooled linear layer as a 1×1 convolution on the last conv's output grid that
    reads its first pixel only (a stride as large as the grid)."""
    height, width = -(-last.height // last.stride), -(-last.width // last.stride)
    return ConvSpec(name, last.c_out, c_out, kernel=1, stride=max(height, width), padding=0,
                    height=height, width=width, gap=last.gap * last.stride, bias=bias)


def _fused_classifier(name: str, last: LayerPlan, weight: torch.Tensor, bias: bool,
                      cost_model: CostModel) -> tuple[ConvSpec, torch.Tensor] | None:
    """Average pooling and the linear classifier as one linear layer over the slots of
    the last convolution's output, as Orion runs them: feature j is slot j, weighted by
    the class's weight of the channel whose pixel slot j holds (``weight`` already
    divided by the pixel count), 0 where no output pixel is. Only when that output fits
    one ciphertext, for a cost model that fuses (``CostModel.fuses_classifier``) and
    packs a linear layer's input at slots 0, 1, …; None otherwise (then the pixels are
    pooled by rotate-and-sum)."""
    if not cost_model.fuses_classifier:
        return None
    slots = last.params.slots
    outputs = cost_model.plan(last.spec, last.params).op_count().rescales  # one per output
    probe = [np.arange(slots, dtype=np.float64) + b * slots for b in range(outputs)]
    where = last.unpack(probe).reshape(last.spec.c_out, -1).to(torch.long)
    length = int(where.max()) + 1
    if length > slots:
        return None
    spec = ConvSpec(name, length, weight.shape[0], kernel=1, padding=0, kind="linear",
                    bias=bias)
    if not np.array_equal(cost_model.plan(spec, last.params).pack(
            torch.arange(1.0, length + 1))[0][:length], np.arange(1.0, length + 1)):
        return None
    fused = torch.zeros(weight.shape[0], length, dtype=torch.float64)
    fused[:, where.reshape(-1)] = weight.repeat_interleave(where.shape[1], dim=1)
    return spec, fused


def _live_slots(plan: LayerPlan) -> list[np.ndarray]:
    """1 where ``plan`` reads a valid pixel of a real input channel, 0 elsewhere."""
    spec = plan.spec
    return plan.pack(torch.ones(spec.c_in, spec.height, spec.width))


def _pooling(name: str, classifier: LayerPlan, slots: int) -> SumStep:
    """The rotate-and-sum that gathers each channel's pixels into its first pixel, found
    by probing where the classifier's :meth:`LayerPlan.pack` puts every input pixel:
    exactly the channel's pixels when they form one power-of-two lattice (log2(pixels)
    rotations; interleaved channels, as Orion's multiplexed packing, included), else the
    whole window they span, which must hold no other channel."""
    spec = classifier.spec
    pixels = spec.height * spec.width
    ids = np.stack(classifier.pack(torch.arange(1.0, spec.c_in * pixels + 1)))
    flat = ids.reshape(-1)
    first = np.full(spec.c_in * pixels + 1, flat.size)
    np.minimum.at(first, flat.astype(np.int64), np.arange(flat.size))
    where = first[1:].reshape(spec.c_in, pixels)  # first slot of every (channel, pixel)
    offsets = where - where[:, :1]
    same = bool((offsets == offsets[0]).all()) and bool((offsets >= 0).all()) and bool(
        (where // slots == where[:, :1] // slots).all())
    steps = _cube_steps(offsets[0].tolist()) if same else None
    if steps is None and same:
        window = 1 << int(offsets.max()).bit_length()
        owner = np.where(flat > 0, (flat.astype(np.int64) - 1) // pixels, -1)
        if all(start % slots + window <= slots
               and bool(np.isin(owner[start: start + window], (-1, channel)).all())
               for channel, start in enumerate(where[:, 0].tolist())):
            steps = tuple(window >> k for k in range(1, window.bit_length()))
    if steps is None:
        raise SpecError(f"layer {name!r}: each channel's pixels are neither on one "
                        "power-of-two lattice nor alone in a window starting at its first "
                        "pixel; cannot pool them by rotate-and-sum")
    return SumStep(f"{name}.pool", steps, len(ids))


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


def _logit_slots(classifier: LayerPlan, slots: int) -> tuple[tuple[int, int], ...]:
    """(ciphertext, slot) where the classifier's :meth:`LayerPlan.unpack` reads each
    class, found by probing it with slot numbers."""
    n_out = classifier.op_count().rescales  # one rescale per output ciphertext
    probe = [np.arange(slots, dtype=np.float64) + b * slots for b in range(n_out)]
    where = classifier.unpack(probe).reshape(-1).to(torch.long)
    return tuple(zip((where // slots).tolist(), (where % slots).tolist(), strict=True))


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
               log_n: int = 14, scale_bits: int = 40, allow_insecure: bool = False) -> HEParams:
    """The shortest chain [60, scale_bits × depth, 60] for ``model`` at N = 2^log_n,
    checked against the 128-bit security table unless ``allow_insecure``."""
    probe = HEParams.with_depth(log_n, 1, scale_bits, allow_insecure=True)
    depth = _build(model, input_shape, probe, cost_model).depth
    return HEParams.with_depth(log_n, depth, scale_bits, allow_insecure=allow_insecure)


def _build(model: nn.Module, input_shape: Sequence[int], params: HEParams,
           cost_model: CostModel) -> HEProgram:
    specs = {s.name: s for s in extract_specs(model, input_shape)}
    steps: list[Step] = []
    fold, last, pool, outputs = 1.0, None, None, ()
    act: tuple[str, float, float] | None = None  # an activation waiting for its reader

    def activation_for(reader: LayerPlan) -> None:
        nonlocal act
        if act is not None:
            name, shift, offset = act
            steps.append(PolyStep(name, shift, tuple(v * offset for v in _live_slots(reader))))
            act = None

    leaves = _leaves(model)
    for i, (name, module) in enumerate(leaves):
        if outputs:
            raise SpecError(f"layer {name!r} follows the classifier; supported: "
                            f"{SUPPORTED_LAYERS}")
        if isinstance(module, nn.Conv2d) and pool is None:
            after = leaves[i + 1][1] if i + 1 < len(leaves) else None
            weight, bias = _fold_batch_norm(module, after)
            last = replace(specs[name], bias=bias is not None)
            plan = cost_model.plan(last, params, weight != 0)
            activation_for(plan)
            steps.append(ConvStep(name, plan, weight * fold, bias))
            fold = 1.0
        elif isinstance(module, nn.BatchNorm2d) and isinstance(leaves[i - 1][1], nn.Conv2d):
            continue  # folded into the convolution before it
        elif isinstance(module, PolyAct) and last is not None and pool is None:
            if act is not None:
                raise SpecError(f"layer {name!r}: two activations in a row; supported: "
                                f"{SUPPORTED_LAYERS}")
            a, b, c = module.coefficients.detach().double().tolist()
            if abs(a) < MIN_QUADRATIC:
                raise SpecError(f"layer {name!r}: quadratic coefficient a={a:.3g} is too close "
                                f"to 0 to fold (|a| >= {MIN_QUADRATIC} needed)")
            act, fold = (name, b / a, c / a), a
        elif isinstance(module, nn.AdaptiveAvgPool2d) and last is not None \
                and module.output_size in (1, (1, 1)):
            pool = name
        elif isinstance(module, nn.Flatten) and pool is not None:
            continue
        elif isinstance(module, nn.Linear) and pool is not None:
            pixels = -(-last.height // last.stride) * -(-last.width // last.stride)
            weight = module.weight.detach().double() * fold / pixels
            bias = None if module.bias is None else module.bias.detach().double()
            fused = _fused_classifier(name, steps[-1].plan, weight, bias is not None,
                                      cost_model)
            if fused is not None:
                spec, weight = fused
            else:
                spec = _classifier_spec(name, last, module.out_features, bias is not None)
                weight = weight.view(*spec.weight_shape)
            plan = cost_model.plan(spec, params, weight != 0)
            activation_for(plan)
            if fused is None:
                steps.append(_pooling(pool, plan, params.slots))
            steps.append(ConvStep(name, plan, weight, bias))
            outputs = _logit_slots(cost_model.plan(spec, params), params.slots)
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

"""Cost-weighted group Lasso: λ · Σ_g c̃_g · ρ_l · √|g| · ‖W_g‖₂ over the penalised groups.

* ``c̃_g`` is what zeroing group g saves (:mod:`artemis_core.pruning.costs`: estimated
  seconds under the chosen cost model and calibration) divided by the mean over every
  penalisable group of the model, so it is unit-free: the same λ means the same on a
  fast or a slow machine, at any ring size and on any model. Groups the selector can
  never take (over the per-layer cap, or saving no rotation) have c̃_g = 0.
* ``√|g|`` is the usual group-Lasso size weight (Yuan & Lin 2006); ``ρ_l`` is the RMS of
  layer l's weights when the penalty is built, so that λ is relative to each layer's own
  scale (a BatchNorm'd conv is scale-invariant: an absolute threshold would mean a
  different thing in every layer).

Two ways to apply it, both vectorised over all groups of a layer:

* :meth:`GroupLasso.regularize` adds the penalty's (sub)gradient to ``.grad`` after
  ``loss.backward()`` (Torch-Pruning's ``regularize(model)``);
* :meth:`GroupLasso.proximal` is the proximal step after the optimizer step — the group
  soft-threshold W_g ← W_g · max(0, 1 − lr·λ·coef_g / ‖W_g‖) — which reaches exact zeros.

Only the *active* groups are penalised (all penalisable ones by default); the pipeline
makes active only the groups the selector would remove (:meth:`GroupLasso.target`), so
the kept weights are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .groups import LayerGroups
from .masking import effective_weight
from .strategy import gather, scatter_slots

EPS = 1e-12


def trainable_weight(module: nn.Module) -> torch.Tensor:
    """The parameter that training updates: ``weight_orig`` under a prune mask, else
    ``weight``."""
    return getattr(module, "weight_orig", module.weight)


@dataclass
class _Term:
    """One layer's penalised groups: their index, coefficients and which are active."""

    name: str
    module: nn.Module
    index: torch.Tensor
    coef: torch.Tensor
    slots: torch.Tensor  # index as scatter slots, [G, M]
    active: torch.Tensor  # bool [G]
    batchnorm: nn.Module | None = None
    #: bool [C_out]: output channels whose every weight is in an active group
    covered: torch.Tensor | None = None

    def live(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Index, coefficients and slots of the active groups."""
        return self.index[self.active], self.coef[self.active], self.slots[self.active]


class GroupLasso:
    """The penalty over every layer's groups.

    ``costs`` (one tensor per layer) are the normalised c̃_g, zero where a group is not
    penalised (default: each group's ``cost``). ``lam`` may change between steps (a
    growing schedule). ``batchnorms`` (layer name → the BatchNorm after it): a BN'd
    conv is scale-invariant, so shrinking a whole output channel's weights alone changes
    nothing until they hit zero; the proximal step shrinks that channel's BN scale γ by
    the same factor, so the network really learns without the channel.
    """

    def __init__(self, layers: list[LayerGroups], lam: float,
                 costs: list[torch.Tensor] | None = None,
                 batchnorms: dict[str, nn.Module] | None = None) -> None:
        if lam < 0:
            raise ValueError(f"lam={lam} must be non-negative")
        self.lam = lam
        costs = costs if costs is not None else [lg.groups.cost.float() for lg in layers]
        self._terms: list[_Term] = []
        for lg, cost in zip(layers, costs, strict=True):
            keep = cost > 0
            index = lg.groups.index[keep]
            weight = effective_weight(lg.module).detach()
            rms = weight.pow(2).mean().sqrt().clamp(min=EPS)
            coef = cost[keep].float() * rms * lg.groups.sizes[keep].clamp(min=1).sqrt()
            slots = scatter_slots(index, weight.numel()).view(index.shape)
            self._terms.append(_Term(lg.spec.name, lg.module, index, coef, slots,
                                     torch.ones(len(index), dtype=torch.bool),
                                     (batchnorms or {}).get(lg.spec.name)))
        self.target(None)

    def target(self, masks: dict[str, torch.Tensor] | None) -> int:
        """Penalise only the groups that ``masks`` (layer → 0/1) zero entirely (layers
        absent from ``masks``: none); ``None``: every penalisable group. Returns the
        number of active groups."""
        for term in self._terms:
            if masks is None:
                term.active = torch.ones(len(term.index), dtype=torch.bool)
            elif term.name not in masks:
                term.active = torch.zeros(len(term.index), dtype=torch.bool)
            else:
                term.active = gather(masks[term.name].float(), term.index).sum(dim=1) == 0
            if term.batchnorm is not None:
                weight = effective_weight(term.module)
                cover = torch.zeros(weight.numel() + 1, dtype=torch.bool)
                cover[term.slots[term.active].reshape(-1)] = True
                term.covered = cover[:-1].view(weight.shape[0], -1).all(dim=1)
        return sum(int(term.active.sum()) for term in self._terms)

    @staticmethod
    def _norms(weight: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values = gather(weight, index)
        return values, values.norm(dim=1)

    def penalty(self) -> torch.Tensor:
        """The penalty over the active groups as a differentiable tensor (λ included)."""
        total = torch.zeros(())
        for term in self._terms:
            index, coef, _ = term.live()
            total = total + (coef * self._norms(effective_weight(term.module), index)[1]).sum()
        return self.lam * total

    @torch.no_grad()
    def regularize(self, model: nn.Module | None = None) -> None:
        """Add the penalty's gradient to each weight's ``.grad`` (call after backward)."""
        for term in self._terms:
            index, coef, slots = term.live()
            weight, param = effective_weight(term.module), trainable_weight(term.module)
            values, norms = self._norms(weight, index)
            grad = values * (self.lam * coef / norms.clamp(min=EPS)).unsqueeze(1)
            flat = weight.new_zeros(weight.numel() + 1)
            flat.index_add_(0, slots.reshape(-1), grad.reshape(-1))
            if param.grad is None:
                param.grad = torch.zeros_like(param)
            param.grad.add_(flat[:-1].view_as(param))

    @torch.no_grad()
    def proximal(self, lr: float) -> None:
        """The proximal step of ``lr`` · penalty: shrink every active group's norm by
        lr·λ·coef_g, to exactly zero when it is smaller (call after the optimizer step;
        the pipeline passes each step's share of the phase's penalty as ``lr``).
        A weight in several active groups (overlapping kinds) gets every group's factor."""
        for term in self._terms:
            index, coef, slots = term.live()
            norms = self._norms(effective_weight(term.module), index)[1]
            factor = (1 - lr * self.lam * coef / norms.clamp(min=EPS)).clamp(min=0)
            param = trainable_weight(term.module)
            scale = param.new_ones(param.numel() + 1)
            scale.scatter_reduce_(0, slots.reshape(-1),
                                  factor.repeat_interleave(index.shape[1]), "prod")
            param.mul_(scale[:-1].view_as(param))
            bn = term.batchnorm
            if bn is not None and bn.weight is not None and bool(term.covered.any()):
                channel = scale[:-1].view(param.shape[0], -1).mean(dim=1)
                bn.weight[term.covered] *= channel[term.covered]

    @torch.no_grad()
    def group_norms(self) -> list[torch.Tensor]:
        """Current ‖W_g‖₂ of every penalisable group, per layer."""
        return [self._norms(effective_weight(term.module), term.index)[1] for term in self._terms]

"""Cost-weighted group Lasso: λ · Σ_g c_g · ‖W_g‖₂ / √|g|.

Applied Torch-Pruning style: :meth:`GroupLasso.regularize` runs after
``loss.backward()`` and adds the penalty's gradient straight into ``.grad``, which is
cheaper than sending the penalty through autograd (``benchmarks/regularizer_overhead.py``
measures both). All groups of a layer are handled in one gather/scatter.
"""

from __future__ import annotations

import torch
from torch import nn

from .groups import LayerGroups
from .strategy import gather, scatter_slots

EPS = 1e-12


class GroupLasso:
    """The penalty over every layer's groups.

    ``c_g`` is the group's ``cost`` (rotations it saves, by default) divided by the mean
    positive cost, so that λ means the same on any model; groups with no cost are not
    penalised.
    """

    def __init__(self, layers: list[LayerGroups], lam: float) -> None:
        if lam < 0:
            raise ValueError(f"lam={lam} must be non-negative")
        self.lam = lam
        costs = torch.cat([lg.groups.cost.float() for lg in layers]) if layers else torch.ones(1)
        positive = costs[costs > 0]
        scale = positive.mean() if len(positive) else torch.tensor(1.0)
        self._terms = []
        for lg in layers:
            keep = lg.groups.cost > 0
            index = lg.groups.index[keep]
            coef = lg.groups.cost[keep].float() / scale / lg.groups.sizes[keep].clamp(min=1).sqrt()
            numel = lg.module.weight.numel()
            scatter_index = scatter_slots(index, numel)
            self._terms.append((lg.module, index, coef, scatter_index))

    @staticmethod
    def _norms(weight: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values = gather(weight, index)
        return values, values.norm(dim=1)

    def penalty(self) -> torch.Tensor:
        """The penalty as a differentiable tensor (λ included)."""
        total = torch.zeros(())
        for module, index, coef, _ in self._terms:
            _, norms = self._norms(module.weight, index)
            total = total + (coef * norms).sum()
        return self.lam * total

    @torch.no_grad()
    def regularize(self, model: nn.Module | None = None) -> None:
        """Add the penalty's gradient to each weight's ``.grad`` (call after backward)."""
        for module, index, coef, scatter_index in self._terms:
            weight = module.weight
            values, norms = self._norms(weight, index)
            grad = values * (self.lam * coef / norms.clamp(min=EPS)).unsqueeze(1)
            flat = weight.new_zeros(weight.numel() + 1)
            flat.index_add_(0, scatter_index, grad.reshape(-1))
            if weight.grad is None:
                weight.grad = torch.zeros_like(weight)
            weight.grad.add_(flat[:-1].view_as(weight))

    @torch.no_grad()
    def group_norms(self) -> list[torch.Tensor]:
        """Current ‖W_g‖₂ of every penalised group, per layer."""
        return [self._norms(module.weight, index)[1] for module, index, _, _ in self._terms]

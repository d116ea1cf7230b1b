"""Global selection of groups to prune until a rotation target is met."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .cost_model import CostModel
from .errors import BudgetError
from .groups import LayerGroups
from .params import HEParams
from .specs import ConvSpec, OpCount
from .strategy import Strategy

DEFAULT_MAX_SPARSITY = 0.95


@dataclass(frozen=True)
class Target:
    """A rotation reduction factor (``"4x"``) or an absolute rotation count (``"120"``)."""

    text: str
    factor: float | None = None
    rotations: int | None = None

    def rotations_for(self, dense_rotations: int) -> int:
        """The largest rotation count that meets this target."""
        if self.rotations is not None:
            return self.rotations
        return int(dense_rotations / self.factor)


def parse_target(text: str) -> Target:
    """``"4x"``/``"1.5x"`` (reduction factor ≥ 1) or ``"120"`` (rotation count ≥ 0)."""
    cleaned = str(text).strip().lower()
    if match := re.fullmatch(r"(\d+(?:\.\d+)?)\s*[x×]", cleaned):
        factor = float(match.group(1))
        if factor >= 1:
            return Target(cleaned, factor=factor)
    elif cleaned.isdigit():
        return Target(cleaned, rotations=int(cleaned))
    raise BudgetError(
        f"target {text!r} not understood; use a reduction factor like 4x or 1.5x (>= 1), "
        "or a rotation count like 120"
    )


@dataclass(frozen=True)
class Selection:
    """The chosen masks and what they cost."""

    masks: dict[str, torch.Tensor]
    ops: OpCount
    dense_ops: OpCount
    sparsity: float
    groups_pruned: int


class _Candidates:
    """All prunable groups of a model in selection order, and masks for any prefix."""

    def __init__(self, layers: list[LayerGroups], strategy: Strategy) -> None:
        keys, owners, rows = [], [], []
        for layer_id, lg in enumerate(layers):
            weight = lg.module.weight.detach()
            importance = strategy.importance(weight, lg.groups).float()
            rotations = torch.as_tensor(lg.groups.rotations).float()
            if strategy.rotation_aware:
                usable = torch.nonzero(rotations > 0).squeeze(1)
                key = importance[usable] / rotations[usable]
            else:
                usable = torch.arange(len(lg.groups))
                key = importance
            keys.append(key)
            owners.append(torch.full_like(usable, layer_id))
            rows.append(usable)
        empty = torch.zeros(0, dtype=torch.long)
        order = torch.argsort(torch.cat(keys), stable=True) if keys else empty
        self.layers = layers
        self.owner = torch.cat(owners)[order] if keys else order
        self.row = torch.cat(rows)[order] if keys else order
        self.total_weights = sum(lg.module.weight.numel() for lg in layers)

    def __len__(self) -> int:
        return len(self.row)

    def masks(self, k: int) -> dict[str, torch.Tensor]:
        """Masks with the first ``k`` candidate groups zeroed."""
        masks = {}
        for layer_id, lg in enumerate(self.layers):
            weight = lg.module.weight
            chosen = self.row[:k][self.owner[:k] == layer_id]
            flat = torch.ones(weight.numel() + 1)
            index = lg.groups.index[chosen].reshape(-1)
            flat[torch.where(index >= 0, index, weight.numel())] = 0
            masks[lg.spec.name] = flat[:-1].view_as(weight)
        return masks

    def sparsity(self, masks: dict[str, torch.Tensor]) -> float:
        zeros = sum(int((m == 0).sum()) for m in masks.values())
        return zeros / max(self.total_weights, 1)


def _first_true(lo: int, hi: int, predicate: Callable[[int], bool]) -> int:
    """Smallest k in [lo, hi] with predicate(k) (predicate monotone; hi if none)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if predicate(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def select(
    layers: list[LayerGroups], strategy: Strategy, specs: list[ConvSpec], params: HEParams,
    cost_model: CostModel, target: Target, max_sparsity: float = DEFAULT_MAX_SPARSITY,
) -> Selection:
    """Prune the cheapest groups first (importance per rotation saved, or importance for
    plaintext baselines) until the model's true rotation count, re-read from the cost
    model, meets ``target``; never above ``max_sparsity`` of the prunable weights."""
    candidates = _Candidates(layers, strategy)

    def count(masks: dict[str, torch.Tensor]) -> OpCount:
        return sum((cost_model.count(s, params, masks.get(s.name)) for s in specs), OpCount())

    dense = count({})
    goal = target.rotations_for(dense.rotations)
    # Pruning more groups never adds operations or weights, so both searches are monotone.
    def too_sparse_after(k: int) -> bool:
        return k >= len(candidates) or candidates.sparsity(candidates.masks(k + 1)) > max_sparsity

    limit = _first_true(0, len(candidates), too_sparse_after)
    best = count(candidates.masks(limit))
    if best.rotations > goal:
        raise BudgetError(
            f"strategy {strategy.name!r} cannot reach target {target.text} ({goal} rotations, "
            f"dense {dense.rotations}): the best it reaches is {best.rotations} rotations "
            f"({dense.rotations / max(best.rotations, 1):.2f}x) at {max_sparsity:.0%} sparsity"
        )
    k = _first_true(0, limit, lambda k: count(candidates.masks(k)).rotations <= goal)
    chosen = candidates.masks(k)
    return Selection(chosen, count(chosen), dense, candidates.sparsity(chosen), k)

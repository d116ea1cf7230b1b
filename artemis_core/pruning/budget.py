"""Global selection of groups to prune until a rotation target is met."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from ..errors import BudgetError
from ..he.cost_model import CostModel
from ..he.params import HEParams
from ..he.specs import ConvSpec, OpCount
from .channels import propagate, shrink
from .groups import LayerGroups
from .masking import effective_weight
from .strategy import Strategy, scatter_slots

DEFAULT_MAX_SPARSITY = 0.95


@dataclass(frozen=True)
class Target:
    """A rotation reduction factor (``"4x"``), an absolute rotation count (``"120"``) or a
    weight sparsity (``"90%"``: prune until that fraction of the prunable weights is zero,
    the way a baseline is compared at the sparsity of another run)."""

    text: str
    factor: float | None = None
    rotations: int | None = None
    sparsity: float | None = None

    def rotations_for(self, dense_rotations: int) -> int:
        """The largest rotation count that meets this target."""
        if self.rotations is not None:
            return self.rotations
        return int(dense_rotations / self.factor)


def parse_target(text: str) -> Target:
    """``"4x"``/``"1.5x"`` (reduction factor ≥ 1), ``"120"`` (rotation count ≥ 0) or
    ``"90%"`` (weight sparsity in (0, 100))."""
    cleaned = str(text).strip().lower()
    if match := re.fullmatch(r"(\d+(?:\.\d+)?)\s*[x×]", cleaned):
        factor = float(match.group(1))
        if factor >= 1:
            return Target(cleaned, factor=factor)
    elif match := re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", cleaned):
        percent = float(match.group(1))
        if 0 < percent < 100:
            return Target(cleaned, sparsity=percent / 100)
    elif cleaned.isdigit():
        return Target(cleaned, rotations=int(cleaned))
    raise BudgetError(
        f"target {text!r} not understood; use a reduction factor like 4x or 1.5x (>= 1), "
        "a rotation count like 120, or a weight sparsity like 90%"
    )


@dataclass(frozen=True)
class Selection:
    """The chosen masks and what they cost."""

    masks: dict[str, torch.Tensor]
    ops: OpCount
    dense_ops: OpCount
    sparsity: float
    groups_pruned: int
    #: False when the target was out of reach and the strategy pruned as far as it can.
    reached: bool = True


def admissible(lg: LayerGroups, strategy: Strategy, max_sparsity: float) -> torch.Tensor:
    """Bool [G]: the groups the selector may ever take — those that fit under the
    per-layer cap on their own and, for rotation-aware strategies, save a rotation."""
    usable = lg.groups.sizes <= max_sparsity * lg.module.weight.numel()
    if strategy.rotation_aware:
        usable &= torch.as_tensor(lg.groups.rotations) > 0
    return usable


class _Candidates:
    """All admissible groups of a model in selection order, and masks for any prefix.

    A group is admissible when :func:`admissible` says so; a layer *saturates* at the
    first group that would push it past ``max_sparsity`` of its weights (weights already
    zero under ``base`` count), and none of its later groups are taken. That keeps every
    layer alive and the prefix order monotone. Importance is read from ``weights`` (layer
    name → tensor, e.g. BN-folded) where given, else from the module's weight.
    """

    def __init__(self, layers: list[LayerGroups], strategy: Strategy, max_sparsity: float,
                 base: dict[str, torch.Tensor], weights: dict[str, torch.Tensor]) -> None:
        keys, owners, rows = [], [], []
        self.base = base
        for layer_id, lg in enumerate(layers):
            weight = weights.get(lg.spec.name, effective_weight(lg.module)).detach()
            importance = strategy.importance(weight, lg.groups).float()
            rotations = torch.as_tensor(lg.groups.rotations).float()
            rows_l = torch.nonzero(admissible(lg, strategy, max_sparsity)).squeeze(1)
            key = importance[rows_l]
            keys.append(_balanced(key, rotations[rows_l], weight) if strategy.rotation_aware
                        else key)
            owners.append(torch.full_like(rows_l, layer_id))
            rows.append(rows_l)
        order = torch.argsort(torch.cat(keys), stable=True)
        owner, row = torch.cat(owners)[order], torch.cat(rows)[order]
        admitted = torch.ones(len(row), dtype=torch.bool)
        for layer_id, lg in enumerate(layers):
            admitted &= (owner != layer_id) | self._unsaturated(
                lg, row, owner == layer_id, max_sparsity, base.get(lg.spec.name))
        self.layers = layers
        self.owner, self.row = owner[admitted], row[admitted]
        self.total_weights = sum(lg.module.weight.numel() for lg in layers)

    @staticmethod
    def _unsaturated(lg: LayerGroups, row: torch.Tensor, mine: torch.Tensor,
                     max_sparsity: float, base: torch.Tensor | None) -> torch.Tensor:
        """Bool over all ranks: this layer's group at that rank comes before saturation."""
        numel = lg.module.weight.numel()
        ranks = torch.nonzero(mine).squeeze(1)
        index = lg.groups.index[row[ranks]]
        slots = scatter_slots(index, numel)
        first = torch.full((numel + 1,), len(row), dtype=torch.long)  # rank a weight is zeroed
        if base is not None:  # weights pruned before count from the start
            first[:numel][base.reshape(-1) == 0] = -1
        first.scatter_reduce_(0, slots, ranks.repeat_interleave(index.shape[1]), "amin")
        zeroed = torch.sort(first[:numel]).values
        cap = int(max_sparsity * numel)
        limit = int(zeroed[cap]) if cap < numel else len(row)
        return torch.arange(len(row)) < max(limit, 0)

    def __len__(self) -> int:
        return len(self.row)

    def masks(self, k: int) -> dict[str, torch.Tensor]:
        """Masks with the first ``k`` candidate groups zeroed."""
        masks = {}
        for layer_id, lg in enumerate(self.layers):
            weight = lg.module.weight
            chosen = self.row[:k][self.owner[:k] == layer_id]
            flat = torch.ones(weight.numel() + 1)
            flat[scatter_slots(lg.groups.index[chosen], weight.numel())] = 0
            mask = flat[:-1].view_as(weight)
            base = self.base.get(lg.spec.name)
            masks[lg.spec.name] = mask if base is None else mask * base.to(mask.dtype)
        return masks

    def sparsity(self, masks: dict[str, torch.Tensor]) -> float:
        """Fraction of the prunable weights that ``masks`` zero."""
        zeros = sum(int((m == 0).sum()) for m in masks.values())
        return zeros / max(self.total_weights, 1)


def _balanced(importance: torch.Tensor, rotations: torch.Tensor,
              weight: torch.Tensor) -> torch.Tensor:
    """Selection keys of one layer's groups: taken in order of importance per rotation,
    the k-th costs the fraction of the layer's weight energy (‖W‖², e.g. BN-folded) that
    its first k groups hold, per rotation it saves. Ranking by that across layers keeps a
    layer with small groups (a 1-input-channel stem, whose diagonals are whole filters)
    from being emptied first just because each of its groups is light."""
    order = torch.argsort(importance / rotations, stable=True)
    energy = weight.pow(2).sum().clamp(min=1e-12)
    spent = torch.empty_like(importance)
    spent[order] = torch.cumsum(importance[order].pow(2), 0) / energy
    return spent / rotations


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
    best_effort: bool = False, chains: Mapping[str, str] | None = None,
    base: dict[str, torch.Tensor] | None = None,
    weights: dict[str, torch.Tensor] | None = None,
) -> Selection:
    """Prune the cheapest groups first (importance per rotation saved, or importance for
    plaintext baselines) until the model's true rotation count, re-read from the cost
    model, meets ``target`` (or, for a sparsity target, until that fraction of the weights
    is zero); no layer loses more than ``max_sparsity`` of its weights. A target out of
    reach raises :class:`BudgetError`, or with ``best_effort`` prunes every admissible
    group and returns ``reached=False``. With ``chains`` (producer → consumer convs,
    :func:`~artemis_core.pruning.channels.channel_chains`) zeroed filters of a producer
    are counted as removed, with the consumer's input channels.

    ``base`` (layer → 0/1 mask) is what an earlier pruning removed: the new masks keep it
    (masks compose) and the target is measured from the dense model. ``weights`` (layer
    → tensor) replaces the module's weight when ranking (e.g. BN-folded weights)."""
    if not layers:
        raise BudgetError(f"strategy {strategy.name!r} has no prunable groups in this model")
    base = base or {}
    candidates = _Candidates(layers, strategy, max_sparsity, base, weights or {})

    shapes = {s.name: torch.Size(s.weight_shape) for s in specs}

    def count(masks: dict[str, torch.Tensor]) -> OpCount:
        layers, cut = specs, {**base, **masks}
        if chains:
            layers, cut = shrink(specs, propagate(cut, chains, shapes), chains)
        return sum((cost_model.count(s, params, cut.get(s.name)) for s in layers), OpCount())

    dense = sum((cost_model.count(s, params) for s in specs), OpCount())
    limit = len(candidates)
    if target.sparsity is not None:
        def meets(masks: dict[str, torch.Tensor]) -> bool:
            return candidates.sparsity(masks) >= target.sparsity
    else:
        goal = target.rotations_for(dense.rotations)

        def meets(masks: dict[str, torch.Tensor]) -> bool:
            return count(masks).rotations <= goal
    full = candidates.masks(limit)
    if not meets(full):
        if best_effort:
            return Selection(full, count(full), dense, candidates.sparsity(full), limit,
                             reached=False)
        if target.sparsity is not None:
            raise BudgetError(
                f"strategy {strategy.name!r} cannot reach sparsity {target.text}: the most "
                f"it prunes is {candidates.sparsity(full):.1%} with at most "
                f"{max_sparsity:.0%} of each layer's weights pruned")
        best = count(full)
        raise BudgetError(
            f"strategy {strategy.name!r} cannot reach target {target.text} ({goal} rotations, "
            f"dense {dense.rotations}): the best it reaches is {best.rotations} rotations "
            f"({dense.rotations / max(best.rotations, 1):.2f}x) with at most "
            f"{max_sparsity:.0%} of each layer's weights pruned"
        )
    # Pruning more groups never adds operations or zeros fewer weights, so the search
    # over prefixes is monotone.
    k = _first_true(0, limit, lambda k: meets(candidates.masks(k)))
    chosen = candidates.masks(k)
    return Selection(chosen, count(chosen), dense, candidates.sparsity(chosen), k)

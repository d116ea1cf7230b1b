"""c_g of the group Lasso: what zeroing each group saves, in one unit, normalised.

The savings come from the cost model (:meth:`CostModel.group_savings`, read into each
:class:`GroupSet`'s ``rotations`` and ``pmult``), so ``gazelle``, ``bsgs`` or a
third-party model each price their own groups. ``latency`` turns them into estimated
seconds at the calibrated per-op prices (:func:`estimate_seconds` of one rotation, one
PMult); ``rotations`` counts rotations only (an ablation). Either way c_g is divided by
its mean over the groups the selector can take, so the penalty is unit-free (see
docs/strategies.md, "λ and the normalisation").
"""

from __future__ import annotations

import torch

from ..errors import ArtemisError
from ..he.latency import Calibration, estimate_seconds
from ..he.specs import OpCount
from .budget import admissible
from .groups import LayerGroups
from .strategy import GroupSet, Strategy

GROUP_COSTS = ("latency", "rotations")


def saved_seconds(groups: GroupSet, calibration: Calibration) -> torch.Tensor:
    """Estimated seconds zeroing each group alone saves: its rotations and PMults at the
    latency model's prices for a count without levels (``COUNTING_LEVEL``; a PMult
    without an encoding, as the server runs it); the model is linear in the op counts."""
    per_rotation = estimate_seconds(OpCount(other_rotations=1), calibration)
    per_pmult = estimate_seconds(OpCount(pmult=1), calibration)
    seconds = (torch.as_tensor(groups.rotations).double() * per_rotation
               + torch.as_tensor(groups.pmult).double() * per_pmult)
    return seconds.clamp(min=0).float()  # a group never makes a layer slower to skip


def penalty_costs(layers: list[LayerGroups], strategy: Strategy, max_sparsity: float,
                  group_cost: str, calibration: Calibration | None = None,
                  ) -> list[torch.Tensor]:
    """Normalised c̃_g per layer: c_g / mean c_g over the admissible groups of the whole
    model, and 0 for groups the selector can never take (over the cap, no rotation)."""
    if group_cost not in GROUP_COSTS:
        raise ArtemisError(f"group_cost={group_cost!r}; allowed: {', '.join(GROUP_COSTS)}")
    if group_cost == "latency" and calibration is None:
        raise ArtemisError("group_cost='latency' needs a calibration (artemis calibrate)")
    raw = [saved_seconds(lg.groups, calibration) if group_cost == "latency"
           else torch.as_tensor(lg.groups.rotations).float() for lg in layers]
    usable = [admissible(lg, strategy, max_sparsity) & (c > 0)
              for lg, c in zip(layers, raw, strict=True)]
    pooled = torch.cat([c[u] for c, u in zip(raw, usable, strict=True)]) if layers else None
    if pooled is None or not len(pooled):
        return [torch.zeros(len(lg.groups)) for lg in layers]
    mean = pooled.mean()
    return [torch.where(u, c / mean, torch.zeros_like(c)) for c, u in zip(raw, usable, strict=True)]

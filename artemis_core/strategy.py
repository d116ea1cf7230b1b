"""The Strategy plugin interface: which groups of weights a pruning method removes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch

from .cost_model import CostModel
from .params import HEParams
from .specs import ConvSpec


@dataclass(frozen=True)
class GroupSet:
    """The prunable groups of one layer's weight.

    ``index`` is a LongTensor [G, M]: row g lists the flat indices (into
    ``weight.reshape(-1)``) of group g, padded with -1. ``rotations``/``pmult`` [G] are
    the ops zeroing each group alone saves in a dense layer (from the cost model), and
    ``cost`` [G] is c_g, the weight of the group in the group-Lasso penalty.
    """

    layer: str
    kind: str
    index: torch.Tensor
    rotations: torch.Tensor
    pmult: torch.Tensor
    cost: torch.Tensor

    def __len__(self) -> int:
        return self.index.shape[0]

    @property
    def sizes(self) -> torch.Tensor:
        """Number of weights in each group."""
        return (self.index >= 0).sum(dim=1)


class Strategy(ABC):
    """A pruning method (plugin kind ``strategy``).

    A strategy says *what its groups are* (:meth:`groups`) and whether training uses
    the cost-weighted group-Lasso penalty (``regularized``). Scoring, budget selection,
    masking and fine-tuning are shared machinery in :mod:`artemis_core.pruning`.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: Train with L = CE + λ Σ_g c_g ‖W_g‖₂/√|g| before selecting groups.
    regularized: ClassVar[bool] = False

    @abstractmethod
    def groups(self, spec: ConvSpec, params: HEParams, cost_model: CostModel) -> list[GroupSet]:
        """The prunable groups of one layer under ``cost_model``."""

    def importance(self, weight: torch.Tensor, groups: GroupSet) -> torch.Tensor:
        """Importance of each group ([G]); the default is ‖W_g‖₂/√|g|."""
        flat = torch.cat([weight.detach().reshape(-1), weight.new_zeros(1)])
        values = flat[groups.index.clamp(min=-1)]  # -1 reads the appended zero
        return values.pow(2).sum(dim=1).sqrt() / groups.sizes.clamp(min=1).sqrt()

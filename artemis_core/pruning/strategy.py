"""The Strategy plugin interface: which groups of weights a pruning method removes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch

from ..he.cost_model import CostModel
from ..he.params import HEParams
from ..he.specs import ConvSpec
from ..registry import declare_kind


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

    def gather(self, weight: torch.Tensor) -> torch.Tensor:
        """Each group's weight values ([G, M]); padding reads 0."""
        return gather(weight, self.index)


def gather(weight: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``weight.reshape(-1)[index]`` where the padding index -1 reads 0."""
    return torch.cat([weight.reshape(-1), weight.new_zeros(1)])[index]


def scatter_slots(index: torch.Tensor, numel: int) -> torch.Tensor:
    """``index`` flattened for scattering into a buffer of ``numel + 1`` values: the
    padding -1 goes to the spare last slot, which callers drop."""
    return torch.where(index >= 0, index, numel).reshape(-1)


class Strategy(ABC):
    """A pruning method (plugin kind ``strategy``).

    A strategy says *what its groups are* (:meth:`groups`) and whether training uses
    the cost-weighted group-Lasso penalty (``regularized``). Budget selection, the
    penalty, masking and fine-tuning are shared machinery (:mod:`artemis_core.pruning.budget`,
    :mod:`~artemis_core.pruning.regularizer`, :mod:`~artemis_core.pruning.masking`,
    :mod:`~artemis_core.pruning.pipeline`).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: Train with L = CE + λ Σ_g c_g ‖W_g‖₂/√|g| before selecting groups.
    regularized: ClassVar[bool] = False
    #: Select groups by importance per rotation saved (else by importance alone, as
    #: plaintext baselines do); rotation-aware strategies never prune groups that
    #: save no rotation.
    rotation_aware: ClassVar[bool] = True
    #: Its groups are HE structures (plaintext baselines set False): a comparison runs a
    #: baseline that falls short of a target at the sparsity of the best HE-aware run.
    he_aware: ClassVar[bool] = True
    #: Filters it zeroes are removed physically where the model allows it (with the next
    #: conv's matching input channels, see :mod:`artemis_core.pruning.channels`), so the
    #: counts are those of the smaller layers.
    removes_channels: ClassVar[bool] = False

    @abstractmethod
    def groups(self, spec: ConvSpec, params: HEParams, cost_model: CostModel) -> list[GroupSet]:
        """The prunable groups of one layer under ``cost_model``."""

    def importance(self, weight: torch.Tensor, groups: GroupSet) -> torch.Tensor:
        """Importance of each group ([G]); the default is ‖W_g‖₂, the weight mass that
        pruning the group removes (so a large group is not as cheap as a small one of
        the same RMS when groups of different sizes compete, as in hybrid)."""
        return groups.gather(weight.detach()).norm(dim=1)


def make_group_set(
    spec: ConvSpec, params: HEParams, cost_model: CostModel, kind: str, index: torch.Tensor
) -> GroupSet:
    """Wrap a group index with the ops each group saves (from ``cost_model``); the
    penalty weight c_g is the rotations the group saves, never below 0 (under a
    heuristic N1 rule, bsgs, zeroing a group can cost a rotation)."""
    saved = cost_model.group_savings(spec, params, index)
    rotations = torch.as_tensor(saved.rotations, dtype=torch.long)
    return GroupSet(spec.name, kind, index, rotations,
                    torch.as_tensor(saved.pmult, dtype=torch.long),
                    rotations.clamp(min=0).float())


class CostModelGroupStrategy(Strategy):
    """A strategy whose groups are the cost model's rotation-shaped groups of ``kinds``."""

    kinds: ClassVar[tuple[str, ...]]

    def groups(self, spec: ConvSpec, params: HEParams, cost_model: CostModel) -> list[GroupSet]:
        return [
            make_group_set(
                spec, params, cost_model, kind, cost_model.group_index(spec, params, kind)
            )
            for kind in self.kinds
            if kind in cost_model.group_kinds
        ]


declare_kind("strategy", Strategy)

"""The CostModel plugin interface: an HE convolution algorithm that counts and executes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import torch

from ..registry import declare_kind
from .latency import Calibration, estimate_seconds
from .params import HEParams
from .specs import ConvSpec, OpCount

if TYPE_CHECKING:
    from .backend import HEBackend

T = TypeVar("T")


class LayerPlan(ABC):
    """What executing one layer under a cost model does, for one weight mask.

    The same object counts and executes: :meth:`op_count` is derived from the plan's
    own data, and :meth:`execute` performs exactly those operations on a backend (the
    tests hold every cost model to this).
    """

    spec: ConvSpec
    params: HEParams

    @abstractmethod
    def counts_around_rescale(self) -> tuple[OpCount, OpCount]:
        """Operations :meth:`execute` performs before its rescale (at the input level)
        and after it (one level lower)."""

    def op_count(self) -> OpCount:
        """Operations that :meth:`execute` will perform."""
        before, after = self.counts_around_rescale()
        return before + after

    def op_count_at(self, level: int) -> dict[int, OpCount]:
        """:meth:`op_count` by the level each operation runs at, for inputs that arrive
        at ``level`` (rescales left), as a backend's ``ops_by_level`` counts them (see
        :func:`split_at_rescale`)."""
        return split_at_rescale(level, *self.counts_around_rescale())

    def estimated_seconds(self, level: int, calibration: Calibration) -> float:
        """The latency model's seconds for the layer with inputs at ``level``: every
        operation at its level, at ``calibration``'s prices."""
        return estimate_seconds(self.op_count_at(level), calibration)

    @abstractmethod
    def pack(self, x: torch.Tensor) -> list[np.ndarray]:
        """Slot vectors (length ``params.slots``) holding input ``x`` of shape C×H×W."""

    @abstractmethod
    def unpack(self, slots: list[np.ndarray | None]) -> torch.Tensor:
        """The layer's output tensor (C_out×H'×W') read back from output slot vectors
        (``None`` for an output :meth:`execute` did not compute: all zero)."""

    def _weight_plaintexts(self, weight: torch.Tensor, build: Callable[[], T]) -> T:
        """``build()`` (the slot vectors of ``weight``'s plaintexts), built once and
        reused while the plan executes with the same weight values, as a server does for
        every query."""
        key = weight.detach().to(torch.float64).contiguous().numpy().tobytes()
        memo = getattr(self, "_plaintext_memo", None)
        if memo is None or memo[0] != key:
            memo = self._plaintext_memo = (key, build())
        return memo[1]

    def details(self) -> dict[str, Any]:
        """Figures of the plan that only this cost model has, JSON-ready (``artemis
        cost`` lists them per layer and sums the integer ones); none by default."""
        return {}

    @abstractmethod
    def execute(
        self, backend: HEBackend, inputs: list[Any], weight: torch.Tensor,
        bias: torch.Tensor | None = None,
    ) -> list[Any]:
        """Run the layer on ciphertexts ``inputs`` (as packed by :meth:`pack`) and return
        the output ciphertexts. Pruned work (zero rotations/masks) is skipped; an output
        with no live product is ``None`` (see :func:`artemis_core.he.executor.decrypt_output`)."""


def split_at_rescale(level: int, before: OpCount, after: OpCount) -> dict[int, OpCount]:
    """A layer's count by level: ``before`` its rescale at the input ``level``, ``after``
    it one level lower (levels with no operation left out)."""
    parts = {level: before, level - 1: after}
    return {at: ops for at, ops in sorted(parts.items()) if ops != OpCount()}


@dataclass(frozen=True)
class GroupSavings:
    """Ops removed by zeroing each group alone, starting from a dense layer (shape [G])."""

    rotations: np.ndarray
    pmult: np.ndarray


class CostModel(ABC):
    """An HE convolution algorithm (plugin kind ``cost_model``).

    Subclasses set ``name`` and implement :meth:`plan`; everything else is derived from
    the plan. ``group_index`` exposes the rotation-shaped groups of the algorithm's
    packing (``positional``, ``diagonal``, ``block``) that strategies prune.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    group_kinds: ClassVar[tuple[str, ...]] = ()
    #: An encrypted program pools and classifies in one linear layer over the last
    #: convolution's output slots (as Orion does) instead of rotate-and-sum pooling and
    #: a small classifier (see :mod:`artemis_core.deploy.he_program`).
    fuses_classifier: ClassVar[bool] = False

    @abstractmethod
    def plan(self, spec: ConvSpec, params: HEParams, mask: torch.Tensor | None = None) -> LayerPlan:
        """The execution plan for a layer whose weight is zero where ``mask`` is 0
        (``mask`` has the weight's shape; ``None`` means dense)."""

    def count(self, spec: ConvSpec, params: HEParams, mask: torch.Tensor | None = None) -> OpCount:
        """Operations for the layer under ``mask`` (derived from :meth:`plan`)."""
        return self.plan(spec, params, mask).op_count()

    @abstractmethod
    def group_index(self, spec: ConvSpec, params: HEParams, kind: str) -> torch.Tensor:
        """Rotation-shaped groups of ``kind`` (one of ``group_kinds``) as a LongTensor
        [G, M] of flat indices into ``weight.reshape(-1)``, padded with -1."""

    @abstractmethod
    def group_savings(self, spec: ConvSpec, params: HEParams, index: torch.Tensor) -> GroupSavings:
        """Ops saved by zeroing each group of ``index`` ([G, M], -1 padded) alone in a
        dense layer: exactly ``count(dense) - count(dense with the group zeroed)``."""


declare_kind("cost_model", CostModel)

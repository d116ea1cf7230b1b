"""Ablation of ``diagonal``: the same groups, selection and epochs, without the penalty,
so that the regularizer's effect is one row of a comparison."""

from artemis_core import hookimpl
from artemis_core.pruning.strategy import CostModelGroupStrategy


class DiagonalNoRegStrategy(CostModelGroupStrategy):
    """Channel diagonals chosen by (BN-folded) magnitude per rotation after plain
    training for the same number of epochs as ``diagonal``'s regularized phase."""

    name = "diagonal-noreg"
    description = "as diagonal, without the group-Lasso penalty (ablation)"
    kinds = ("diagonal",)
    regularized = False


@hookimpl
def register_strategies(register) -> None:
    register(DiagonalNoRegStrategy)

"""Artemis diagonal pruning: a channel diagonal of a packed weight block."""

from artemis_core import hookimpl
from artemis_core.pruning.strategy import CostModelGroupStrategy


class DiagonalStrategy(CostModelGroupStrategy):
    """Each group is one channel diagonal d of one output block (all input blocks and
    taps); zeroing it removes the block's output rotation by d and its PMults."""

    name = "diagonal"
    description = "channel diagonal per output block; cost-weighted group Lasso (Artemis)"
    kinds = ("diagonal",)
    regularized = True


@hookimpl
def register_strategies(register) -> None:
    register(DiagonalStrategy)

"""Artemis positional pruning: a kernel tap across a block of input channels."""

from artemis_core import hookimpl
from artemis_core.pruning.strategy import CostModelGroupStrategy


class PositionalStrategy(CostModelGroupStrategy):
    """Each group is one kernel tap of one packed input block (all output channels);
    zeroing it removes that block's input rotation for the tap."""

    name = "positional"
    description = "kernel tap per input block; cost-weighted group Lasso (Artemis)"
    kinds = ("positional",)
    regularized = True


@hookimpl
def register_strategies(register) -> None:
    register(PositionalStrategy)

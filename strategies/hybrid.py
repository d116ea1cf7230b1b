"""Artemis hybrid pruning: positional and diagonal groups compete in one budget."""

from artemis_core import hookimpl
from artemis_core.pruning.strategy import CostModelGroupStrategy


class HybridStrategy(CostModelGroupStrategy):
    """Positional and diagonal groups together (they overlap; the budget re-reads the
    true count after each choice)."""

    name = "hybrid"
    description = "positional + diagonal groups; cost-weighted group Lasso (Artemis)"
    kinds = ("positional", "diagonal")
    regularized = True


@hookimpl
def register_strategies(register) -> None:
    register(HybridStrategy)

"""Artemis hybrid pruning: positional and diagonal groups compete in one budget."""

from artemis_core import hookimpl
from artemis_core.pruning.strategy import CostModelGroupStrategy


class HybridStrategy(CostModelGroupStrategy):
    """Positional and diagonal groups together, plus the cost model's own units where it
    has them (``bsgs``: baby-step and giant-step classes); they overlap, and the budget
    re-reads the true count after each choice."""

    name = "hybrid"
    description = ("positional + diagonal groups (+ the cost model's own units); "
                   "cost-weighted group Lasso (Artemis)")
    kinds = ("positional", "diagonal", "baby-step", "giant-step")
    regularized = True


@hookimpl
def register_strategies(register) -> None:
    register(HybridStrategy)

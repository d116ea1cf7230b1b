"""Hunter-style HE structures (Cai et al., ASIA CCS'22), re-implemented from the paper's
description: kernel taps, channel diagonals and whole weight blocks of the packed
convolution, chosen by magnitude after ordinary (unregularized) training."""

from artemis_core import hookimpl
from artemis_core.pruning.strategy import CostModelGroupStrategy


class HunterStrategy(CostModelGroupStrategy):
    """Groups of all three HE structures; no HE-aware regularizer during training."""

    name = "hunter"
    description = "HE structures (tap, diagonal, block) by magnitude, no regularizer (Hunter)"
    kinds = ("positional", "diagonal", "block")
    regularized = False


@hookimpl
def register_strategies(register) -> None:
    register(HunterStrategy)

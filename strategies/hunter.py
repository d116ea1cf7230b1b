"""Hunter (Cai et al., ASIA CCS'22), re-implemented from the paper's public description:
HE-friendly structured pruning with three structures of the packed convolution —
*internal* structure (one kernel position inside the packed weight blocks of an input
block, whose input rotation it removes), *external* structure (a whole packed weight
block, removing its plaintext multiplications) and *weight diagonal* (one channel diagonal
of an output block, removing its output rotation) — chosen by magnitude after ordinary
training and retrained, with no HE-aware regularizer. Assumptions: docs/strategies.md."""

import torch

from artemis_core import GroupSet, hookimpl
from artemis_core.pruning.strategy import CostModelGroupStrategy


class HunterStrategy(CostModelGroupStrategy):
    """The three HE structures ranked globally by mean magnitude (L1 norm / size), the
    magnitude criterion of structured pruning, not by what each saves: the HE cost model
    decides only *which* structures exist and when the rotation target is met."""

    name = "hunter"
    description = "HE structures (internal, external, diagonal) by magnitude (Hunter)"
    kinds = ("positional", "block", "diagonal")
    regularized = False
    rotation_aware = False

    def importance(self, weight: torch.Tensor, groups: GroupSet) -> torch.Tensor:
        return groups.gather(weight.detach()).abs().sum(dim=1) / groups.sizes.clamp(min=1)


@hookimpl
def register_strategies(register) -> None:
    register(HunterStrategy)

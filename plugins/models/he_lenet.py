"""``he-lenet``: a LeNet-like CNN for 28×28 inputs that CKKS evaluates without bootstrapping.

Two 5×5 stride-2 convolutions (28 → 14 → 7) with batch norm and the degree-2
:class:`~artemis_core.learning.polyact.PolyAct`, a global average pool and a linear
classifier: only layers with an exact leveled-HE form, so both engines run it (our Pyfhel
program and Orion). Depth 5 (conv, act, conv, act, pool + linear).
"""

from __future__ import annotations

from artemis_plugins.models.he_cnn import poly_cnn
from torch import nn

from artemis_core import ModelInfo, hookimpl


def build_he_lenet(num_classes: int, input_shape: tuple[int, int, int],
                   width: int = 16) -> nn.Sequential:
    """he-lenet: 5×5 convs, both at stride 2 (28 → 14 → 7)."""
    return poly_cnn(num_classes, input_shape[0], width, kernel=5, first_stride=2)


@hookimpl
def register_models(register) -> None:
    """Register ``he-lenet``."""
    register(ModelInfo(
        name="he-lenet",
        build=build_he_lenet,
        default_input=(1, 28, 28),
        description="HE-friendly LeNet-like CNN for 28×28: two 5×5/2 convs + BN, PolyAct, "
                    "avgpool, linear (depth 5, no bootstrapping)",
    ))

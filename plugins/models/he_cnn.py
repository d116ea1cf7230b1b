"""``he-cnn``: a small CNN that CKKS evaluates end to end without bootstrapping.

Only layers with an exact leveled-HE form: "same"-padded convolutions (groups=1,
stride 1 or 2), batch norm (folded into its convolution for HE), the degree-2
:class:`~artemis_core.learning.polyact.PolyAct` activation, a global average pool and a linear
classifier. Batch norm keeps the polynomial network trainable at the shared training
loop's learning rate (without it, x² activations diverge at lr 0.1). Depth: five
rescales (conv, act, conv, act, pool+linear), so N = 2^14 with a [60, 40×5, 60]-bit
chain (320 bits ≤ 438) is 128-bit secure.
"""

from __future__ import annotations

from torch import nn

from artemis_core import ModelInfo, hookimpl
from artemis_core.learning.polyact import PolyAct


def poly_cnn(num_classes: int, channels: int, width: int, kernel: int,
             first_stride: int) -> nn.Sequential:
    """conv C→w k×k (stride ``first_stride``), BN, act, conv w→2w k×k stride 2, BN, act,
    global avgpool, linear 2w→classes: the HE-friendly shape of he-cnn and he-lenet."""
    return nn.Sequential(
        nn.Conv2d(channels, width, kernel, stride=first_stride, padding=kernel // 2,
                  bias=False),
        nn.BatchNorm2d(width),
        PolyAct(),
        nn.Conv2d(width, 2 * width, kernel, stride=2, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(2 * width),
        PolyAct(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, num_classes),
    )


def build_he_cnn(num_classes: int, input_shape: tuple[int, int, int],
                 width: int = 8) -> nn.Sequential:
    """he-cnn: 3×3 convs, the first at stride 1."""
    return poly_cnn(num_classes, input_shape[0], width, kernel=3, first_stride=1)


@hookimpl
def register_models(register) -> None:
    """Register ``he-cnn``."""
    register(ModelInfo(
        name="he-cnn",
        build=build_he_cnn,
        default_input=(1, 8, 8),
        description="HE-friendly CNN: 2 convs + BN, degree-2 polynomial activations, "
                    "avgpool, linear (depth 5, no bootstrapping)",
    ))

"""``he-resnet``: a small ResNet with polynomial activations, for the orion engine.

The ReLUs of a ResNet become :class:`~artemis_core.learning.polyact.PolyAct` (degree 2),
so Orion runs it without bootstrapping at N = 2^14: a 3×3 stem and two basic blocks
(identity shortcut, then stride 2 with a 1×1 conv shortcut). An activation that feeds a
residual addition costs Orion two levels, one that feeds only a convolution one; the
network needs 13.
"""

from __future__ import annotations

from torch import Tensor, nn

from artemis_core import ModelInfo, hookimpl
from artemis_core.learning.polyact import PolyAct

from .resnet import conv_bn, init_weights


class PolyBlock(nn.Module):
    """conv-BN-act-conv-BN plus a shortcut, then act (a ResNet basic block, PolyAct)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv_bn(c_in, c_out, 3, stride)
        self.act1 = PolyAct()
        self.conv2, self.bn2 = conv_bn(c_out, c_out, 3)
        self.act2 = PolyAct()
        changes_shape = stride != 1 or c_in != c_out
        self.shortcut = nn.Sequential(*conv_bn(c_in, c_out, 1, stride)) if changes_shape \
            else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self.bn2(self.conv2(out)) + self.shortcut(x))


class HEResNet(nn.Module):
    """Stem conv-BN-act, blocks of ``widths`` (each after the first with stride 2),
    global average pooling, linear classifier."""

    def __init__(self, in_channels: int, num_classes: int, widths=(8, 16)) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv_bn(in_channels, widths[0], 3)
        self.act = PolyAct()
        blocks, c_in = [], widths[0]
        for index, width in enumerate(widths):
            blocks.append(PolyBlock(c_in, width, 1 if index == 0 else 2))
            c_in = width
        self.layers = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layers(self.act(self.bn1(self.conv1(x))))
        return self.fc(self.avgpool(x).flatten(1))


@hookimpl
def register_models(register) -> None:
    """Register ``he-resnet``."""
    register(ModelInfo(
        name="he-resnet",
        build=lambda num_classes, input_shape: HEResNet(input_shape[0], num_classes),
        default_input=(1, 8, 8),
        description="small ResNet with PolyAct activations (stem + 8-ch block + stride-2 "
                    "16-ch block), for the orion engine: 13 levels, no bootstrapping",
    ))

"""ResNet-style CNNs: a digits-sized ResNet, a ResNet-8 for 28×28, CIFAR ResNet-20/32/56
and CIFAR ResNet-18.

Every conv is "same"-padded (padding = k // 2) with stride 1 or 2, groups 1 and no
dilation — the layer shapes the HE cost models support. Shortcuts that change shape are
1×1 convs + BN ("option B" of He et al. 2016).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from artemis_core import ModelInfo, hookimpl


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    """A same-padded conv without bias followed by BN (the BN supplies the shift)."""
    return [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
    ]


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers plus a shortcut (identity, or 1×1 conv-BN on a shape change)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv_bn(c_in, c_out, 3, stride)
        self.conv2, self.bn2 = conv_bn(c_out, c_out, 3)
        self.relu = nn.ReLU()
        changes_shape = stride != 1 or c_in != c_out
        self.shortcut = nn.Sequential(*conv_bn(c_in, c_out, 1, stride)) if changes_shape \
            else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """3×3 stem, stages of basic blocks (each stage after the first halves H×W), global
    average pooling and a linear classifier. Layers are named as in torchvision
    (``conv1``, ``layer1.0.conv2``, ``fc``)."""

    def __init__(self, in_channels: int, num_classes: int, widths: Sequence[int],
                 blocks: Sequence[int]) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv_bn(in_channels, widths[0], 3)
        self.relu = nn.ReLU()
        c_in = widths[0]
        for index, (width, count) in enumerate(zip(widths, blocks, strict=True)):
            stride = 1 if index == 0 else 2
            stage = []
            for block in range(count):
                stage.append(BasicBlock(c_in, width, stride if block == 0 else 1))
                c_in = width
            self.add_module(f"layer{index + 1}", nn.Sequential(*stage))
        self.stages = len(widths)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        for index in range(self.stages):
            x = getattr(self, f"layer{index + 1}")(x)
        return self.fc(self.avgpool(x).flatten(1))


def init_weights(model: nn.Module) -> None:
    """He (fan-out) init for convs, unit/zero BN, as in He et al. 2016."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def _builder(widths: Sequence[int], blocks: Sequence[int]):
    def build(num_classes: int, input_shape: tuple[int, int, int]) -> ResNet:
        return ResNet(input_shape[0], num_classes, widths, blocks)

    return build


CIFAR_WIDTHS = (16, 32, 64)
CIFAR = (3, 32, 32)

MODELS = (
    # 32/64 channels so that, as in CIFAR ResNets, output (diagonal) rotations dominate:
    # at 16 channels the 8 input rotations per conv are a third of the cost and no
    # diagonal pruning can reach 4x (docs/strategies.md).
    ModelInfo("digits-resnet", _builder((32, 64), (1, 1)), (1, 8, 8),
              "small ResNet for 8×8 digits: 3×3 stem, one 32-ch block, one stride-2 64-ch block"),
    # ResNet-8 for 28×28 (the MNIST family): three stages at 28², 14² and 7², one block
    # each, so an epoch of 60,000 images takes about a minute on one core (docs/
    # models-and-training.md) while stages 2 and 3 are, as in CIFAR ResNets,
    # dominated by diagonal rotations.
    ModelInfo("mnist-resnet", _builder(CIFAR_WIDTHS, (1, 1, 1)), (1, 28, 28),
              "ResNet-8 for 28×28 MNIST-family images: 3×3 stem, one block per stage, "
              "16/32/64 channels"),
    ModelInfo("resnet20", _builder(CIFAR_WIDTHS, (3, 3, 3)), CIFAR,
              "CIFAR ResNet-20 (He et al. 2016), 16/32/64 channels, 1×1-conv shortcuts"),
    ModelInfo("resnet32", _builder(CIFAR_WIDTHS, (5, 5, 5)), CIFAR,
              "CIFAR ResNet-32 (He et al. 2016), 16/32/64 channels, 1×1-conv shortcuts"),
    ModelInfo("resnet56", _builder(CIFAR_WIDTHS, (9, 9, 9)), CIFAR,
              "CIFAR ResNet-56 (He et al. 2016), 16/32/64 channels, 1×1-conv shortcuts"),
    ModelInfo("resnet18", _builder((64, 128, 256, 512), (2, 2, 2, 2)), CIFAR,
              "CIFAR-style ResNet-18: 3×3 stem, no max-pool, 64-512 channels"),
)


@hookimpl
def register_models(register) -> None:
    for info in MODELS:
        register(info)

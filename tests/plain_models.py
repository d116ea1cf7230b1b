"""Model plugins the suite registers temporarily: a conv+bias CNN without BatchNorm, and
models with layers HE cannot run (depthwise, max pooling)."""

from __future__ import annotations

from torch import nn

from artemis_core import ModelInfo, hookimpl, registry


def plain_cnn(num_classes: int, input_shape: tuple[int, int, int]) -> nn.Sequential:
    """conv+bias ReLU ×3 (32, 64 stride 2, 64 channels), average pool, linear: no BN."""
    c = input_shape[0]
    return nn.Sequential(
        nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes),
    )


def depthwise_cnn(num_classes: int, input_shape: tuple[int, int, int]) -> nn.Sequential:
    """A depthwise conv (groups = channels): HE packing here does not support it."""
    c = input_shape[0]
    return nn.Sequential(nn.Conv2d(c, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1, groups=8),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))


def maxpool_cnn(num_classes: int, input_shape: tuple[int, int, int]) -> nn.Sequential:
    """Max pooling: no exact CKKS form."""
    c = input_shape[0]
    return nn.Sequential(nn.Conv2d(c, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8 * (8 // 2) ** 2, num_classes))


class PlainModels:
    @hookimpl
    def register_models(self, register) -> None:
        register(ModelInfo("plain-cnn", plain_cnn, (1, 8, 8), "conv+bias, no BN"))
        register(ModelInfo("depthwise-cnn", depthwise_cnn, (1, 8, 8), "depthwise conv"))
        register(ModelInfo("maxpool-cnn", maxpool_cnn, (1, 8, 8), "max pooling"))


def install(monkeypatch) -> None:
    """Use a registry with :class:`PlainModels` added (undone with ``monkeypatch``)."""
    pm, sources = registry.build_plugin_manager()
    pm.register(PlainModels(), name="plain-models-test")
    built = registry.build_registry(pm, sources)
    monkeypatch.setattr(registry, "get_registry", lambda: built)

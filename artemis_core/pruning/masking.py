"""Pruning masks installed through ``torch.nn.utils.prune``.

Users get the familiar ``weight_orig`` / ``weight_mask`` parametrisation and can make a
pruning permanent with ``prune.remove``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune

from ..errors import SpecError


class GroupMaskPruning(prune.BasePruningMethod):
    """A pruning method whose mask was chosen group-wise by an Artemis strategy."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, mask: torch.Tensor) -> None:
        self.mask = mask

    def compute_mask(self, t: torch.Tensor, default_mask: torch.Tensor) -> torch.Tensor:
        if self.mask.shape != t.shape:
            raise SpecError(f"mask shape {tuple(self.mask.shape)} != weight shape {tuple(t.shape)}")
        return default_mask * self.mask.to(dtype=default_mask.dtype, device=default_mask.device)


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Install ``masks`` (layer name → 0/1 tensor of the weight's shape) on the model; on
    a layer that already has one, the masks compose (a weight stays pruned)."""
    modules = dict(model.named_modules())
    for name, mask in masks.items():
        if name not in modules:
            raise SpecError(f"mask for unknown layer {name!r}")
        module = modules[name]
        if hasattr(module, "weight_mask"):
            # torch's PruningContainer would hand our method only the unpruned entries;
            # the composed mask is simply the product
            if mask.shape != module.weight_mask.shape:
                raise SpecError(f"mask shape {tuple(mask.shape)} != weight shape "
                                f"{tuple(module.weight_mask.shape)}")
            module.weight_mask.mul_(mask.to(module.weight_mask.dtype))
            module.weight = module.weight_orig * module.weight_mask
        else:
            GroupMaskPruning.apply(module, "weight", mask=mask)


def effective_weight(module: nn.Module) -> torch.Tensor:
    """The weight the module computes with: ``weight_orig * weight_mask`` when pruned
    (``module.weight`` is only refreshed by the next forward pass), else ``weight``."""
    if hasattr(module, "weight_mask"):
        return module.weight_orig * module.weight_mask
    return module.weight


def current_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """The installed masks, keyed by layer name (layers without a mask are absent)."""
    return {
        name: module.weight_mask.detach().clone()
        for name, module in model.named_modules()
        if hasattr(module, "weight_mask")
    }


def nonzero_masks(model: nn.Module, layer_names: list[str]) -> dict[str, torch.Tensor]:
    """Masks read off the weights themselves (weight != 0), e.g. for a loaded model."""
    modules = dict(model.named_modules())
    return {name: modules[name].weight.detach() != 0 for name in layer_names}

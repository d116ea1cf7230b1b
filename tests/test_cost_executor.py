"""Whole-model encrypted pass: convs on ``sim``, the rest in the clear."""

from __future__ import annotations

import torch
from artemis_plugins.backends.sim import SimBackend
from artemis_plugins.cost.gazelle import GazelleCostModel
from torch import nn

from artemis_core import HEParams
from artemis_core.he.executor import run_model
from artemis_core.learning.zoo import build_model

PARAMS = HEParams(10, allow_insecure=True)


def prune_randomly(model: nn.Module, fraction: float, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.weight.mul_(torch.rand(module.weight.shape, generator=gen) >= fraction)


def test_pruned_digits_resnet_matches_the_clear_model_and_its_predicted_ops():
    model = build_model("digits-resnet", 10, (1, 8, 8), seed=0).eval()
    prune_randomly(model, 0.6, seed=1)
    x = torch.randn(1, 8, 8, generator=torch.Generator().manual_seed(2))
    run = run_model(model, x, GazelleCostModel(), PARAMS, SimBackend)
    expected = model.double()(x.double().unsqueeze(0)).squeeze(0)
    assert (run.output - expected).abs().max().item() < 1e-9
    assert run.ops == run.predicted
    assert run.ops.pmult > 0 and run.ops.rotations > 0


def test_pruning_removes_executed_rotations():
    model = build_model("digits-resnet", 10, (1, 8, 8), seed=0).eval()
    x = torch.randn(1, 8, 8)
    dense = run_model(model, x, GazelleCostModel(), PARAMS, SimBackend).ops
    prune_randomly(model, 0.97, seed=3)
    pruned = run_model(model, x, GazelleCostModel(), PARAMS, SimBackend).ops
    assert pruned.rotations < dense.rotations and pruned.pmult < dense.pmult


def test_the_callers_model_is_left_untouched():
    model = build_model("digits-resnet", 10, (1, 8, 8), seed=0).train()
    run_model(model, torch.randn(1, 8, 8), GazelleCostModel(), PARAMS, SimBackend)
    assert model.training and next(model.parameters()).dtype == torch.float32

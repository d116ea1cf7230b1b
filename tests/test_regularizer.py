"""The cost-weighted group-Lasso penalty and prune-based masks."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from artemis_core import HEParams, OpCount
from artemis_core.he.extract import extract_specs
from artemis_core.he.latency import estimate_seconds, load_calibration
from artemis_core.pruning.groups import collect_groups, latency_weighted
from artemis_core.pruning.masking import apply_masks, current_masks
from artemis_core.pruning.regularizer import GroupLasso
from artemis_core.registry import get

PARAMS = HEParams(log_n=12, coeff_modulus_bits=(36, 30, 36), scale_bits=30)
INPUT = (3, 8, 8)


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4),
    )


def _lasso(model: nn.Module, strategy: str, lam: float) -> GroupLasso:
    specs = extract_specs(model, INPUT)
    cost_model = get("cost_model", "gazelle")()
    layers = collect_groups(model, specs, PARAMS, cost_model, get("strategy", strategy)())
    return GroupLasso(layers, lam)


def _data(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, *INPUT, generator=generator)
    return x, (x.mean(dim=(1, 2, 3)) > 0).long() + 2 * (x[:, 0].mean(dim=(1, 2)) > 0).long()


@pytest.mark.parametrize("strategy", ["diagonal", "hybrid"])
def test_regularize_adds_the_gradient_of_the_penalty(strategy):
    model = _model()
    lasso = _lasso(model, strategy, lam=0.3)
    lasso.penalty().backward()
    autograd = [torch.zeros_like(p) if p.grad is None else p.grad.clone()
                for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    lasso.regularize(model)
    for param, expected in zip(model.parameters(), autograd, strict=True):
        got = param.grad if param.grad is not None else torch.zeros_like(param)
        torch.testing.assert_close(got, expected)


def test_regularizer_drives_the_penalised_group_norms_down():
    x, y = _data()

    def train(lam: float) -> float:
        model = _model()
        lasso = _lasso(model, "diagonal", lam)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        for _ in range(60):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            lasso.regularize(model)
            optimizer.step()
        return float(sum(n.sum() for n in lasso.group_norms()))

    start = float(sum(n.sum() for n in _lasso(_model(), "diagonal", 1.0).group_norms()))
    plain, regularized = train(0.0), train(0.2)
    assert regularized < 0.5 * start
    assert regularized < 0.5 * plain


def test_groups_that_save_no_rotation_are_not_penalised():
    model = _model()
    lasso = _lasso(model, "positional", lam=1.0)
    # 1x1-equivalent centre taps save nothing: their weights get no penalty gradient
    model.zero_grad(set_to_none=True)
    lasso.regularize(model)
    centre = model[0].weight.grad[:, :, 1, 1]
    assert torch.count_nonzero(centre) == 0
    assert torch.count_nonzero(model[0].weight.grad) > 0


def test_masks_install_through_torch_prune_and_survive_training():
    model = _model()
    mask = (torch.rand_like(model[2].weight) > 0.5).float()
    apply_masks(model, {"2": mask})
    assert hasattr(model[2], "weight_orig") and hasattr(model[2], "weight_mask")
    x, y = _data()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for _ in range(5):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    assert torch.all(model[2].weight[mask == 0] == 0)
    torch.testing.assert_close(current_masks(model)["2"], mask)
    prune.remove(model[2], "weight")
    assert torch.all(model[2].weight[mask == 0] == 0)
    assert not hasattr(model[2], "weight_mask")


def test_latency_weighted_costs_are_the_estimated_seconds_each_group_saves():
    model = _model()
    specs = extract_specs(model, INPUT)
    cost_model = get("cost_model", "gazelle")()
    layers = collect_groups(model, specs, PARAMS, cost_model, get("strategy", "diagonal")())
    calibration = load_calibration()
    weighted = latency_weighted(layers, calibration)
    for lg, wg in zip(layers, weighted, strict=True):
        for g in (0, 1, len(lg.groups) - 1):
            saved = OpCount(other_rotations=int(lg.groups.rotations[g]),
                            pmult=int(lg.groups.pmult[g]))
            assert float(wg.groups.cost[g]) == pytest.approx(estimate_seconds(saved, calibration))
    # the d = 0 diagonals save PMults but no rotation: penalised only by latency
    free = [lg.groups.rotations == 0 for lg in layers]
    assert all(bool((lg.groups.cost[f] == 0).all()) for lg, f in zip(layers, free, strict=True))
    assert all(bool((wg.groups.cost[f] > 0).all()) for wg, f in zip(weighted, free, strict=True))

"""The cost-weighted group-Lasso penalty and prune-based masks."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from artemis_core import HEParams, OpCount
from artemis_core.he.extract import extract_specs
from artemis_core.he.latency import estimate_seconds, load_calibration
from artemis_core.pruning.budget import admissible
from artemis_core.pruning.costs import penalty_costs, saved_seconds
from artemis_core.pruning.groups import batchnorm_after, collect_groups
from artemis_core.pruning.masking import apply_masks, current_masks
from artemis_core.pruning.regularizer import GroupLasso
from artemis_core.registry import get

PARAMS = HEParams(log_n=12, coeff_modulus_bits=(36, 30, 36), scale_bits=30)
INPUT = (3, 8, 8)
CAP = 0.95


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4),
    )


def _layers(model: nn.Module, strategy: str):
    specs = extract_specs(model, INPUT)
    cost_model = get("cost_model", "gazelle")()
    return collect_groups(model, specs, PARAMS, cost_model, get("strategy", strategy)())


def _lasso(model: nn.Module, strategy: str, lam: float, group_cost: str = "latency",
           batchnorms=None) -> GroupLasso:
    layers = _layers(model, strategy)
    costs = penalty_costs(layers, get("strategy", strategy)(), CAP, group_cost,
                          load_calibration())
    return GroupLasso(layers, lam, costs, batchnorms)


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


def test_c_g_is_the_estimated_seconds_a_group_saves_over_their_mean():
    model = _model()
    layers = _layers(model, "diagonal")
    calibration = load_calibration()
    for lg in layers:
        for g in (0, 1, len(lg.groups) - 1):
            saved = OpCount(other_rotations=int(lg.groups.rotations[g]),
                            pmult=int(lg.groups.pmult[g]))
            assert float(saved_seconds(lg.groups, calibration)[g]) == pytest.approx(
                estimate_seconds(saved, calibration), rel=1e-6)
    strategy = get("strategy", "diagonal")()
    costs = penalty_costs(layers, strategy, CAP, "latency", calibration)
    takeable = [admissible(lg, strategy, CAP) for lg in layers]
    pooled = torch.cat([c[t] for c, t in zip(costs, takeable, strict=True)])
    assert float(pooled.mean()) == pytest.approx(1.0)  # unit-free: mean 1 over takeable
    assert float(pooled.std()) > 0.05  # and not a plain (uniform) group Lasso
    # the d = 0 diagonals save PMults but no rotation: the selector never takes them
    for lg, c, t in zip(layers, costs, takeable, strict=True):
        assert bool((c[~t] == 0).all()) and bool((lg.groups.rotations[~t] == 0).all())


def test_c_g_does_not_depend_on_the_machine_speed():
    layers = _layers(_model(), "diagonal")
    strategy = get("strategy", "diagonal")()
    slow = load_calibration()
    fast = dataclasses.replace(slow, **{op: {level: s / 10 for level, s in
                                             getattr(slow, op).items()}
                                        for op in ("rotation", "pmult", "encode")})
    for a, b in zip(penalty_costs(layers, strategy, CAP, "latency", slow),
                    penalty_costs(layers, strategy, CAP, "latency", fast), strict=True):
        torch.testing.assert_close(a, b)


def test_groups_over_the_per_layer_cap_are_not_penalised():
    model = _model()
    layers = _layers(model, "positional")
    strategy = get("strategy", "positional")()
    costs = penalty_costs(layers, strategy, 0.05, "rotations")
    for lg, c in zip(layers, costs, strict=True):
        too_big = lg.groups.sizes > 0.05 * lg.module.weight.numel()
        assert bool(too_big.any()) and bool((c[too_big] == 0).all())


def test_the_proximal_step_shrinks_each_group_by_its_cost():
    """Norms drop by lr·λ·c̃_g·ρ·√|g|: a group saving twice the seconds shrinks twice as
    fast (fails if c_g were ignored: the c̃_g differ)."""
    model = _model()
    lasso = _lasso(model, "diagonal", lam=0.01)
    original = _layers(_model(), "diagonal")
    costs = penalty_costs(original, get("strategy", "diagonal")(), CAP, "latency",
                          load_calibration())
    before = [n.clone() for n in lasso.group_norms()]
    lasso.proximal(lr=0.1)
    drops = torch.cat([b - a for b, a in zip(before, lasso.group_norms(), strict=True)])
    expected = torch.cat([
        0.1 * 0.01 * c[c > 0] * lg.module.weight.detach().pow(2).mean().sqrt()
        * lg.groups.sizes[c > 0].sqrt() for lg, c in zip(original, costs, strict=True)])
    torch.testing.assert_close(drops, expected, rtol=1e-4, atol=1e-7)
    assert float(expected.max() / expected.min()) > 1.5


def test_the_proximal_step_reaches_exact_zeros():
    model = _model()
    lasso = _lasso(model, "diagonal", lam=100.0)
    lasso.proximal(lr=1.0)
    assert all(bool((n == 0).all()) for n in lasso.group_norms())
    assert torch.count_nonzero(model[2].weight) > 0  # the d = 0 diagonals are not penalised


@pytest.mark.parametrize("apply", ["proximal", "regularize"])
def test_a_targeted_penalty_leaves_the_kept_weights_alone(apply):
    """Only the groups a mask zeroes are penalised: every other weight is untouched
    (fails if kept groups shrank)."""
    model = _model()
    lasso = _lasso(model, "diagonal", lam=0.5)
    layers = _layers(model, "diagonal")
    masks = {lg.spec.name: torch.ones_like(lg.module.weight) for lg in layers}
    doomed = layers[1].groups.index[3]
    masks[layers[1].spec.name].view(-1)[doomed[doomed >= 0]] = 0
    assert lasso.target(masks) == 1
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    if apply == "proximal":
        lasso.proximal(lr=0.1)
    else:
        model.zero_grad(set_to_none=True)
        lasso.regularize(model)
        torch.optim.SGD(model.parameters(), lr=0.1).step()
    weight = model[2].weight.detach().view(-1)
    kept = torch.ones_like(weight, dtype=torch.bool)
    kept[doomed[doomed >= 0]] = False
    assert torch.equal(weight[kept], before["2.weight"].view(-1)[kept])
    assert float(weight[~kept].norm()) < float(before["2.weight"].view(-1)[~kept].norm())
    for name in ("0.weight", "6.weight", "6.bias"):
        assert torch.equal(dict(model.named_parameters())[name], before[name])


def test_the_bn_scale_of_a_channel_whose_weights_are_all_penalised_shrinks_too():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
    shape = (8, 8, 8)
    specs = extract_specs(model, shape)
    strategy = get("strategy", "diagonal")()
    layers = collect_groups(model, specs, PARAMS, get("cost_model", "gazelle")(), strategy)[:1]
    bns = batchnorm_after(model, [lg.spec.name for lg in layers], shape)
    assert bns == {"0": model[1]}
    # every diagonal penalised (costs set by hand): every channel is covered, γ shrinks
    lasso = GroupLasso(layers, 0.5, [torch.ones(len(layers[0].groups))], bns)
    lasso.proximal(lr=0.1)
    assert bool((model[1].weight.detach() < 1).all())
    # one diagonal only: it holds one weight per channel pair, no channel is covered
    model[1].weight.data.fill_(1.0)
    masks = {"0": torch.ones_like(model[0].weight)}
    doomed = layers[0].groups.index[1]
    masks["0"].view(-1)[doomed[doomed >= 0]] = 0
    assert lasso.target(masks) == 1
    lasso.proximal(lr=0.1)
    assert torch.equal(model[1].weight.detach(), torch.ones(8))

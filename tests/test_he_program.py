"""The compiled encrypted network, checked exactly on the ``sim`` slot simulator."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from artemis_plugins.models.he_cnn import build_he_cnn
from he_models import chain
from torch import nn

from artemis_core.deploy.he_program import compile_model, fit_params
from artemis_core.errors import ParamsError, SpecError
from artemis_core.he.params import HEParams
from artemis_core.learning.polyact import PolyAct
from artemis_core.pruning.pipeline import PruneConfig, prune_model
from artemis_core.registry import get

PARAMS = HEParams.with_depth(13, 5, allow_insecure=True)
SHAPE = (1, 8, 8)


def _model(seed: int, num_classes: int = 10) -> nn.Sequential:
    torch.manual_seed(seed)
    model = build_he_cnn(num_classes, SHAPE).eval()
    with torch.no_grad():
        for act in (m for m in model if isinstance(m, PolyAct)):
            act.coefficients.copy_(torch.tensor([0.5, 0.3, -0.2]) + 0.1 * torch.randn(3))
        for bn in (m for m in model if isinstance(m, nn.BatchNorm2d)):
            for tensor in (bn.weight, bn.bias, bn.running_mean):
                tensor.copy_(torch.randn_like(tensor) * 0.5 + 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    return model


def _zero_diagonals(model: nn.Sequential, fraction: float, seed: int) -> None:
    """Zero a random share of each layer's gazelle channel diagonals (d = 0 kept)."""
    gen = torch.Generator().manual_seed(seed)
    cost_model = get("cost_model", "gazelle")()
    from artemis_core.he.extract import extract_specs

    modules = dict(model.named_modules())
    for spec in extract_specs(model, SHAPE):
        index = cost_model.group_index(spec, PARAMS, "diagonal")
        chosen = index[1:][torch.rand(len(index) - 1, generator=gen) < fraction].reshape(-1)
        with torch.no_grad():
            modules[spec.name].weight.view(-1)[chosen[chosen >= 0]] = 0.0


def _run_sim(program, image: torch.Tensor, params: HEParams = PARAMS):
    backend = get("he_backend", "sim")(params)
    backend.keygen(program.service.rotation_steps)
    outputs = program.run(backend, [backend.encrypt(v) for v in program.service.pack(image)])
    assert backend.ops_by_level == program.op_count_by_level()  # every op at its level
    return program.service.read_logits([backend.decrypt(ct) for ct in outputs]), backend.ops


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.9])
def test_simulated_logits_equal_torch_and_ops_equal_count(fraction):
    model = _model(seed=1)
    _zero_diagonals(model, fraction, seed=2)
    program = compile_model(model, SHAPE, PARAMS, get("cost_model", "gazelle")())
    image = torch.randn(*SHAPE)
    logits, ops = _run_sim(program, image)
    with torch.no_grad():
        expected = copy.deepcopy(model).double()(image[None].double())[0]
    assert torch.allclose(logits, expected, atol=1e-9)
    assert ops == program.op_count()


def test_pruned_diagonals_remove_rotations():
    dense, pruned = _model(seed=3), _model(seed=3)
    _zero_diagonals(pruned, 0.6, seed=4)
    cost_model = get("cost_model", "gazelle")()
    rotations = [compile_model(m, SHAPE, PARAMS, cost_model).op_count().rotations
                 for m in (dense, pruned)]
    assert rotations[1] < rotations[0]


def test_depth_beyond_the_chain_is_refused():
    with pytest.raises(ParamsError, match="needs 5 levels"):
        compile_model(_model(seed=0), SHAPE, HEParams.with_depth(13, 4, allow_insecure=True),
                      get("cost_model", "gazelle")())


@pytest.mark.parametrize("layer, message", [
    (nn.ReLU(), "ReLU"),
    (nn.BatchNorm2d(8), "'2' .BatchNorm2d. is not supported"),  # not after a conv
])
def test_layers_without_a_leveled_form_are_refused(layer, message):
    model = _model(seed=0)
    model[2] = layer
    with pytest.raises(SpecError, match=message):
        compile_model(model, SHAPE, PARAMS, get("cost_model", "gazelle")())


def test_a_vanishing_quadratic_term_is_refused():
    model = _model(seed=0)
    with torch.no_grad():
        model[2].coefficients[0] = 0.0
    with pytest.raises(SpecError, match="too close to 0"):
        compile_model(model, SHAPE, PARAMS, get("cost_model", "gazelle")())


def test_fit_params_gives_the_shortest_secure_chain():
    params = fit_params(_model(seed=0), SHAPE, get("cost_model", "gazelle")(), log_n=14)
    assert params == HEParams.with_depth(14, 5)  # 2 convs, 2 acts, classifier
    assert params.log_q <= 438


@pytest.mark.parametrize("strategy", ["diagonal", "positional", "hybrid", "hunter",
                                      "unstructured", "filter"])
def test_every_strategy_prunes_he_cnn_into_a_smaller_exact_program(strategy):
    model = _model(seed=5)
    dense_ops = compile_model(model, SHAPE, PARAMS, get("cost_model", "gazelle")()).op_count()
    prune_model(model, SHAPE, None, strategy, "1.2x", seed=0,
                config=PruneConfig(reg_epochs=0, log_n=PARAMS.log_n), progress=False)
    program = compile_model(model, SHAPE, PARAMS, get("cost_model", "gazelle")())
    image = torch.randn(*SHAPE, generator=torch.Generator().manual_seed(6))
    logits, ops = _run_sim(program, image)
    with torch.no_grad():
        expected = copy.deepcopy(model).double()(image[None].double())[0]
    assert torch.allclose(logits, expected, atol=1e-9)
    assert ops.rotations < dense_ops.rotations


NARROWING = [  # (widths, strides, classes): the second conv or the classifier narrows
    ([32, 4], [1, 2], 10),
    ([8, 3], [1, 1], 10),
    ([16, 5, 2], [1, 2, 1], 7),
    ([40, 70, 6], [1, 1, 2], 3),
    ([3, 64], [2, 1], 2),
]


@pytest.mark.parametrize("widths, strides, classes", NARROWING)
def test_narrowing_and_widening_chains_are_exact_on_sim(widths, strides, classes):
    model = chain(widths, strides, classes, seed=len(widths) + classes)
    params = HEParams.with_depth(13, 2 * len(widths) + 1, allow_insecure=True)
    program = compile_model(model, SHAPE, params, get("cost_model", "gazelle")())
    image = torch.randn(*SHAPE, generator=torch.Generator().manual_seed(7))
    logits, ops = _run_sim(program, image, params)
    with torch.no_grad():
        expected = copy.deepcopy(model).double()(image[None].double())[0]
    assert torch.allclose(logits, expected, rtol=1e-9, atol=1e-9 * expected.abs().max())
    assert ops == program.op_count()


def reply_reveals_only_logits(slots: np.ndarray, logits: torch.Tensor, tol: float) -> None:
    """Every slot of the reply is zero or a copy of one logit (to ``tol``), and every
    logit is there."""
    values = torch.from_numpy(slots.reshape(-1))
    distance = (values[:, None] - logits[None, :]).abs()
    nonzero = values.abs() > tol
    assert bool((distance[nonzero].min(dim=1).values <= tol).all())
    assert bool((distance.min(dim=0).values <= tol).all())
    assert int(nonzero.sum()) % len(logits) == 0


@pytest.mark.parametrize("cost_model", ["gazelle", "bsgs"])  # pooled, fused classifier
@pytest.mark.parametrize("widths, strides, classes", NARROWING[:3])
def test_reply_holds_only_the_logits_on_sim(widths, strides, classes, cost_model):
    model = chain(widths, strides, classes, seed=3)
    params = HEParams.with_depth(13, 2 * len(widths) + 1, allow_insecure=True)
    program = compile_model(model, SHAPE, params, get("cost_model", cost_model)())
    backend = get("he_backend", "sim")(params)
    backend.keygen(program.service.rotation_steps)
    image = torch.randn(*SHAPE, generator=torch.Generator().manual_seed(8))
    outputs = program.run(backend, [backend.encrypt(v) for v in program.service.pack(image)])
    slots = np.stack([backend.decrypt(ct) for ct in outputs])
    logits = program.service.read_logits(list(slots))
    reply_reveals_only_logits(slots, logits, tol=1e-9)


@pytest.mark.parametrize("kind", [None, "positional", "baby-step"])
def test_the_bsgs_program_is_exact_too_with_its_multiplexed_classifier(kind):
    # Orion's packing interleaves the classes after the strided conv: the pooled
    # classifier sums each class's own lattice of pixels
    cost_model = get("cost_model", "bsgs")()
    model = _model(seed=3)
    if kind is not None:
        from artemis_core.he.extract import extract_specs

        gen = torch.Generator().manual_seed(4)
        modules = dict(model.named_modules())
        for spec in extract_specs(model, SHAPE)[:2]:
            index = cost_model.group_index(spec, PARAMS, kind)
            chosen = index[torch.rand(len(index), generator=gen) < 0.4].reshape(-1)
            with torch.no_grad():
                modules[spec.name].weight.view(-1)[chosen[chosen >= 0]] = 0.0
    program = compile_model(model, SHAPE, PARAMS, cost_model)
    image = torch.randn(SHAPE, dtype=torch.float64)
    logits, ops = _run_sim(program, image)
    with torch.no_grad():
        expected = model.double()(image[None])[0]
    assert (logits - expected).abs().max() < 1e-9
    assert ops == program.op_count()


def test_cube_steps_sum_exactly_a_lattice_or_refuse():
    from artemis_core.deploy.he_program import _cube_steps

    lattice = [y * 16 + x * 2 for y in range(4) for x in range(4)]
    assert _cube_steps(lattice) == (2, 4, 16, 32)
    assert _cube_steps([0, 1, 3]) is None
    assert _cube_steps([0]) == ()


def test_under_bsgs_pool_and_classifier_are_one_layer_as_orion_runs_them():
    """he-lenet's 7×7 multiplexed map cannot be pooled by rotate-and-sum; bsgs fuses the
    pool into the classifier (one linear layer over the conv's output slots, Orion's
    default), which is exact and reads every output pixel once."""
    from artemis_core.deploy.he_program import ConvStep, SumStep, fit_params
    from artemis_core.learning.zoo import build_model

    shape = (1, 28, 28)
    model = build_model("he-lenet", 10, shape, seed=0).eval()
    cost_model = get("cost_model", "bsgs")()
    params = fit_params(model, shape, cost_model, 14)
    program = compile_model(model, shape, params, cost_model)
    assert not any(isinstance(step, SumStep) for step in program.steps)
    classifier = program.steps[-1]
    assert isinstance(classifier, ConvStep) and classifier.plan.spec.kind == "linear"
    image = torch.randn(shape, dtype=torch.float64)
    logits, _ = _run_sim(program, image, params)
    with torch.no_grad():
        expected = copy.deepcopy(model).double()(image[None].double())[0]
    assert (logits - expected).abs().max() < 1e-9 * max(1.0, float(expected.abs().max()))
    # gazelle pools by rotate-and-sum instead (its layout replicates the map)
    gazelle = get("cost_model", "gazelle")()
    pooled = compile_model(model, shape, fit_params(model, shape, gazelle, 14), gazelle)
    assert any(isinstance(step, SumStep) for step in pooled.steps)

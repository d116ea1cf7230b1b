"""The fair-comparison protocol: validation split, λ chosen on validation, equal budgets,
best-effort and matched-sparsity baselines, intervals over seeds."""

from __future__ import annotations

import math

import pytest
import torch
from fake_pipeline import fake_metrics

from artemis_core import ArtemisError, BudgetError
from artemis_core.experiments.report import CI, build_table, interval95
from artemis_core.experiments.results import RunKey, RunRecord
from artemis_core.experiments.selection import choose_lams
from artemis_core.learning.catalog import Split, carve
from artemis_core.pruning.budget import parse_target
from artemis_core.pruning.pipeline import PruneConfig
from artemis_core.registry import get

# --- validation split -------------------------------------------------------------------

@pytest.mark.parametrize("name", ["digits", "synthetic"])
def test_validation_is_carved_from_train_disjoint_and_seeded(name):
    data = get("dataset", name)()
    full = data.load("train").tensors[0]
    train = data.split("train", Split(0.2, seed=3)).tensors[0]
    val = data.split("validation", Split(0.2, seed=3)).tensors[0]
    assert len(train) + len(val) == len(full)
    assert abs(len(val) - 0.2 * len(full)) <= data.num_classes
    rows = {tuple(x.flatten().tolist()) for x in full}
    seen = [tuple(x.flatten().tolist()) for x in torch.cat([train, val])]
    assert set(seen) == rows and len(set(seen)) == len(seen)  # a partition of train
    again = data.split("validation", Split(0.2, seed=3)).tensors[0]
    other = data.split("validation", Split(0.2, seed=4)).tensors[0]
    assert torch.equal(val, again) and not torch.equal(val, other)
    assert torch.equal(data.split("test").tensors[0], data.load("test").tensors[0])


def test_the_validation_split_is_stratified_by_class():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    held = carve(labels, 0.1, seed=0)
    assert torch.bincount(labels[held]).tolist() == [5, 3, 2]


@pytest.mark.parametrize("bad", [0, 1, -0.1, 1.5])
def test_a_validation_fraction_outside_zero_one_is_refused(bad):
    with pytest.raises(ArtemisError, match="validation fraction"):
        Split(bad)


def test_an_unknown_split_names_the_allowed_ones():
    with pytest.raises(ArtemisError, match="train, validation, test"):
        get("dataset", "synthetic")().split("dev")


# --- equal budgets and targets ----------------------------------------------------------

def test_every_strategy_gets_the_same_epochs_after_the_dense_model():
    config = PruneConfig(reg_epochs=7, finetune_epochs=3)
    assert config.phases(regularized=True) == (7, 3)
    assert config.phases(regularized=False) == (0, 10)  # fine-tunes for the whole budget
    assert PruneConfig(lam=0, reg_epochs=7, finetune_epochs=3).phases(True) == (0, 10)


def test_a_sparsity_target_parses_and_a_bad_one_is_refused():
    assert parse_target("90%").sparsity == pytest.approx(0.9)
    with pytest.raises(BudgetError, match="sparsity like 90%"):
        parse_target("120%")


# --- λ chosen on validation -------------------------------------------------------------

def _run(strategy, lam, val, test, seed=0, target="4x", **config):
    metrics = fake_metrics(strategy, target, seed) | {"val_accuracy": val, "accuracy": test}
    return RunRecord(RunKey("m", "d", strategy, target, seed, f"{lam:g}", f"x{lam}"),
                     {"lam": lam, "max_sparsity": 0.95, **config}, metrics)


def test_the_lam_with_the_best_validation_accuracy_is_kept_never_the_test_one():
    runs = [_run("diagonal", 0.5, val=0.90, test=0.99), _run("diagonal", 2, val=0.95, test=0.80)]
    (chosen,) = choose_lams(runs)
    assert chosen.key.lam == "2"
    (row,) = build_table(runs).rows
    assert row["lam"] == 2 and row["accuracy"] == 0.80


def test_lam_is_chosen_within_each_seed_and_setting():
    runs = [_run("diagonal", 1, 0.9, 0.9, seed=0), _run("diagonal", 2, 0.8, 0.8, seed=0),
            _run("diagonal", 1, 0.7, 0.7, seed=1), _run("diagonal", 2, 0.8, 0.8, seed=1),
            _run("diagonal", 1, 0.9, 0.9, seed=0, max_sparsity=0.5)]
    chosen = choose_lams(runs)
    assert [(r.key.seed, r.key.lam, r.config["max_sparsity"]) for r in chosen] == [
        (0, "1", 0.95), (1, "2", 0.95), (0, "1", 0.5)]
    rows = build_table(runs).rows  # the cap differs between runs: its own rows
    assert sorted((row["max_sparsity"], row["runs"], row["lam"]) for row in rows) == [
        (0.5, 1, 1), (0.95, 2, "1, 2")]


# --- intervals and overlap --------------------------------------------------------------

def test_the_95_percent_interval_is_students_t():
    values = torch.tensor([0.9, 0.92, 0.94]).numpy()
    low, high = interval95(values)
    half = 4.302652729911275 * values.std(ddof=1) / math.sqrt(3)  # t(0.975, 2)
    assert (low, high) == pytest.approx((0.92 - half, 0.92 + half))
    assert interval95(values[:1]) is None


def test_a_front_point_whose_interval_overlaps_the_next_strategy_is_flagged():
    close = [_run("diagonal", 1, a, a, seed=s) for s, a in enumerate((0.90, 0.94))]
    close += [_run("hybrid", 1, a, a, seed=s) for s, a in enumerate((0.89, 0.93))]
    rows = {r["strategy"]: r for r in build_table(close).rows}
    assert rows["diagonal"]["pareto"] and rows["diagonal"]["overlaps"] == "hybrid"
    apart = close[:2] + [_run("hybrid", 1, a, a, seed=s) for s, a in enumerate((0.50, 0.51))]
    rows = {r["strategy"]: r for r in build_table(apart).rows}
    assert rows["diagonal"]["overlaps"] == "" and rows["diagonal"][CI][0] > 0.51


# --- Hunter -----------------------------------------------------------------------------

def test_hunter_picks_other_masks_than_diagonal_without_the_regularizer():
    from artemis_core.learning.zoo import build_model
    from artemis_core.pruning.budget import select
    from artemis_core.pruning.groups import collect_groups
    from artemis_core.pruning.pipeline import HESetting
    from artemis_core.pruning.strategy import CostModelGroupStrategy

    class DiagonalNoReg(CostModelGroupStrategy):
        name, kinds, regularized = "diagonal-noreg-like", ("diagonal",), False

    net = build_model("digits-resnet", 10, (1, 8, 8), seed=0)
    setting = HESetting.for_model(net, (1, 8, 8))
    chosen = {}
    for strategy in (get("strategy", "hunter")(), DiagonalNoReg()):
        layers = collect_groups(net, setting.specs, setting.params, setting.cost_model, strategy)
        kinds = {lg.groups.kind for lg in layers}
        chosen[strategy.name] = select(layers, strategy, setting.specs, setting.params,
                                       setting.cost_model, parse_target("2x"))
    assert kinds == {"diagonal"} and get("strategy", "hunter").kinds == (
        "positional", "block", "diagonal")
    hunter, noreg = chosen["hunter"], chosen["diagonal-noreg-like"]
    assert hunter.ops.rotations <= 192 and noreg.ops.rotations <= 192
    assert any(not torch.equal(hunter.masks[k], noreg.masks[k]) for k in noreg.masks)

"""The pruning pipeline end to end on the small synthetic dataset."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from artemis_core import ArtemisError, BudgetError
from artemis_core.cli import main
from artemis_core.learning import checkpoint
from artemis_core.pruning.pipeline import HESetting, PruneConfig, prune_run, train_dense

FAST = PruneConfig(reg_epochs=2, finetune_epochs=2)


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "dense.pt"
    metrics = train_dense(None, "synthetic", seed=0, epochs=3, out=path, progress=False)
    return path, metrics


def test_dense_training_saves_a_reusable_checkpoint(dense):
    path, metrics = dense
    assert metrics["accuracy"] > 0.5
    assert metrics["rotations"] == metrics["dense_rotations"] > 0
    again = train_dense(None, "synthetic", seed=0, epochs=3, out=path, progress=False)
    assert again == metrics  # reused, not retrained


@pytest.mark.parametrize("strategy", ["diagonal", "hunter"])
def test_pruned_model_meets_the_target_and_keeps_pruned_weights_zero(dense, tmp_path, strategy):
    path, dense_metrics = dense
    out = tmp_path / "pruned.pt"
    metrics = prune_run(strategy, "1.5x", path, seed=0, out=out, progress=False, config=FAST)
    assert metrics["rotations"] <= dense_metrics["rotations"] / 1.5
    assert metrics["rotation_reduction"] >= 1.5
    model, saved = checkpoint.load_model(out)
    assert saved.strategy == strategy and saved.masks
    modules = dict(model.named_modules())
    for name, mask in saved.masks.items():
        assert torch.all(modules[name].weight[~mask] == 0), name
    # the reported count is what the cost model says for the saved weights
    setting = HESetting.for_model(model, saved.input_shape)
    assert setting.count_weights(model).rotations == metrics["rotations"]


def test_an_interrupted_prune_run_resumes_to_the_same_result(dense, tmp_path, monkeypatch):
    path, _ = dense
    expected = prune_run("diagonal", "1.5x", path, seed=0, out=tmp_path / "a.pt",
                         progress=False, config=FAST)
    assert not list(tmp_path.glob("*.state"))  # state files are gone after a run

    import artemis_core.pruning.pipeline as pipeline

    real_evaluate, evaluations = pipeline.evaluate, []

    def interrupted(*args, **kwargs):  # masked model (validation, test), then final model
        evaluations.append(1)
        if len(evaluations) == 3:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    with monkeypatch.context() as patch:  # dies after both phases, before saving
        patch.setattr(pipeline, "evaluate", interrupted)
        with pytest.raises(KeyboardInterrupt):
            prune_run("diagonal", "1.5x", path, seed=0, out=tmp_path / "b.pt",
                      progress=False, config=FAST)
    # two gradual steps with an epoch each (the third has none), and the fine-tuning
    assert len(list(tmp_path.glob("b.pt.*.state"))) == 3
    import artemis_core.learning.training as training

    epochs_run = []
    real_epoch = training._epoch
    monkeypatch.setattr(training, "_epoch",
                        lambda *a, **k: epochs_run.append(1) or real_epoch(*a, **k))
    resumed = prune_run("diagonal", "1.5x", path, seed=0, out=tmp_path / "b.pt",
                        progress=False, config=FAST)
    assert epochs_run == []  # both phases were finished: nothing is trained again
    for key in ("accuracy", "rotations", "pmult", "sparsity"):
        assert resumed[key] == expected[key], key


def test_unreachable_target_is_a_clear_error(dense):
    path, _ = dense
    with pytest.raises(BudgetError, match="best it reaches"):
        prune_run("unstructured", "40x", path, seed=0, progress=False,
                  config=PruneConfig(reg_epochs=0, finetune_epochs=0, max_sparsity=0.5))


def test_prune_command_prints_a_summary(dense, tmp_path):
    path, _ = dense
    result = CliRunner().invoke(main, [
        "prune", "--strategy", "positional", "--target", "1.2x", "--checkpoint", str(path),
        "--prune-epochs", "1", "--format", "json", "--out", str(tmp_path / "p.pt")])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output[result.output.index("{"):])
    assert metrics["strategy"] == "positional" and metrics["rotation_reduction"] >= 1.2


def test_prune_command_rejects_unknown_strategy_in_one_line():
    result = CliRunner().invoke(main, ["prune", "--strategy", "nope", "--target", "2x"])
    assert result.exit_code != 0
    assert "unknown strategy 'nope'; known:" in result.output
    assert "Traceback" not in result.output


def test_latency_weighted_penalty_prunes_to_the_target(dense):
    path, dense_metrics = dense
    config = PruneConfig(reg_epochs=1, finetune_epochs=1, group_cost="latency")
    metrics = prune_run("diagonal", "1.5x", path, seed=0, progress=False, config=config)
    assert metrics["rotations"] <= dense_metrics["rotations"] / 1.5


def test_unknown_group_cost_is_refused():
    with pytest.raises(ArtemisError, match="group_cost='seconds'; allowed: latency, rotations"):
        PruneConfig(group_cost="seconds")


def test_prune_command_rejects_a_bad_target_before_training(tmp_path):
    runs = tmp_path / "runs"
    result = CliRunner().invoke(main, ["prune", "--strategy", "diagonal", "--target", "0.5x",
                                       "--runs", str(runs)])
    assert result.exit_code != 0
    assert "target '0.5x' not understood" in result.output
    assert not runs.exists()  # nothing was trained


def test_a_run_under_bsgs_records_its_cost_model_and_both_counts(dense):
    path, _ = dense
    metrics = prune_run("positional", "1.1x", path, seed=0, progress=False, config=FAST,
                        cost_model="bsgs")
    assert metrics["cost_model"] == "bsgs"
    assert metrics["rotation_reduction"] >= 1.1
    by_model = metrics["by_cost_model"]
    assert by_model["bsgs"]["rotations"] == metrics["rotations"]
    assert by_model["gazelle"]["dense_rotations"] > 0  # the same weights under gazelle

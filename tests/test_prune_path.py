"""What the pruning path does with what users give it: layers HE cannot run, targets out
of reach, pruned checkpoints, schedules; all checked before any training."""

from __future__ import annotations

import json
import time

import plain_models
import pytest
from click.testing import CliRunner

from artemis_core.cli import main
from artemis_core.learning import checkpoint
from artemis_core.pruning.budget import parse_target
from artemis_core.pruning.pipeline import PruneConfig, prune_run, schedule_goals, train_dense

FAST = PruneConfig(reg_epochs=2, finetune_epochs=1)


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "dense.pt"
    return path, train_dense(None, "synthetic", seed=0, epochs=3, out=path, progress=False)


def _prune_cli(*args: str):
    return CliRunner().invoke(main, ["prune", "--dataset", "digits", *args])


def _one_line_error(result, message: str) -> None:
    assert result.exit_code != 0
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


@pytest.mark.parametrize("model, message", [
    ("depthwise-cnn", "groups=8"),
    ("maxpool-cnn", "MaxPool2d, which CKKS cannot evaluate exactly"),
])
def test_a_model_he_cannot_run_fails_before_training(monkeypatch, tmp_path, model, message):
    plain_models.install(monkeypatch)
    start = time.perf_counter()
    result = _prune_cli("--model", model, "--strategy", "diagonal", "--target", "2x",
                        "--runs", str(tmp_path))
    _one_line_error(result, message)
    assert time.perf_counter() - start < 10
    assert not list(tmp_path.iterdir())  # no dense model was trained


def test_an_unreachable_target_fails_before_training(tmp_path):
    result = _prune_cli("--strategy", "positional", "--target", "4x", "--runs", str(tmp_path))
    _one_line_error(result, "strategy 'positional' cannot reach target 4x")
    assert not list(tmp_path.iterdir())


def test_re_pruning_keeps_the_masks_and_the_original_dense_reference(dense, tmp_path):
    """Fails if re-pruning undid masks: every weight pruned at 1.5x stays pruned at 1.2x,
    and the rotations stay at most the 1.5x count."""
    path, dense_metrics = dense
    first = tmp_path / "p15.pt"
    strong = prune_run("diagonal", "1.5x", path, seed=0, out=first, progress=False,
                       config=FAST)
    again = prune_run("diagonal", "1.2x", first, seed=0, out=tmp_path / "p12.pt",
                      progress=False, config=FAST)
    assert again["rotations"] <= strong["rotations"]
    assert again["dense_rotations"] == dense_metrics["rotations"]
    assert again["dense_accuracy"] == dense_metrics["accuracy"]
    assert again["pruned_from"] == "diagonal"
    before, after = checkpoint.load(first).masks, checkpoint.load(tmp_path / "p12.pt").masks
    for name, mask in before.items():
        assert not bool((after[name] & ~mask).any()), name  # nothing pruned came back


def test_the_gradual_schedule_meets_the_target_in_steps(dense):
    path, dense_metrics = dense
    config = PruneConfig(reg_epochs=3, finetune_epochs=1, schedule="gradual", steps=3)
    metrics = prune_run("diagonal", "1.5x", path, seed=0, progress=False, config=config)
    assert metrics["rotation_reduction"] >= 1.5 and metrics["schedule"] == "gradual"
    goals = schedule_goals(parse_target("4x"), 400, config)
    counts = [g.rotations_for(400) for g in goals]
    assert counts == sorted(counts, reverse=True) and counts[-1] == 100 and counts[0] < 400
    assert schedule_goals(parse_target("4x"), 400, PruneConfig(schedule="one-shot"))[0].text == "4x"


def test_every_result_stores_the_masked_accuracy_before_fine_tuning(dense, tmp_path):
    path, _ = dense
    result = CliRunner().invoke(main, [
        "prune", "--strategy", "diagonal-noreg", "--target", "1.2x", "--checkpoint", str(path),
        "--prune-epochs", "1", "--format", "json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output[result.output.index("{"):])
    assert 0 <= metrics["masked_accuracy"] <= 1 and 0 <= metrics["masked_val_accuracy"] <= 1
    assert metrics["epochs_after_dense"] == 2  # the same budget as diagonal's 1 + 1


def test_diagonal_noreg_has_diagonals_groups_and_no_penalty():
    from artemis_core.registry import get
    noreg, diagonal = get("strategy", "diagonal-noreg"), get("strategy", "diagonal")
    assert noreg.kinds == diagonal.kinds and diagonal.regularized and not noreg.regularized


def test_unknown_schedule_is_refused():
    from artemis_core import ArtemisError
    with pytest.raises(ArtemisError, match="schedule='cubic'; allowed: one-shot, gradual"):
        PruneConfig(schedule="cubic")

"""``artemis infer``: the command line around encrypted dense-vs-pruned inference."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from artemis_core.cli import main


def test_unknown_model_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["infer", "--model", "nope", "--workdir", str(tmp_path)])
    assert result.exit_code == 1
    assert "unknown model 'nope'" in result.output
    assert "Traceback" not in result.output


def test_a_workdir_that_cannot_be_made_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(main, ["infer", "--workdir", str(blocker / "runs")])
    assert result.exit_code == 1
    assert "cannot create --workdir" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (["--model", "digits-resnet"], "model is a ResNet; supported: Conv2d"),
    (["--log-n", "13"], "not 128-bit secure"),
    (["--log-n", "16"], "SEAL has no 128-bit table above N=2^15 and refuses N=2^16"),
    (["--target", "0.5x"], "target '0.5x' not understood"),
    (["--cost-model", "nope"], "nope"),
    (["--strategy", "nope"], "nope"),
])
def test_bad_models_parameters_and_targets_fail_before_training(
        tmp_path, args, message):
    result = CliRunner().invoke(main, ["infer", *args, "--workdir", str(tmp_path)])
    assert result.exit_code == 1
    assert message in result.output
    assert not list(tmp_path.iterdir())  # nothing was trained


@pytest.mark.slow
def test_json_reports_dense_and_pruned_side_by_side(tmp_path):
    args = ["infer", "--epochs", "3", "--reg-epochs", "1", "--finetune-epochs", "1",
            "--target", "1.3x", "--n", "3", "--workdir", str(tmp_path), "--format", "json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    dense, pruned = payload["dense"], payload["pruned"]
    for run in (dense, pruned):
        stats = run["stats"]
        assert run["images"] == 3
        assert run["agreement"] == 1.0
        assert run["encrypted_accuracy"] == run["plain_accuracy"]
        assert run["max_logit_error"] < 1e-4
        assert run["seconds_per_image"] > stats["server_seconds_per_image"] > 0
        # the latency model prices the server's ops at their levels (calibrated at 2^14)
        assert 0.5 < stats["server_seconds_per_image"] / stats["estimated_server_seconds"] < 2
        # ... and so does the prediction, from the weights alone
        assert run["predicted"]["seconds"] == pytest.approx(stats["estimated_server_seconds"])
        assert stats["levels_used"] == 5
        assert (stats["security"], stats["allow_insecure"]) == ("128-bit", False)
    dense, pruned = dense["stats"], pruned["stats"]
    assert pruned["rotations"] < dense["rotations"]
    assert pruned["rotation_keys"] <= dense["rotation_keys"]
    # the prediction, from the weights alone, counts the rotations the server ran
    assert payload["predicted_rotation_reduction"] == round(
        dense["rotations"] / pruned["rotations"], 3)
    # artemis cost counts what the server ran: the same rotations, keys and key bytes
    dense_checkpoint = next(tmp_path.glob("*-dense.pt"))
    counted = CliRunner().invoke(main, ["cost", "--checkpoint", str(dense_checkpoint),
                                        "--format", "json"])
    total = json.loads(counted.stdout)["total"]
    assert (total["rotations"], total["pmult"], total["keys"], total["key_bytes"]) == (
        dense["rotations"], dense["pmult"], dense["rotation_keys"], dense["rotation_key_bytes"])
    assert dense["rotations"] <= 44 and dense["pmult"] <= 97


@pytest.mark.slow
def test_bsgs_runs_the_whole_network_encrypted_and_records_its_cost_model(tmp_path):
    args = ["infer", "--epochs", "2", "--reg-epochs", "1", "--finetune-epochs", "1",
            "--cost-model", "bsgs", "--strategy", "hybrid", "--target", "1.2x", "--n", "2",
            "--workdir", str(tmp_path), "--format", "json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["cost_model"] == "bsgs" and payload["strategy"] == "hybrid"
    for run in (payload["dense"], payload["pruned"]):
        assert run["agreement"] == 1.0 and run["max_logit_error"] < 1e-4  # ~5e-6 measured
    assert payload["pruned"]["stats"]["rotations"] < payload["dense"]["stats"]["rotations"]

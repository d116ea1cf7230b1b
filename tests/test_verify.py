"""``artemis verify``: layers run on real CKKS, checked against torch and the plan."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from artemis_core.cli import main
from artemis_core.he.extract import extract_specs
from artemis_core.he.params import HEParams
from artemis_core.he.specs import ConvSpec, OpCount
from artemis_core.he.verify import LayerCheck, check_layer
from artemis_core.learning import checkpoint
from artemis_core.learning.zoo import build_model
from artemis_core.registry import get

PARAMS = HEParams.with_depth(13, 1)
GAZELLE = get("cost_model", "gazelle")()


def _zero_diagonals(spec: ConvSpec, weight: torch.Tensor, which: slice) -> torch.Tensor:
    """``weight`` with the channel diagonals ``which`` (a slice of the groups) zeroed."""
    groups = GAZELLE.group_index(spec, PARAMS, "diagonal")[which]
    pruned = weight.clone()
    pruned.view(-1)[groups[groups >= 0]] = 0
    return pruned


def test_check_layer_of_a_pruned_conv():
    spec = ConvSpec("conv", 8, 8, 3, 1, 1, 6, 6, bias=True)
    gen = torch.Generator().manual_seed(1)
    weight = _zero_diagonals(spec, torch.randn(spec.weight_shape, generator=gen), slice(0, None, 2))
    x = torch.randn(8, 6, 6, generator=gen)
    check = check_layer(spec, PARAMS, GAZELLE, x, weight, torch.randn(8, generator=gen))
    dense = GAZELLE.count(spec, PARAMS)
    assert check.ok and check.counts_match
    assert check.executed == GAZELLE.count(spec, PARAMS, weight != 0)
    assert check.predicted.rotations < dense.rotations
    assert 0 < check.max_abs_error < 1e-4
    assert check.key_bytes > 0


def test_a_pruned_conv_runs_measurably_faster_than_its_dense_run():
    # Two different executions: the dense plan (every diagonal) and the pruned one (one
    # diagonal in eight). Thread CPU time, so other load on the machine does not count.
    spec = ConvSpec("conv", 16, 16, 3, 1, 1, 8, 8)
    gen = torch.Generator().manual_seed(2)
    weight = _zero_diagonals(spec, torch.randn(spec.weight_shape, generator=gen), slice(1, None))
    check = check_layer(spec, PARAMS, GAZELLE, torch.randn(16, 8, 8, generator=gen), weight)
    dense = GAZELLE.count(spec, PARAMS)
    assert check.ok and check.dense_counts_match
    assert check.executed.rotations * 2 < dense.rotations
    assert check.executed.pmult * 4 < dense.pmult
    assert check.speedup > 2.0, (check.dense_seconds, check.pruned_seconds)  # ~5-7 measured


def _verify(*args: str):
    return CliRunner().invoke(main, ["verify", "--log-n", "13", *args])


def test_cli_checks_a_model_layer_on_a_test_image():
    result = _verify("--model", "digits-resnet", "--layers", "conv1", "--format", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["input"] == "digits test image 0"
    (layer,) = payload["layers"]
    assert layer["name"] == "conv1" and layer["counts_match"]
    assert layer["executed"] == layer["predicted"]
    assert layer["keys"] == len(layer["predicted"]["rotation_steps"])
    assert layer["speedup"] == 1.0  # an untrained model has no zero weights


def test_cli_runs_every_he_cnn_layer_and_the_classifier_under_bsgs():
    result = _verify("--model", "he-cnn", "--cost-model", "bsgs", "--layers", "0,3,8",
                     "--format", "json")
    assert result.exit_code == 0, result.output
    layers = json.loads(result.stdout)["layers"]
    assert [layer["name"] for layer in layers] == ["0", "3", "8"]
    assert all(layer["counts_match"] and layer["executed"] == layer["predicted"]
               for layer in layers)


def test_cli_reports_the_pruned_speedup_of_a_checkpoint(tmp_path):
    model = build_model("digits-resnet", 10, (1, 8, 8), seed=0)
    (spec,) = [s for s in extract_specs(model, (1, 8, 8)) if s.name == "layer1.0.conv1"]
    conv = model.get_submodule(spec.name)
    with torch.no_grad():
        # zero every diagonal d >= 4: only the rotations of d = 1, 2, 3 remain
        conv.weight.copy_(_zero_diagonals(spec, conv.weight, slice(4, None)))
    path = tmp_path / "pruned.pt"
    checkpoint.save(checkpoint.Checkpoint.from_model(
        model, model="digits-resnet", dataset="digits", num_classes=10,
        input_shape=(1, 8, 8)), path)
    result = _verify("--checkpoint", str(path), "--layers", spec.name, "--format", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["model"] == "digits-resnet"  # named by the checkpoint, not --model
    (layer,) = payload["layers"]
    dense = GAZELLE.count(spec, PARAMS)
    assert layer["predicted"]["output_rotations"] == 3 < dense.output_rotations
    assert layer["executed"] == layer["predicted"]
    assert layer["dense_seconds"] > 0 and layer["pruned_seconds"] > 0


@pytest.mark.parametrize("args, message", [
    (["--model", "digits-resnet", "--layers", "nope"], "unknown layers ['nope']; known: conv1"),
    ([], "give --model NAME or --checkpoint FILE"),
    (["--model", "no-such-model"], "unknown model 'no-such-model'"),
])
def test_bad_arguments_are_one_line_errors(args, message):
    result = _verify(*args)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_a_layer_whose_ops_differ_from_the_plan_fails():
    check = LayerCheck("conv", 1e-7, 1e-3, OpCount(pmult=2), OpCount(pmult=3), True,
                       0.2, 0.1, 0)
    assert not check.counts_match and not check.ok
    assert check.speedup == 2.0
    assert not LayerCheck("conv", 1.0, 1e-3, OpCount(), OpCount(), True, 0.2, 0.1, 0).ok

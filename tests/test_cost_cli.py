"""``artemis cost``: per-layer table, JSON totals, checkpoints and one-line errors."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from artemis_core import ModelInfo, hookimpl, registry
from artemis_core.cli import main
from artemis_core.deploy.he_program import compile_model, fit_params
from artemis_core.learning.checkpoint import Checkpoint, save
from artemis_core.learning.zoo import build_model


def invoke(*args: str):
    return CliRunner().invoke(main, ["cost", *args])


def cost_json(*args: str) -> dict:
    result = invoke(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_lists_every_layer_and_the_total():
    report = cost_json("--model", "digits-resnet")
    layers = report["layers"]
    assert [layer["name"] for layer in layers][:2] == ["conv1", "layer1.0.conv1"]
    assert layers[-1]["kind"] == "linear"
    first = layers[0]
    assert (first["c_in"], first["height"], first["width"], first["gap"]) == (1, 8, 8, 1)
    assert first["rotations"] == first["input_rotations"] + first["output_rotations"]
    assert first["keys"] == len(first["rotation_steps"])
    total = report["total"]
    assert total["rotations"] == sum(layer["rotations"] for layer in layers)
    assert total["pmult"] == sum(layer["pmult"] for layer in layers)
    steps = set().union(*(layer["rotation_steps"] for layer in layers))
    assert total["keys"] == len(steps)
    assert total["key_bytes"] > 0 and report["log_n"] == 14


def test_an_he_friendly_model_is_counted_as_its_encrypted_program():
    report = cost_json("--model", "he-cnn")
    model = build_model("he-cnn", 10, (1, 8, 8), seed=0)
    cost_model = registry.get("cost_model", "gazelle")()
    params = fit_params(model, (1, 8, 8), cost_model, 14)
    ops = compile_model(model, (1, 8, 8), params, cost_model).op_count()
    assert report["counted"] == "program"
    assert report["coeff_modulus_bits"] == list(params.coeff_modulus_bits)
    assert [layer["kind"] for layer in report["layers"]] == [
        "conv", "act", "conv", "act", "pool", "conv"]
    total = report["total"]
    assert (total["rotations"], total["pmult"], total["cmult"], total["keys"]) == (
        ops.rotations, ops.pmult, ops.cmult, ops.keys)
    assert total["key_bytes"] == params.rotation_keys_bytes(ops.keys)
    assert (total["rotations"], total["pmult"]) == (42, 97)  # dense he-cnn on digits


def test_bsgs_lists_baby_giant_and_hybrid_rotations_per_layer_and_in_the_total():
    report = cost_json("--model", "resnet20", "--cost-model", "bsgs")
    assert report["cost_model"] == "bsgs" and report["log_n"] == 16
    layers, total = report["layers"], report["total"]
    for layer in layers:
        assert layer["baby_rotations"] == layer["input_rotations"]
        assert layer["giant_rotations"] == layer["output_rotations"]
        assert layer["rotations"] == (layer["baby_rotations"] + layer["giant_rotations"]
                                      + layer["hybrid_rotations"])
        assert layer["rotations_best_n1"] <= layer["rotations"]
        assert layer["keys"] == len(layer["rotation_steps"])
    for key in ("rotations", "baby_rotations", "giant_rotations", "pmult"):
        assert total[key] == sum(layer[key] for layer in layers)
    assert total["keys"] == len(set().union(*(layer["rotation_steps"] for layer in layers)))
    assert layers[0]["embedding"] == "hybrid" and layers[0]["n1"] == [1024]


def test_strided_layers_report_their_gap():
    layers = cost_json("--model", "resnet20")["layers"]
    gaps = {layer["name"]: (layer["height"], layer["gap"]) for layer in layers}
    assert gaps["layer2.0.conv1"] == (32, 1)
    assert gaps["layer2.0.conv2"] == (16, 2)
    assert gaps["layer3.0.conv2"] == (8, 4)


def test_table_has_a_total_row():
    result = invoke("--model", "digits-resnet", "--format", "github")
    assert result.exit_code == 0
    assert "| total" in result.stdout and "layer1.0.conv1" in result.stdout


def test_log_n_changes_the_counts():
    big = cost_json("--model", "digits-resnet", "--log-n", "16")["total"]
    small = cost_json("--model", "digits-resnet", "--log-n", "13")["total"]
    assert big != small


def test_checkpoint_masks_remove_rotations(tmp_path):
    model = build_model("digits-resnet", 10, (1, 8, 8), seed=0)
    with torch.no_grad():
        model.layer1[0].conv1.weight[:, :, 0, 0] = 0  # one kernel tap of every channel
    path = tmp_path / "pruned.pt"
    save(Checkpoint.from_model(model, model="digits-resnet", dataset="digits", num_classes=10,
                               input_shape=(1, 8, 8)), path)
    pruned = cost_json("--checkpoint", str(path))
    dense = cost_json("--model", "digits-resnet")
    by_name = {layer["name"]: layer for layer in pruned["layers"]}
    assert by_name["layer1.0.conv1"]["input_rotations"] == 7
    assert pruned["total"]["rotations"] == dense["total"]["rotations"] - 1


def test_an_input_shape_that_does_not_fit_the_checkpoint_is_a_one_line_error(tmp_path):
    model = build_model("digits-resnet", 10, (1, 8, 8), seed=0)
    path = tmp_path / "dense.pt"
    save(Checkpoint.from_model(model, model="digits-resnet", dataset="digits", num_classes=10,
                               input_shape=(1, 8, 8)), path)
    assert_one_line_error(invoke("--checkpoint", str(path), "--input", "3x8x8"),
                          "input shape (3, 8, 8) does not fit the model")


class _UnsupportedModels:
    @hookimpl
    def register_models(self, register):
        register(ModelInfo("dilated-test", lambda n, s: nn.Conv2d(s[0], n, 3, padding=2,
                                                                 dilation=2), (1, 8, 8)))
        register(ModelInfo("grouped-test", lambda n, s: nn.Conv2d(s[0], n, 3, padding=1,
                                                                 groups=2), (2, 8, 8)))


@pytest.fixture
def unsupported_models(monkeypatch):
    """Temporary model plugins with unsupported convs, in a registry of their own."""
    pm, sources = registry.build_plugin_manager()
    pm.register(_UnsupportedModels(), name="unsupported-test")
    monkeypatch.setattr(registry, "get_registry",
                        lambda: registry.build_registry(pm, sources))


@pytest.mark.parametrize("args, message", [
    (("--model", "resnet20", "--input", "3x31x31"), "odd 31x31"),
    (("--model", "resnet20", "--log-n", "12"), "not 128-bit secure"),
    (("--model", "resnet20", "--input", "3x128x128", "--log-n", "13"), "does not fit"),
    (("--model", "nope"), "unknown model 'nope'; known: "),
    (("--model", "resnet20", "--cost-model", "nope"), "unknown cost model 'nope'"),
    (("--checkpoint", "missing.pt"), "does not exist"),
])
def test_bad_input_is_a_one_line_error(args, message):
    assert_one_line_error(invoke(*args), message)


def test_a_ring_outside_the_security_table_is_a_usage_error():
    result = invoke("--model", "resnet20", "--log-n", "20")
    assert result.exit_code == 2
    assert "'--log-n': 20 is not in the range 10<=x<=17" in result.output
    assert "Traceback" not in result.output


def test_a_non_positive_class_count_is_a_usage_error():
    result = invoke("--model", "resnet20", "--num-classes", "-1")
    assert result.exit_code == 2
    assert "'--num-classes': -1 is not in the range x>=1" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("model, message", [
    ("dilated-test", "dilation=(2, 2)"), ("grouped-test", "groups=2"),
])
def test_unsupported_layers_are_a_one_line_error(unsupported_models, model, message):
    assert_one_line_error(invoke("--model", model), message)


def assert_one_line_error(result, message):
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_help_ends_with_an_example_that_works():
    result = CliRunner().invoke(main, ["cost", "--help"])
    assert "artemis cost --model digits-resnet" in result.output

"""The engine plugin kind and the ``artemis`` engine (our Pyfhel program behind it)."""

from __future__ import annotations

import pytest
import torch

from artemis_core import Engine, hookimpl
from artemis_core.deploy.engine import CompiledModel, run_engine
from artemis_core.errors import ParamsError, SpecError
from artemis_core.learning.zoo import build_model
from artemis_core.registry import build_plugin_manager, build_registry, get


class Echo(CompiledModel):
    """Returns the image's first pixels as logits: 'encryption' that changes nothing."""

    def infer(self, image):
        return image.flatten()[:3]

    def stats(self):
        return {"rotation_keys": 0, "rotation_key_bytes": 0, "levels": 0}


class EchoEngine(Engine):
    name = "echo"

    def check(self, model, input_shape):
        if input_shape[0] != 1:
            raise SpecError(f"echo takes one channel, not {input_shape[0]}")

    def compile(self, model, input_shape, calibration):
        return Echo()


class EchoPlugin:
    @hookimpl
    def register_engines(self, register):
        register(EchoEngine)


def test_a_plugin_registers_an_engine():
    pm, sources = build_plugin_manager()
    pm.register(EchoPlugin(), name="echo-plugin")
    assert build_registry(pm, sources).get("engine", "echo") is EchoEngine


def test_run_engine_compares_with_the_plaintext_model():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Identity())
    images = torch.tensor([[[[1.0, 0.0, 0.0]]], [[[0.0, 0.0, 2.0]]]])
    labels = torch.tensor([0, 1])
    (run,) = run_engine(EchoEngine(), [("m", model)], images, labels, images, progress=False)
    assert (run.images, run.agreement, run.max_logit_error) == (2, 1.0, 0.0)
    assert (run.plain_accuracy, run.encrypted_accuracy) == (0.5, 0.5)
    assert run.seconds_per_image >= 0 and run.threads >= 1


def test_every_model_is_checked_before_any_is_compiled():
    images = torch.zeros(1, 2, 1, 3)
    with pytest.raises(SpecError, match="one channel, not 2"):
        run_engine(EchoEngine(), [("m", torch.nn.Identity())], images, torch.zeros(1),
                   images, progress=False)


def test_artemis_engine_refuses_unknown_config_keys():
    with pytest.raises(ParamsError, match=r"unknown keys \['LogN'\]"):
        get("engine", "artemis")({"LogN": 13})


def test_artemis_engine_runs_he_cnn_encrypted():
    model = build_model("he-cnn", 10, (1, 8, 8), seed=0).eval()
    images = torch.rand(1, 1, 8, 8)
    (run,) = run_engine(get("engine", "artemis")(), [("dense", model)], images,
                        torch.zeros(1, dtype=torch.long), images, progress=False)
    assert run.agreement == 1.0
    assert run.max_logit_error < 1e-4  # ~5e-6 measured
    assert run.stats["levels_used"] == 5
    assert run.stats["rotation_keys"] > 0


def test_the_prediction_prices_the_whole_program_or_says_it_counted_layers():
    from artemis_core.cli.engine_infer import predict
    from artemis_core.deploy.he_program import compile_model, fit_params
    from artemis_core.he.latency import estimate_seconds, load_calibration

    dense = build_model("he-cnn", 10, (1, 8, 8), seed=0).eval()
    pruned = build_model("he-cnn", 10, (1, 8, 8), seed=0).eval()
    with torch.no_grad():
        pruned[0].weight[:, :, 0] = 0.0  # the first conv loses its top row of taps
    first, second = predict("bsgs", [dense, pruned], (1, 8, 8), 13)
    bsgs = get("cost_model", "bsgs")()
    params = fit_params(dense, (1, 8, 8), bsgs, 13, allow_insecure=True)  # counted only
    program = compile_model(dense, (1, 8, 8), params, bsgs)
    assert first["counted"] == second["counted"] == "program"
    assert first["seconds"] == pytest.approx(
        estimate_seconds(program.op_count_by_level(), load_calibration()))
    assert first["pmult_per_layer"]["8"] == 265  # the fused classifier, as Orion runs it
    assert second["pmult_per_layer"]["0"] < first["pmult_per_layer"]["0"]
    assert second["seconds"] < first["seconds"]
    steps = first["seconds_per_step"]  # every step of the program, in order
    assert list(steps) == [step.name for step in program.steps]
    assert sum(steps.values()) == pytest.approx(first["seconds"])
    assert second["seconds_per_step"]["0"] < steps["0"]  # only the pruned conv got cheaper
    assert second["seconds_per_step"]["8"] == pytest.approx(steps["8"])
    relu = predict("bsgs", [build_model("digits-resnet", 10, (1, 8, 8), seed=0)], (1, 8, 8), 13)
    assert relu[0]["counted"] == "layers" and relu[0]["seconds"] > 0
    assert sum(relu[0]["seconds_per_step"].values()) == pytest.approx(relu[0]["seconds"])

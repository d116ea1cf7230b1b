"""The ``orion`` engine: torch models converted to Orion's modules and run encrypted.

Orion keeps one scheme per process, so every encrypted test here shares one engine with
one explicit N = 2^13 chain (128-bit secure: 38 + 5·23 + 60 = 213 ≤ 218 bits).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from artemis_core.errors import ParamsError, SpecError
from artemis_core.learning.polyact import PolyAct
from artemis_core.learning.zoo import build_model
from artemis_core.registry import get, get_registry

orion = pytest.importorskip("orion")

from artemis_core.deploy.engine import run_engine  # noqa: E402
from artemis_core.deploy.orion_net import convert, depth  # noqa: E402

CKKS = {"LogN": 13, "LogQ": [38, 23, 23, 23, 23, 23], "LogP": [60], "LogScale": 23}


def randomise_batch_norms(model: nn.Module) -> nn.Module:
    """Non-trivial running statistics, as a trained model has."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.rand(module.num_features, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def engine():
    return get("engine", "orion")({"ckks_params": CKKS})


@pytest.mark.parametrize("name, shape", [
    ("he-cnn", (1, 8, 8)),          # PolyAct folded, pool + linear fused
    ("digits-resnet", (1, 8, 8)),   # residual adds, 1×1 shortcut, ReLU
    ("small-cnn", (3, 8, 8)),
])
def test_conversion_computes_what_the_torch_model_computes(name, shape):
    model = randomise_batch_norms(build_model(name, 10, shape, seed=0))
    x = torch.randn(4, *shape)
    converted = convert(model, shape)
    with torch.no_grad():
        assert torch.allclose(converted.net(x), model(x), atol=1e-5)


def test_polyact_feeding_a_residual_add_stays_orions_polynomial():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.act = nn.Conv2d(2, 2, 3, padding=1), PolyAct(0.3, 0.5, 0.1)
            self.pool, self.fc = nn.AvgPool2d(2), nn.Linear(2 * 4 * 4, 3)

        def forward(self, x):
            y = self.act(self.conv(x)) + x
            return self.fc(torch.flatten(self.pool(y), 1))

    model = Block().eval()
    converted = convert(model, (2, 8, 8))
    x = torch.randn(3, 2, 8, 8)
    with torch.no_grad():
        assert torch.allclose(converted.net(x), model(x), atol=1e-5)
    assert isinstance(converted.net.body.act, orion.nn.Activation)
    assert depth(converted) == 1 + 2 + 1 + 1  # conv, degree-2 polynomial, pool, linear


def test_he_cnn_uses_one_level_per_layer():
    model = build_model("he-cnn", 10, (1, 8, 8), seed=0)
    assert depth(convert(model, (1, 8, 8))) == 5  # conv, act, conv, act, pool+linear
    unfused = convert(model, (1, 8, 8), fuse_classifier=False)
    assert depth(unfused) == 6
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(unfused.net(x), model.eval()(x), atol=1e-5)


def test_the_classifier_is_fused_unless_the_config_says_not():
    assert get("engine", "orion")({"log_n": 14}).fuse_classifier
    assert not get("engine", "orion")({"log_n": 14, "fuse_classifier": False}).fuse_classifier


def test_an_unsupported_layer_is_named_before_any_key_is_made():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(64, 3))
    fresh = get("engine", "orion")({"ckks_params": CKKS})
    with pytest.raises(SpecError, match=r"layer '1' \(MaxPool2d\) is not supported"):
        fresh.compile(model, (1, 8, 8), torch.zeros(2, 1, 8, 8))
    assert fresh.scheme is None


def test_an_unsupported_function_is_named():
    class Gate(nn.Module):
        def forward(self, x):
            return torch.sigmoid(x)

    with pytest.raises(SpecError, match="sigmoid"):
        convert(Gate(), (1, 4, 4))


@pytest.mark.parametrize("config, message", [
    ({"ckks_params": {**CKKS, "LogQ": [60] * 4}}, "not 128-bit secure"),
    ({"ckks_params": {**CKKS, "LogN": 9}}, "LogN=9 unsupported"),
    ({"cpu": 2}, "unknown keys ['cpu']"),
    ({"log_n": 13, "allow_insecure": False, "ckks_params": None}, None),
])
def test_configs_are_checked_before_anything_runs(config, message):
    if message is None:
        get("engine", "orion")(config)
        return
    with pytest.raises(ParamsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        get("engine", "orion")(config)


def test_a_network_deeper_than_a_secure_chain_is_refused_at_check():
    model = build_model("small-cnn", 10, (3, 8, 8), seed=0)  # ReLUs: ~50 levels
    with pytest.raises(ParamsError, match="levels"):
        get("engine", "orion")({"log_n": 13}).check(model, (3, 8, 8))


BOOTSTRAPPED_RUN = """
import json, torch
from torch import nn
from artemis_core.registry import get
torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                      nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10)).eval()
config = {"ckks_params": {"LogN": 13, "LogQ": [55] + [40] * 20, "LogP": [61, 61],
                          "LogScale": 40},
          "boot_params": {"LogP": [61] * 6}, "allow_insecure": True}
data = get("dataset", "digits")()
image = data.load("test").tensors[0][0]
compiled = get("engine", "orion")(config).compile(model, (1, 8, 8),
                                                  data.load("train").tensors[0][:64])
logits = compiled.infer(image)
with torch.no_grad():
    error = (logits - model(image.unsqueeze(0)).flatten()).abs().max().item()
print(json.dumps({"bootstraps": compiled.stats()["bootstraps"], "error": error,
                  "scale": model(image.unsqueeze(0)).abs().max().item()}))
"""


def test_a_relu_network_deeper_than_its_chain_runs_bootstrapped():
    """Two ReLUs (about 15 levels each) on a 20-level chain: Orion places a bootstrap
    and the encrypted logits match the torch model's. Its own process (one Orion scheme
    per process); N = 2^13 with bootstrapping's chain is insecure, hence allow_insecure."""
    result = subprocess.run([sys.executable, "-c", BOOTSTRAPPED_RUN], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    run = json.loads(result.stdout.strip().splitlines()[-1])
    assert run["bootstraps"] >= 1
    assert run["error"] < 1e-3 * max(run["scale"], 1.0)  # measured 1.6e-5


def test_default_chain_is_fitted_to_the_depth_and_secure():
    from artemis_plugins.engines.orion import fitted_ckks_params

    params = fitted_ckks_params(13, 5)
    assert len(params["LogQ"]) == 6
    assert sum(params["LogQ"]) + sum(params["LogP"]) <= 218
    assert fitted_ckks_params(14, 5)["LogScale"] == 40


def test_engines_are_registered_plugins():
    assert {"artemis", "orion"} <= set(get_registry().names("engine"))


def test_dense_and_pruned_he_cnn_run_encrypted(engine):
    torch.manual_seed(0)
    dense = randomise_batch_norms(build_model("he-cnn", 10, (1, 8, 8), seed=0))
    pruned = randomise_batch_norms(build_model("he-cnn", 10, (1, 8, 8), seed=0))
    with torch.no_grad():  # the first conv keeps its middle column of taps only
        pruned[0].weight[..., 0::2] = 0
    images = torch.rand(3, 1, 8, 8)
    runs = run_engine(engine, [("dense", dense), ("pruned", pruned)], images,
                      torch.zeros(3, dtype=torch.long), torch.rand(16, 1, 8, 8),
                      progress=False)
    for run in runs:
        assert run.agreement == 1.0
        assert run.max_logit_error < 1e-2  # Orion at 2^13: ~4e-3 measured
        assert run.stats["levels_used"] == 5
        assert run.stats["bootstraps"] == 0
        assert run.stats["rotation_key_bytes"] > 0
    dense_layers, pruned_layers = runs[0].stats["layers"], runs[1].stats["layers"]
    assert pruned_layers["3"] == dense_layers["3"]
    assert pruned_layers["0"]["diagonals"] < dense_layers["0"]["diagonals"]
    assert runs[1].stats["rotation_keys"] <= runs[0].stats["rotation_keys"]


def test_pointwise_conv_diagonals_are_its_channel_offsets(engine):
    """A 1×1 conv on C channels of H×W pixels is kron(W, I_HW): its generalized diagonals
    are the channel offsets (i - o) mod C that hold a non-zero weight."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(8, 8, 1, bias=False), nn.Flatten(), nn.Linear(128, 3))
    keep = torch.tensor([0, 3, 5])
    with torch.no_grad():
        offsets = (torch.arange(8)[None, :] - torch.arange(8)[:, None]) % 8
        model[0].weight.mul_(torch.isin(offsets, keep)[:, :, None, None])
    compiled = engine.compile(model.eval(), (8, 4, 4), torch.rand(8, 8, 4, 4))
    assert compiled.stats()["layers"]["0"]["diagonals"] == len(keep)
    x = torch.rand(8, 4, 4)
    assert torch.allclose(compiled.infer(x), model(x[None])[0], atol=1e-2)


@pytest.mark.skipif("bsgs" not in get_registry().names("cost_model"),
                    reason="the bsgs cost model is not registered")
def test_orion_diagonals_equal_bsgs_pmults_for_a_pruned_model(engine):
    """Every transform Orion builds, the fused pool-and-classifier included, has as many
    diagonals as the bsgs program's PMults for that layer (pruned conv and classifier)."""
    from artemis_core.deploy.he_program import ConvStep, compile_model
    from artemis_core.he.params import HEParams

    model = randomise_batch_norms(build_model("he-cnn", 10, (1, 8, 8), seed=0))
    with torch.no_grad():
        offsets = (torch.arange(8)[None, :] - torch.arange(16)[:, None]) % 8
        model[3].weight.mul_((offsets < 3)[:, :, None, None])
        model[8].weight[:, :5] = 0.0  # the classifier reads 11 of 16 channels
    compiled = engine.compile(model, (1, 8, 8), torch.rand(16, 1, 8, 8))
    bsgs, params = get("cost_model", "bsgs")(), HEParams(13, (38, 23, 23, 23, 23, 23, 60), 23)
    program = compile_model(model, (1, 8, 8), params, bsgs)
    layers = compiled.stats()["layers"]
    counted = {s.name: s.op_count().pmult for s in program.steps if isinstance(s, ConvStep)}
    assert counted == {name: layer["diagonals"] for name, layer in layers.items()}
    assert counted["8"] < 265  # the dense fused classifier's 256 + 9 diagonals


def test_infer_engine_orion_prints_dense_and_pruned_rows(tmp_path):
    """The command end to end, in a process of its own (one Orion scheme per process)."""
    args = [sys.executable, "-m", "artemis_core.cli", "infer", "--engine", "orion",
            "--log-n", "13", "--epochs", "2", "--reg-epochs", "0", "--finetune-epochs", "1",
            "--target", "1.3x", "--n", "3", "--workdir", str(tmp_path), "--format", "json"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600,
                            env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    import json

    payload = json.loads(result.stdout)
    assert payload["engine"] == "orion"
    for key in ("dense", "pruned"):
        run = payload[key]
        assert run["images"] == 3
        assert run["agreement"] == 1.0
        assert run["stats"]["diagonals"] > 0
        assert run["predicted"]["pmult"] > 0
    assert payload["pruned"]["stats"]["diagonals"] < payload["dense"]["stats"]["diagonals"]


def test_orion_calibration_prices_transforms_by_their_size(engine):
    """Lattigo timed through Orion's bindings, on the engine's own scheme."""
    from artemis_plugins.engines.orion_calibrate import measure_orion_calibration

    cal = measure_orion_calibration(engine.ckks, repeats=1, sizes=(1, 8, 32))
    assert cal.engine == "orion" and cal.log_n == 13
    assert sorted(cal.transform) == [1, 2, 3, 4, 5]  # every level down to 1
    assert cal.rotation_key_bytes > 0 and cal.price("rotation", 5) > cal.price("add", 5)
    small, large = cal.price_transform(5, 1, 0, 1), cal.price_transform(5, 32, 5, 7)
    assert 0 < small < large


def test_primitive_timing_leaves_its_ciphertext_at_its_level(engine):
    """Orion's RescaleNew rescales its input too; transforms are then timed on the
    ciphertext the primitives were timed on, so it must still be at its level."""
    from artemis_plugins.engines.orion import ORION_DEFAULTS, _scheme
    from artemis_plugins.engines.orion_calibrate import _time_primitives

    from artemis_core.deploy.orion_net import import_orion

    scheme = _scheme(import_orion(), {"ckks_params": engine.ckks, "orion": ORION_DEFAULTS})
    backend, slots = scheme.backend, scheme.params.get_slots()
    ciphertext, timed = _time_primitives(backend, 3, 2 ** CKKS["LogScale"], slots, 3, False)
    assert backend.GetCiphertextLevel(ciphertext) == 3
    assert timed["rescale"] > 0


def test_transform_fit_recovers_known_terms():
    from artemis_plugins.engines.orion_calibrate import fit_transform, transform_terms

    rows = [transform_terms(d, 4096) for d in ([0], [0, 1], [0, 64, 128], list(range(16)),
                                               list(range(0, 512, 8)), [1, 5, 77, 900])]
    seconds = [0.02 + 1e-4 * d + 2e-3 * b + 4e-3 * g for d, b, g in rows]
    seconds[2] *= 3  # one timing hit by a garbage collection
    fitted = fit_transform(rows, seconds)
    assert fitted == pytest.approx({"transform": 0.02, "diagonal": 1e-4, "baby": 2e-3,
                                    "giant": 4e-3}, rel=1e-6)

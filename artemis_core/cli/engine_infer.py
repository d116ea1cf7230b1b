"""``artemis infer --engine NAME``: dense and pruned models measured on an engine, beside
what the engine's cost model predicted for them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from torch import nn

from ..deploy.engine import Engine, EngineRun, run_engine
from ..deploy.he_program import ConvStep, HEProgram, compile_model, fit_params
from ..errors import ArtemisError, ParamsError, SpecError
from ..he.latency import COUNTING_LEVEL, DEFAULT_ENGINE, load_calibration
from ..he.specs import OpCount
from ..io import render
from ..learning.zoo import build_model
from ..pruning.budget import parse_target
from ..pruning.pipeline import HESetting, PruneConfig, prune_run, train_dense
from ..registry import get, get_registry
from .options import choose_model

MEASURED_COLUMNS = ("model", "images", "plain_acc", "encrypted_acc", "agreement",
                    "max_logit_err", "s_per_image", "cpu_s_per_image", "threads", "speedup",
                    "cpu_speedup")
PREDICTED_COLUMNS = ("pred_s_per_image", "pred_rot_reduction", "pred_latency_reduction",
                     "speedup_vs_pred")
#: training images Orion-like engines fit their activation ranges on
CALIBRATION_IMAGES = 256
MB = 1e6


def _rounded(key: str, digits: int = 3):
    return lambda stats, dense: (None if stats.get(key) is None
                                 else round(stats[key], digits))


def _megabytes(*keys: str):
    return lambda stats, dense: round(sum(stats.get(k, 0) for k in keys) / MB, 1)


#: every engine-specific column: its cell from a run's stats and the dense run's stats
#: (an engine's ``columns`` picks which it shows)
STAT_COLUMNS = {
    "server_s": _rounded("server_seconds_per_image"),
    "est_server_s": _rounded("estimated_server_seconds"),
    "rotations": lambda stats, dense: stats.get("rotations", "-"),
    "diagonals": lambda stats, dense: stats.get("diagonals", "-"),
    "keys": lambda stats, dense: stats.get("rotation_keys", "-"),
    "key_MB": _megabytes("rotation_key_bytes"),
    "sent_MB": _megabytes("evaluation_key_bytes", "query_bytes"),
    "bootstraps": lambda stats, dense: stats.get("bootstraps", "-"),
    "levels": lambda stats, dense: f"{stats.get('levels_used', '-')}/"
                                   f"{stats.get('levels', '-')}",
    "security": lambda stats, dense: stats["security"]
    + (" (--allow-insecure)" if stats["allow_insecure"] else ""),
}


def columns(engine: Engine) -> tuple[str, ...]:
    """The table's columns for ``engine``: measured, its own, predicted."""
    unknown = [c for c in engine.columns if c not in STAT_COLUMNS]
    if unknown:
        raise ArtemisError(f"engine {engine.name!r} asks for unknown columns {unknown}; "
                           f"known: {sorted(STAT_COLUMNS)}")
    return MEASURED_COLUMNS + tuple(engine.columns) + PREDICTED_COLUMNS


def read_config(path: Path | None) -> dict[str, Any]:
    """An engine's settings from a YAML (or JSON) file; ``{}`` without one."""
    if path is None:
        return {}
    text = path.read_text(encoding="utf-8")
    try:
        import yaml
    except ImportError:  # JSON is YAML too; read it without PyYAML
        loader = json.loads
    else:
        loader = yaml.safe_load
    try:
        config = loader(text)
    except Exception as exc:
        raise ArtemisError(f"--engine-config {path}: not YAML/JSON: "
                           f"{str(exc).splitlines()[0]}") from exc
    if not isinstance(config, dict):
        raise ArtemisError(f"--engine-config {path}: expected a mapping of settings, got "
                           f"{type(config).__name__}")
    return config


def pruning_cost_model(engine: Engine, chosen: str | None) -> str:
    """The cost model to prune for ``engine``: ``chosen``, else its own when registered."""
    if chosen is not None:
        get("cost_model", chosen)  # unknown names fail here, before training
        return chosen
    wanted = engine.cost_model
    if wanted in get_registry().names("cost_model"):
        return wanted
    click.echo(f"note: cost model {wanted!r} of engine {engine.name!r} is not registered; "
               "pruning and predicting under 'gazelle'", err=True)
    return "gazelle"


def run_on_engine(engine: Engine, directory: Path, checkpoint: Path | None, model_name: str,
                  dataset: str, count: int, strategy: str, target: str,
                  cost_model: str | None, epochs: int, config: PruneConfig, log_n: int,
                  seed: int, fmt: str) -> None:
    """Train (or load) the dense model, prune it with ``strategy`` under ``cost_model``
    (default: the engine's), run both on ``engine`` in one interleaved loop and print
    the table (or JSON)."""
    parse_target(target)
    cost_model = pruning_cost_model(engine, cost_model)
    dense_path = checkpoint
    if dense_path is None:
        data = get("dataset", dataset)()
        engine.check(build_model(model_name, data.num_classes, data.input_shape),
                     data.input_shape)  # an unsupported layer fails before training
        dense_path = directory / f"{model_name}-{dataset}-s{seed}-dense.pt"
        train_dense(model_name, dataset, seed, epochs, dense_path)
    chosen = choose_model(None, dense_path)
    dense, info = chosen.model, chosen.checkpoint
    engine.check(dense, info.input_shape)
    pruned_path = directory / (f"{dense_path.stem}-{strategy}-{cost_model}-{target}"
                               f"-lam{config.lam:g}-r{config.reg_epochs}"
                               f"-f{config.finetune_epochs}-n{log_n}.pt")
    if not pruned_path.exists():
        config = replace(config, cost_model=cost_model, log_n=log_n)
        prune_run(strategy, target, dense_path, seed, out=pruned_path, config=config)
    pruned = choose_model(None, pruned_path).model
    data = get("dataset", info.dataset)()
    images, labels = data.load("test").tensors
    calibration = data.load("train").tensors[0][:CALIBRATION_IMAGES]
    label = f"{strategy} {target}"
    runs = run_engine(engine, [("dense", dense), (label, pruned)], images[:count],
                      labels[:count], calibration)
    predicted = predict(cost_model, [dense, pruned], info.input_shape, log_n, engine.name)
    table = columns(engine)
    rows = [row(run, runs[0], predicted[k], predicted[0], table)
            for k, run in enumerate(runs)]
    payload = {
        "engine": engine.name, "model": info.model, "dataset": info.dataset,
        "images": count, "strategy": strategy, "target": target, "cost_model": cost_model,
        "log_n": log_n, "speedup": rows[1]["speedup"], "cpu_speedup": rows[1]["cpu_speedup"],
        "predicted_rotation_reduction": rows[1]["pred_rot_reduction"],
        "predicted_latency_reduction": rows[1]["pred_latency_reduction"],
        "dense": {**runs[0].as_dict(), "predicted": predicted[0]},
        "pruned": {**runs[1].as_dict(), "predicted": predicted[1]},
    }
    click.echo(render(rows, fmt, table, json_payload=payload))


def predict(cost_model: str, models: list[nn.Module], input_shape: tuple[int, int, int],
            log_n: int, engine: str = DEFAULT_ENGINE) -> list[dict[str, Any]]:
    """Per model: the cost model's rotations, PMults per layer and estimated seconds (in
    all and per step) at ``engine``'s calibrated prices (our program's when it has
    none), with each layer's mask read off its weights. A model that compiles to our
    encrypted program is predicted whole (activations and the classifier as the cost
    model runs it included, each step at its level: ``counted: program``); any other
    model by its conv and linear layers alone (``counted: layers``, at COUNTING_LEVEL)."""
    setting = HESetting.for_model(models[0], input_shape, cost_model, log_n)
    calibration = load_calibration(engine=engine)
    out = []
    for model in models:
        program = _program(model, input_shape, setting)
        if program is not None:
            ops, per_step = program.op_count(), program.step_seconds(calibration)
            layers = {s.name: s.op_count().pmult for s in program.steps
                      if isinstance(s, ConvStep)}
        else:
            plans = [setting.cost_model.plan(s, setting.params, mask)
                     for s, mask in zip(setting.specs, _masks(setting, model), strict=True)]
            ops = sum((plan.op_count() for plan in plans), OpCount())
            per_step = {plan.spec.name: plan.estimated_seconds(COUNTING_LEVEL, calibration)
                        for plan in plans}
            layers = {plan.spec.name: plan.op_count().pmult for plan in plans}
        out.append({"rotations": ops.rotations, "pmult": ops.pmult, "keys": ops.keys,
                    "seconds": sum(per_step.values()),
                    "counted": "layers" if program is None else "program",
                    "calibration": f"{calibration.engine} at N=2^{calibration.log_n}",
                    "pmult_per_layer": layers, "seconds_per_step": per_step})
    return out


def _program(model: nn.Module, input_shape: tuple[int, int, int],
             setting: HESetting) -> HEProgram | None:
    """``model`` compiled under the setting's cost model at its N on the shortest chain
    (security aside: only counted), or None when it has no leveled form."""
    try:
        params = fit_params(model, input_shape, setting.cost_model, setting.params.log_n,
                            allow_insecure=True)
        return compile_model(model, input_shape, params, setting.cost_model)
    except (SpecError, ParamsError):
        return None


def _masks(setting: HESetting, model: nn.Module) -> list:
    modules = dict(model.named_modules())
    return [modules[s.name].weight.detach() != 0 for s in setting.specs]


def row(run: EngineRun, dense: EngineRun, predicted: dict, dense_predicted: dict,
        table: Sequence[str]) -> dict:
    """Table row of ``table``'s columns; ratios are against the dense run (measured in
    the same loop) and the dense prediction."""
    speedup = dense.seconds_per_image / run.seconds_per_image
    latency = dense_predicted["seconds"] / max(predicted["seconds"], 1e-12)
    cells = {
        "model": run.label, "images": run.images,
        "plain_acc": round(run.plain_accuracy, 4),
        "encrypted_acc": round(run.encrypted_accuracy, 4),
        "agreement": round(run.agreement, 4),
        "max_logit_err": f"{run.max_logit_error:.1e}",
        "s_per_image": round(run.seconds_per_image, 3),
        "cpu_s_per_image": round(run.cpu_seconds_per_image, 3),
        "threads": run.threads,
        "speedup": round(speedup, 3),
        "cpu_speedup": round(dense.cpu_seconds_per_image / run.cpu_seconds_per_image, 3),
        "pred_s_per_image": round(predicted["seconds"], 3),
        "pred_rot_reduction": round(dense_predicted["rotations"]
                                    / max(predicted["rotations"], 1), 3),
        "pred_latency_reduction": round(latency, 3),
        "speedup_vs_pred": round(speedup / latency, 3),
    }
    own = {c: STAT_COLUMNS[c](run.stats, dense.stats) for c in table if c in STAT_COLUMNS}
    return {c: (own | cells)[c] for c in table}

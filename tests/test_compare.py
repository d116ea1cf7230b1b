"""The comparison harness: scheduling, one stored file per run, resuming, failures."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from fake_pipeline import calls, crashing_prune_run, fake_prune_run, fake_train_dense

from artemis_core import ArtemisError, BudgetError, PluginError
from artemis_core.cli import main
from artemis_core.cli.compare_cmd import build_plan
from artemis_core.experiments.compare import ComparePlan, run_comparison
from artemis_core.experiments.results import ResultStore
from artemis_core.learning.catalog import Split
from artemis_core.pruning.pipeline import PruneConfig

PLAN = ComparePlan("small-cnn", "synthetic", ("diagonal", "positional", "hybrid"),
                   ("2x", "4x"), (0, 1))


def _run(root, prune=fake_prune_run, plan=PLAN, **kwargs):
    Path(root).mkdir(parents=True, exist_ok=True)
    plan = dataclasses.replace(plan, data_root=str(root))  # where the fakes log their calls
    return run_comparison(plan, root, fake_train_dense, prune, progress=False, **kwargs)


def _runs(root):
    return Counter(line.rsplit(" pid=", 1)[0] for line in calls(root) if line.startswith("run"))


def test_every_run_is_stored_once_and_the_dense_model_trained_once_per_seed(tmp_path):
    outcome = _run(tmp_path)
    keys = PLAN.keys()
    assert outcome.ran == len(keys) == 12 and outcome.reused == 0 and not outcome.errors
    assert sorted(r.key for r in outcome.records) == sorted(keys)
    assert sorted(r.key for r in ResultStore(tmp_path).load().records) == sorted(keys)
    assert [c.split(" pid")[0] for c in calls(tmp_path) if c.startswith("dense")] == [
        "dense 0", "dense 1"]


def test_a_finished_comparison_reruns_nothing(tmp_path):
    _run(tmp_path)
    before = calls(tmp_path)
    outcome = _run(tmp_path)
    assert outcome.ran == 0 and outcome.reused == 12
    assert calls(tmp_path) == before  # not even the dense models


class _InterruptAfter:
    """prune_run that is 'killed' (Ctrl-C) when it starts its (k+1)-th run."""

    def __init__(self, k):
        self.left = k

    def __call__(self, *args, **kwargs):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return fake_prune_run(*args, **kwargs)


def test_an_interrupted_comparison_resumes_and_loses_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, prune=_InterruptAfter(5))
    assert len(ResultStore(tmp_path).load().records) == 5
    outcome = _run(tmp_path)
    assert outcome.ran == 7 and outcome.reused == 5
    runs = _runs(tmp_path)
    assert len(runs) == 12 and set(runs.values()) == {1}  # every run exactly once
    loaded = ResultStore(tmp_path).load()
    assert not loaded.problems and len(loaded.records) == 12
    assert not list(tmp_path.glob(".*.tmp"))


KILLED_COMPARISON = """
import sys
from fake_pipeline import fake_train_dense, slow_fake_prune_run
from artemis_core.experiments.compare import ComparePlan, run_comparison
plan = ComparePlan("small-cnn", "synthetic", ("diagonal", "positional", "hybrid"),
                   ("2x", "4x"), (0, 1), data_root=sys.argv[1])
run_comparison(plan, sys.argv[1], fake_train_dense, slow_fake_prune_run, progress=False)
"""


def test_a_killed_comparison_resumes_with_every_run_stored_once(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", KILLED_COMPARISON, str(tmp_path)], env=env)
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("*.json"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a child process: there is nothing to wait on
    child.kill()  # SIGKILL: no clean-up code runs
    child.wait()
    stored_before = len(list(tmp_path.glob("*.json")))
    assert 4 <= stored_before < 12
    outcome = _run(tmp_path)
    assert outcome.reused == stored_before and outcome.ran == 12 - stored_before
    loaded = ResultStore(tmp_path).load()
    assert not loaded.problems
    assert sorted(r.key for r in loaded.records) == sorted(PLAN.keys())


def test_a_stored_dense_model_is_shared_on_resume_not_retrained(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, prune=_InterruptAfter(6))  # seed 0's six runs are done
    assert (tmp_path / "dense").is_dir()
    assert _run(tmp_path).ran == 6
    dense = [c.split(" pid")[0] for c in calls(tmp_path) if c.startswith("dense")]
    assert dense == ["dense 0", "dense 1"]


def _budget_fails_for_hybrid(strategy, target, *args, **kwargs):
    if strategy == "hybrid" and target == "4x":
        raise BudgetError("hybrid cannot reach 4x")
    return fake_prune_run(strategy, target, *args, **kwargs)


def test_an_unreachable_target_is_stored_as_failed_and_not_retried(tmp_path):
    outcome = _run(tmp_path, prune=_budget_fails_for_hybrid)
    failed = [r for r in outcome.records if not r.ok]
    assert [(r.key.strategy, r.key.target) for r in failed] == [("hybrid", "4x")] * 2
    assert "cannot reach 4x" in failed[0].error and not outcome.errors
    assert _run(tmp_path).ran == 0


def test_a_crashing_run_is_stored_with_its_reason_the_others_finish_and_a_rerun_retries_it(
        tmp_path):
    outcome = _run(tmp_path, prune=crashing_prune_run)
    assert len(outcome.errors) == 4 and "bug in a plugin" in outcome.errors[0]
    assert outcome.ran == 8 and len(outcome.records) == 12
    crashed = [r for r in ResultStore(tmp_path).load().records if not r.ok]
    assert {r.key.strategy for r in crashed} == {"positional"} and len(crashed) == 4
    assert {(r.status, r.error) for r in crashed} == {("error", "RuntimeError: bug in a plugin")}
    again = _run(tmp_path)
    assert again.ran == 4 and again.reused == 8 and not again.errors


def _plugin_missing_on_the_worker(*args, **kwargs):
    raise PluginError("unknown strategy 'diagonal'; known: none")


def test_a_plugin_missing_on_a_worker_is_an_error_to_retry_not_a_result(tmp_path):
    outcome = _run(tmp_path, prune=_plugin_missing_on_the_worker)
    assert outcome.ran == 0 and len(outcome.errors) == 12
    assert {r.status for r in outcome.records} == {"error"}
    assert "PluginError: unknown strategy" in outcome.records[0].error
    assert _run(tmp_path).ran == 12


def test_a_corrupt_run_file_is_run_again(tmp_path, capsys):
    _run(tmp_path)
    store = ResultStore(tmp_path)
    victim = store.path(PLAN.keys()[3])
    victim.write_text("{ truncated")
    outcome = _run(tmp_path)
    assert outcome.ran == 1
    assert str(victim) in capsys.readouterr().err
    assert store.get(PLAN.keys()[3]).ok


@pytest.mark.parametrize("change", [
    {"prune": {"max_sparsity": 0.9}}, {"prune": {"reg_epochs": 3}}, {"dense_epochs": 2},
    {"prune": {"schedule": "gradual"}}, {"split": Split(validation=0.2)},
    {"prune": {"cost_model": "bsgs"}}, {"prune": {"augment": True}},
    {"prune": {"train_subset": 100}}, {"prune": {"log_n": 15}},
])
def test_runs_stored_with_other_settings_are_not_reused(tmp_path, change):
    _run(tmp_path)
    other = ComparePlan(**{**PLAN.__dict__, **change})
    outcome = _run(tmp_path, plan=other)
    assert outcome.reused == 0 and outcome.ran == 12
    assert len(ResultStore(tmp_path).load().records) == 24  # both sets, apart


def test_a_run_file_whose_settings_were_edited_is_refused(tmp_path):
    _run(tmp_path)
    path = ResultStore(tmp_path).path(PLAN.keys()[0])
    doc = json.loads(path.read_text())
    doc["config"]["dense_epochs"] = 99
    path.write_text(json.dumps(doc))
    with pytest.raises(ArtemisError, match="edited"):
        _run(tmp_path)


def test_a_lam_grid_stores_one_run_per_lam_of_each_regularized_strategy(tmp_path):
    plan = ComparePlan(**{**PLAN.__dict__, "strategies": ("diagonal", "hybrid", "unstructured"),
                          "seeds": (0,), "lams": (0.5, 1.0)})
    outcome = _run(tmp_path, plan=plan)
    # two λ for each regularized strategy, one run for unstructured (λ does not change it)
    assert outcome.ran == len(outcome.records) == 2 * (2 * 2 + 1)
    lams = Counter((r.key.strategy, r.key.lam) for r in outcome.records)
    assert lams == {("diagonal", "0.5"): 2, ("diagonal", "1"): 2, ("hybrid", "0.5"): 2,
                    ("hybrid", "1"): 2, ("unstructured", ""): 2}
    assert {r.config["lam"] for r in outcome.records if r.key.lam} == {0.5, 1.0}
    assert _run(tmp_path, plan=plan).ran == 0


def _unreachable_for_positional(strategy, target, *args, **kwargs):
    metrics = fake_prune_run(strategy, target, *args, **kwargs)
    if strategy == "positional" and not target.endswith("%"):
        metrics |= {"reached": False, "rotations": 100, "rotation_reduction": 1.2,
                    "sparsity": 0.3}
    return metrics


def test_an_unreached_target_runs_again_at_the_best_he_aware_runs_sparsity(tmp_path):
    outcome = _run(tmp_path, prune=_unreachable_for_positional)
    matched = [r for r in outcome.records if r.key.target.endswith("%")]
    # one matched run per seed and target, at the sparsity of the best run that reached it
    assert len(matched) == 4 and {r.key.strategy for r in matched} == {"positional"}
    for record in matched:
        target = record.config["matched_target"]
        best = max((r for r in outcome.records if r.key.seed == record.key.seed
                    and r.key.target == target and r.key.strategy != "positional"),
                   key=lambda r: r.metrics["val_accuracy"])
        assert record.config["matched_strategy"] == best.key.strategy == "diagonal"
        assert record.key.target == f"{100 * best.metrics['sparsity']:g}%"
    again = _run(tmp_path, prune=_unreachable_for_positional)
    assert again.ran == 0 and again.reused == 16


def test_parallel_jobs_store_the_same_results_as_one_job(tmp_path):
    one = _run(tmp_path / "one")
    two = _run(tmp_path / "two", jobs=2)
    assert two.ran == 12 and not two.errors
    assert [r.metrics for r in two.records] == [r.metrics for r in one.records]
    pids = {line.rsplit("pid=", 1)[1] for line in calls(tmp_path / "two")}
    assert str(os.getpid()) not in pids  # the work ran in worker processes


# --- the command's plan --------------------------------------------------------------

def test_plan_defaults_to_the_datasets_model_and_every_strategy():
    plan = build_plan(None, "digits", None, "1.5x,2.0X,1.5x", "0,1", None, None, None)
    assert plan.model == "digits-resnet"
    assert {"diagonal", "positional", "hybrid", "hunter", "unstructured", "filter"} <= set(
        plan.strategies)
    assert plan.targets == ("1.5x", "2x") and plan.seeds == (0, 1)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"strategies": "diagonal,nope"}, "unknown strategy 'nope'; known: diagonal"),
    ({"targets": "2x,huge"}, "target 'huge'"),
    ({"seeds": "0,x"}, "--seeds '0,x'"),
    ({"model": "nope"}, "unknown model 'nope'"),
    ({"dataset": "nope"}, "unknown dataset 'nope'"),
])
def test_plan_refuses_bad_options_naming_them(kwargs, message):
    options = {"model": None, "dataset": "digits", "strategies": None, "targets": "2x",
               "seeds": "0", "epochs": None, "prune_epochs": None, "data_root": None}
    with pytest.raises(ArtemisError, match=message):
        build_plan(**{**options, **kwargs})


def test_an_installed_third_party_strategy_joins_the_comparison(installed_example_plugin,
                                                                 tmp_path):
    plan = build_plan("small-cnn", "synthetic", None, "2x", "0", None, None, None)
    assert "random" in plan.strategies
    outcome = _run(tmp_path, plan=plan)
    assert "random" in {r.key.strategy for r in outcome.records}
    stored = json.loads(ResultStore(tmp_path).path(
        next(k for k in plan.keys() if k.strategy == "random")).read_text())
    assert stored["key"]["strategy"] == "random"


# --- the command, on the real pipeline ---------------------------------------------------

FAST = ["--epochs", "1", "--prune-epochs", "1", "--seeds", "0"]


def _compare(tmp_path, *args):
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, ["compare", *FAST, "--out", str(out), *args])
    return result, out


def test_compare_runs_the_installed_third_party_strategy_on_the_real_pipeline(
        installed_example_plugin, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    # Random groups of 16 weights never cover a whole rotation: only 1x is reachable.
    result, out = _compare(tmp_path, "--strategies", "random", "--targets", "1x",
                           "--format", "json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert (row["strategy"], row["target"], row["model"]) == ("random", "1x", "digits-resnet")
    assert row["rotation_reduction"] >= 1 and 0 <= row["accuracy"] <= 1
    assert row["latency_s"] > 0
    assert (out / "dense").is_dir() and (out / "models").is_dir()
    again, _ = _compare(tmp_path, "--strategies", "random", "--targets", "1x")
    assert again.exit_code == 0 and "0 runs done, 1 reused" in again.stderr


def test_compare_counts_at_the_ring_given_by_log_n(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    args = ("--model", "he-cnn", "--strategies", "diagonal", "--targets", "1.5x",
            "--format", "json")
    result, out = _compare(tmp_path, *args, "--log-n", "15")
    assert result.exit_code == 0, result.output
    (record,) = ResultStore(out).load().records
    assert record.metrics["log_n"] == 15 and record.config["log_n"] == 15
    refused, _ = _compare(tmp_path, *args, "--log-n", "20")
    assert refused.exit_code == 2 and "--log-n" in refused.output and "10<=x<=17" in refused.output


def test_a_killed_real_comparison_resumes_with_every_run_once(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    out = tmp_path / "runs"
    command = [sys.executable, "-m", "artemis_core.cli", "compare", *FAST, "--out", str(out),
               "--strategies", "diagonal,hunter,filter", "--targets", "1.5x,2x"]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(list(out.glob("*.json"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)  # polling a child process: there is nothing to wait on
    child.kill()
    child.wait()
    stored = len(list(out.glob("*.json")))
    assert 3 <= stored < 6
    result, _ = _compare(tmp_path, "--strategies", "diagonal,hunter,filter",
                         "--targets", "1.5x,2x")
    assert result.exit_code == 0, result.output
    loaded = ResultStore(out).load()
    # six planned runs, plus filter at matched sparsity where it falls short of a target
    short = sum(r.metrics.get("reached") is False for r in loaded.records)
    total = 6 + short
    assert f"{total - stored} runs done, {stored} reused" in result.stderr
    assert not loaded.problems and len(loaded.records) == total
    assert len({r.key for r in loaded.records}) == total


@pytest.mark.parametrize("option, value, message", [
    ("--plot", "front.txt", "allowed file types"),
    ("--calibration", "calibration.json", "not valid JSON"),
])
def test_a_bad_plot_or_calibration_fails_before_anything_is_trained(tmp_path, option, value,
                                                                     message):
    (tmp_path / "calibration.json").write_text("{not json")
    result, out = _compare(tmp_path, option, str(tmp_path / value))
    assert result.exit_code != 0 and message in result.stderr
    assert not out.exists()


def test_a_third_party_model_without_batchnorm_runs_through_compare(
        installed_example_plugin, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    result, _ = _compare(tmp_path, "--model", "plain-odd-cnn", "--strategies", "diagonal",
                         "--targets", "1.2x", "--format", "json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert (row["model"], row["strategy"]) == ("plain-odd-cnn", "diagonal")
    assert row["rotation_reduction"] >= 1.2 and 0 <= row["accuracy"] <= 1


def test_a_training_subset_reaches_the_dense_model_and_every_phase():
    plan = ComparePlan(**{**PLAN.__dict__, "prune": {**PLAN.prune, "train_subset": 100}})
    assert plan.dense_options()["train_subset"] == 100
    assert plan.prune_options(plan.keys()[0])["config"]["train_subset"] == 100
    with pytest.raises(ArtemisError, match="train_subset=0 must be at least 1"):
        PruneConfig(train_subset=0)

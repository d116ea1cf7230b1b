"""Executors: local (inline, process pool) and Ray run the same tasks, hand back values or
the reason a task failed, and the comparison stores the same runs on every one of them.

Ray runs on a local instance of 2 CPUs, started once for the module (the CLI test before
it starts and stops its own).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fake_pipeline import (
    crashing_prune_run,
    dying_prune_run,
    fake_prune_run,
    fake_train_dense,
    sleepy_prune_run,
    slow_fake_prune_run,
)

from artemis_core import ArtemisError
from artemis_core.cli import main
from artemis_core.experiments.compare import ComparePlan, run_comparison, work_dir, work_name
from artemis_core.experiments.executors import (
    Executor,
    RayExecutor,
    Task,
    local_executor,
    make_executor,
)
from artemis_core.experiments.results import ResultStore

PLAN = ComparePlan("small-cnn", "synthetic", ("diagonal", "positional", "hybrid"),
                   ("2x", "4x"), (0, 1))


def _square(x: int) -> int:
    return x * x


def _refuse(x: int) -> int:
    raise ValueError(f"bad input {x}\nmore detail on a second line")


def _die() -> None:
    os._exit(3)


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _size(data: bytes, index: int) -> tuple[int, int]:
    return index, len(data)


def _run(root: Path, executor: Executor | None = None, prune=fake_prune_run, plan=PLAN,
         **kwargs):
    Path(root).mkdir(parents=True, exist_ok=True)
    plan = dataclasses.replace(plan, data_root=str(root))  # where the fakes log their calls
    return run_comparison(plan, root, fake_train_dense, prune, executor=executor,
                          progress=False, **kwargs)


# --- the command, on the real pipeline (starts and stops its own Ray instance) -------------

def test_compare_on_ray_stores_the_same_runs_and_accuracies_as_local(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    import ray

    assert not ray.is_initialized()
    options = ["compare", "--epochs", "1", "--prune-epochs", "1", "--seeds", "0",
               "--strategies", "diagonal", "--targets", "2x", "--format", "json"]
    stored = {}
    # In this process with every core's threads, and in Ray workers with one thread each.
    for executor, jobs in (("local", "1"), ("ray", "2")):
        out = tmp_path / executor
        result = CliRunner().invoke(main, [*options, "--out", str(out), "--executor", executor,
                                           "--jobs", jobs])
        assert result.exit_code == 0, result.output
        assert "1 runs done, 0 reused" in result.stderr
        stored[executor] = {r.key: r for r in ResultStore(out).load().records}
        # The driver wrote every checkpoint the workers returned.
        assert len(list((out / "models").glob("*.pt"))) == 1
        assert len(list((out / "dense").glob("*.pt"))) == 1
    assert not ray.is_initialized()  # the instance it started is stopped
    assert stored["ray"].keys() == stored["local"].keys() and len(stored["ray"]) == 1
    for key, record in stored["ray"].items():
        local = stored["local"][key].metrics
        assert record.ok and record.metrics["accuracy"] == local["accuracy"]
        assert record.metrics["rotations"] == local["rotations"]
        assert record.metrics["ops"] == local["ops"]


# --- executors -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray instance of 2 CPUs for the module; its address. Its workers, whichever
    driver they serve, import this directory's modules (the tasks' functions live here)."""
    import ray

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, (
            str(Path(__file__).parent), os.environ.get("PYTHONPATH")))))
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20,
                 log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def pool():
    """One process pool of 2 for the module (its workers start once)."""
    executor = local_executor(2)
    yield executor
    executor.close()


@pytest.fixture(params=["inline", "pool", "ray"])
def executor(request) -> Executor:
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
        return RayExecutor()
    return request.getfixturevalue("pool") if request.param == "pool" else local_executor(1)


def _outcomes(executor: Executor, tasks: list[Task]) -> dict:
    for task in tasks:
        executor.submit(task)
    return {done.tag: done.value if done.ok else done.error for done in executor.finished()}


def test_tasks_return_their_values_or_why_they_failed(executor):
    shared = executor.share(b"x" * 5000)  # stored once, handed to each task that takes it
    tasks = [Task(i, _square, (i,)) for i in range(3)] + [
        Task("refused", _refuse, (7,)), Task("shared", _size, (shared, 1))]
    assert _outcomes(executor, tasks) == {0: 0, 1: 1, 2: 4, "refused": "ValueError: bad input 7",
                                         "shared": (1, 5000)}
    assert executor.pending == 0


@pytest.mark.parametrize("kind", ["pool", "ray"])
def test_a_task_runs_with_the_threads_it_declares(kind, request):
    executor = request.getfixturevalue("pool") if kind == "pool" else (
        request.getfixturevalue("ray_cluster") and RayExecutor())
    tasks = [Task("one", _threads, cpus=1), Task("two", _threads, cpus=2)]
    assert _outcomes(executor, tasks) == {"one": 1, "two": 2}


def test_a_ray_worker_that_dies_fails_its_task_only(ray_cluster):
    outcomes = _outcomes(RayExecutor(), [Task("dies", _die)] +
                         [Task(i, _square, (i,)) for i in range(3)])
    assert outcomes.pop("dies").startswith("worker died: ")
    assert outcomes == {0: 0, 1: 1, 2: 4}


def test_a_pool_worker_that_dies_fails_what_it_held_and_the_pool_starts_again(pool):
    assert _outcomes(pool, [Task("dies", _die)])["dies"].startswith("worker process died")
    assert _outcomes(pool, [Task("after", _square, (5,))]) == {"after": 25}


# --- the comparison on Ray -----------------------------------------------------------------

def test_a_comparison_on_ray_stores_what_the_local_one_does_from_ray_workers(tmp_path,
                                                                            ray_cluster):
    grid = dataclasses.replace(PLAN, lams=(0.5, 2.0))  # each λ of the grid: runs of its own
    runs = len(grid.keys())
    assert runs > 12
    local = _run(tmp_path / "local", plan=grid)
    remote = _run(tmp_path / "ray", RayExecutor(), plan=grid)
    assert remote.ran == runs and not remote.errors
    assert [r.key for r in remote.records] == [r.key for r in local.records]
    assert [r.metrics for r in remote.records] == [r.metrics for r in local.records]
    log = (tmp_path / "ray" / "calls.log").read_text().splitlines()
    assert len(log) == runs + 2  # and two dense models
    assert str(os.getpid()) not in {line.rsplit("pid=")[1] for line in log}
    rerun = _run(tmp_path / "ray", RayExecutor(), plan=grid)
    assert rerun.ran == 0 and rerun.reused == runs


@pytest.mark.parametrize("prune, reason", [
    (crashing_prune_run, "RuntimeError: bug in a plugin"),
    # Same path in the driver as a raise (the death itself: the executor test above); slow,
    # as Ray starts a fresh worker (torch and all) after it.
    pytest.param(dying_prune_run, "worker died: ", marks=pytest.mark.slow),
], ids=["raises", "dies"])
def test_a_run_that_fails_on_a_ray_worker_is_stored_with_its_reason_and_the_rest_finish(
        tmp_path, ray_cluster, prune, reason):
    outcome = _run(tmp_path, RayExecutor(), prune=prune)
    assert outcome.ran == 8 and len(outcome.errors) == 4
    failed = [r for r in ResultStore(tmp_path).load().records if not r.ok]
    assert {r.key.strategy for r in failed} == {"positional"} and len(failed) == 4
    assert all(r.status == "error" and r.error.startswith(reason) for r in failed)
    again = _run(tmp_path, RayExecutor())
    assert again.ran == 4 and again.reused == 8 and not again.errors


KILLED_DRIVER = """
import dataclasses, sys
from fake_pipeline import fake_train_dense, slow_fake_prune_run
from artemis_core.experiments.compare import ComparePlan, run_comparison, work_dir, work_name
from artemis_core.experiments.executors import RayExecutor
plan = ComparePlan("small-cnn", "synthetic", ("diagonal", "positional", "hybrid"),
                   ("2x", "4x"), (0, 1), data_root=sys.argv[1])
run_comparison(plan, sys.argv[1], fake_train_dense, slow_fake_prune_run, progress=False,
               executor=RayExecutor(address=sys.argv[2]))
"""


def test_a_killed_driver_loses_only_its_runs_in_flight(tmp_path, ray_cluster):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", KILLED_DRIVER, str(tmp_path), ray_cluster],
                             env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("*.json"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a child process: there is nothing to wait on
    child.kill()  # SIGKILL: the cluster lives on, the driver's tasks die with it
    child.wait()
    stored = len(list(tmp_path.glob("*.json")))
    assert 4 <= stored < 12
    outcome = _run(tmp_path, RayExecutor(), prune=slow_fake_prune_run)
    assert outcome.reused == stored and outcome.ran == 12 - stored and not outcome.errors
    loaded = ResultStore(tmp_path).load()
    assert not loaded.problems and len(loaded.records) == 12


class _InterruptedRay(RayExecutor):
    """Ctrl-C reaches the driver once the first task has been handled."""

    def finished(self):
        for count, done in enumerate(super().finished()):
            if count:
                raise KeyboardInterrupt
            yield done


def test_ctrl_c_cancels_the_outstanding_ray_tasks(tmp_path, ray_cluster):
    import ray

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, _InterruptedRay(), prune=sleepy_prune_run)
    # The two-minute runs were stopped: the instance's CPUs come free at once.
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU") != 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # Ray frees a killed worker's CPU asynchronously
    assert ray.available_resources().get("CPU") == 2
    assert not list(tmp_path.glob("*.json"))
    # The same command again finishes the sweep, and leaves no scratch files behind.
    outcome = _run(tmp_path, RayExecutor())
    assert outcome.ran == 12 and not outcome.errors
    assert not work_dir(work_name(tmp_path)).exists()


# --- options ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, jobs, address, message", [
    ("local", None, "auto", "--ray-address needs --executor ray"),
    ("ray", 2, "auto", "drop --jobs"),
    ("dask", None, None, "allowed: local, ray"),
    ("local", 0, None, "--jobs 0: must be at least 1"),
])
def test_bad_executor_options_are_refused_naming_them(kind, jobs, address, message):
    with pytest.raises(ArtemisError, match=message):
        make_executor(kind, jobs, address)


def test_without_ray_the_command_names_the_extra_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails
    result = CliRunner().invoke(main, ["compare", "--executor", "ray", "--targets", "2x",
                                       "--out", str(tmp_path / "runs")])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: --executor ray needs Ray: pip install 'artemis-he[ray]'")
    assert not (tmp_path / "runs").exists()


def test_the_ray_extra_is_declared_for_users_and_ci():
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    extras = pyproject.split("[project.optional-dependencies]")[1].split("\n[")[0]
    lines = {line.split("=")[0].strip(): line for line in extras.splitlines() if "=" in line}
    assert '"ray' in lines["ray"] and '"ray' in lines["dev"]

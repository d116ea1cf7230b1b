"""The comparison harness: strategies × targets × seeds on one model and dataset.

The dense baseline is trained once per seed and shared with every run of that seed. Runs
execute on an :mod:`~artemis_core.experiments.executors` executor (local processes or
Ray) and return their results; this process stores each result file as soon as it
arrives, so an interrupted comparison resumes where it stopped. The training functions are
parameters (the CLI passes :mod:`artemis_core.pruning.pipeline`'s), so the scheduling, storing
and resuming are tested with small deterministic runners.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..errors import ArtemisError, PluginError
from ..io import atomic_write, jsonable
from ..version import __version__
from .executors import Executor, Finished, InlineExecutor, Task, local_executor
from .results import (
    STATUS_ERROR,
    STATUS_FAILED,
    ResultError,
    ResultStore,
    RunKey,
    RunRecord,
)

#: ``train_dense(model, dataset, seed, epochs, out, data_root=None, progress=True)``
DenseFn = Callable[..., Mapping[str, Any]]
#: ``prune_run(strategy, target, dense_checkpoint, seed, epochs=None, out=None,
#: progress=True, data_root=None, cost_model=None) -> metrics``
PruneFn = Callable[..., Mapping[str, Any]]


@dataclass(frozen=True)
class ComparePlan:
    """What a comparison runs: every strategy × target × seed on one model and dataset."""

    model: str
    dataset: str
    strategies: tuple[str, ...]
    targets: tuple[str, ...]
    seeds: tuple[int, ...]
    dense_epochs: int | None = None
    prune_epochs: int | None = None
    data_root: str | None = None
    cost_model: str = "gazelle"

    def keys(self) -> list[RunKey]:
        """Every run, seed-major (so one seed's runs can start once its dense model exists)."""
        return [RunKey(self.model, self.dataset, s, t, seed)
                for seed in self.seeds for s in self.strategies for t in self.targets]

    def config(self) -> dict[str, Any]:
        """Options a stored run must share with this plan to be reused."""
        return {"dense_epochs": self.dense_epochs, "prune_epochs": self.prune_epochs,
                "cost_model": self.cost_model}


def dense_checkpoint(root: Path, model: str, dataset: str, seed: int) -> Path:
    """Where a comparison keeps the dense baseline of one seed."""
    return Path(root) / "dense" / f"{model}__{dataset}__seed{seed}.pt"


def pruned_checkpoint(root: Path, key: RunKey) -> Path:
    """Where a comparison keeps the pruned model of one run."""
    return Path(root) / "models" / (Path(key.file_name).stem + ".pt")


@dataclass(frozen=True)
class CompareOutcome:
    """Every run of the plan that is stored now, what this call ran, and what failed."""

    records: list[RunRecord]
    ran: int
    reused: int
    errors: list[str] = field(default_factory=list)


def work_name(root: Path, plan: ComparePlan) -> str:
    """The name of this comparison's scratch directory on every worker machine: a digest
    of the result directory and the options (see :func:`work_dir`)."""
    ident = json.dumps([str(Path(root).resolve()), plan.model, plan.dataset, plan.config()])
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def work_dir(work: str) -> Path:
    """The scratch directory named ``work`` in this machine's temporary directory: tasks
    keep their unfinished training state there, so a run started again on the same
    machine resumes from its last epoch."""
    return Path(tempfile.gettempdir()) / "artemis-work" / work


def train_dense_task(dense_fn: DenseFn, plan: ComparePlan, seed: int, work: str,
                     progress: bool) -> bytes:
    """Train the dense model of ``seed`` in the worker's scratch directory; returns its
    checkpoint's bytes."""
    scratch = work_dir(work) / f"dense-seed{seed}"
    out = scratch / "dense.pt"
    dense_fn(plan.model, plan.dataset, seed, plan.dense_epochs, out, data_root=plan.data_root,
             progress=progress)
    if not out.exists():
        raise ArtemisError(f"dense training of seed {seed} wrote no checkpoint at {out}")
    data = out.read_bytes()
    shutil.rmtree(scratch)
    return data


def prune_task(prune_fn: PruneFn, plan: ComparePlan, key: RunKey, dense: bytes, work: str,
               progress: bool) -> tuple[RunRecord, bytes | None]:
    """One pruning run from the dense checkpoint ``dense`` (its bytes), in the worker's
    scratch directory: returns the run's record and its pruned checkpoint's bytes (None if
    it wrote none), for the driver to store."""
    scratch = work_dir(work) / Path(key.file_name).stem
    checkpoint = dense_checkpoint(scratch, key.model, key.dataset, key.seed)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.write_bytes(dense)
    out = scratch / "pruned.pt"
    start = time.perf_counter()
    try:
        metrics = prune_fn(key.strategy, key.target, checkpoint, key.seed,
                           epochs=plan.prune_epochs, out=out, progress=progress,
                           data_root=plan.data_root, cost_model=plan.cost_model)
    except PluginError:
        raise  # the driver found the plugin: this worker's installation lacks it (retry)
    except ArtemisError as exc:
        # A user-level outcome (e.g. a target this strategy cannot reach) is a result too:
        # stored, so a resumed comparison does not retry it forever.
        shutil.rmtree(scratch)
        return RunRecord(key, plan.config(), {}, time.perf_counter() - start,
                         status=STATUS_FAILED, error=f"{type(exc).__name__}: {exc}",
                         artemis_version=__version__), None
    record = RunRecord(key, plan.config(), jsonable(dict(metrics)), time.perf_counter() - start,
                       artemis_version=__version__)
    model = out.read_bytes() if out.exists() else None
    shutil.rmtree(scratch)
    return record, model


def _save_bytes(path: Path, data: bytes) -> None:
    with atomic_write(path, binary=True) as handle:
        handle.write(data)


def _store_run(store: ResultStore, plan: ComparePlan, item: Finished) -> RunRecord:
    """Store what a run's task returned (its pruned model first, then its record), or
    a record of why it crashed; returns the record."""
    key = item.tag
    if item.ok:
        record, model = item.value
        if model is not None:
            _save_bytes(pruned_checkpoint(store.root, key), model)
    else:
        record = RunRecord(key, plan.config(), status=STATUS_ERROR, error=item.error,
                           artemis_version=__version__)
    store.save(record)
    return record


def _stored(store: ResultStore, keys: Iterable[RunKey], config: Mapping[str, Any],
            warn: Callable[[str], None]) -> dict[RunKey, RunRecord]:
    """Runs already stored (not those that crashed: they run again); refuses a directory
    whose runs used other options."""
    found = {}
    for key in keys:
        try:
            record = store.get(key)
        except ResultError as exc:
            warn(f"warning: {exc}; running it again")
            continue
        if record is None:
            continue
        # runs stored before the cost model was an option were counted under gazelle
        if {"cost_model": "gazelle", **record.config} != dict(config):
            raise ArtemisError(
                f"{store.path(key)} was made with {record.config}, this comparison asks "
                f"for {dict(config)}; use another --out directory or the same options"
            )
        if record.status != STATUS_ERROR:
            found[key] = record
    return found


def run_comparison(plan: ComparePlan, root: str | Path, dense_fn: DenseFn, prune_fn: PruneFn,
                   *, jobs: int = 1, executor: Executor | None = None,
                   progress: bool = True) -> CompareOutcome:
    """Run every run of ``plan`` not yet stored under ``root`` on ``executor`` (default:
    :func:`local_executor` of ``jobs``), which this call closes.

    Workers return checkpoints and records; this process alone writes them, each as it
    arrives, so a killed comparison loses only the runs in flight. A run that raises an
    :class:`ArtemisError` is stored as failed; one that raises anything else or whose
    worker dies is stored with status ``error`` and its reason, reported in ``errors``
    and retried by the next call, while the other runs go on. The dense model of a seed
    is trained only if one of its runs is missing and it is not stored yet.
    """
    executor = executor or local_executor(jobs)
    root = Path(root)
    store = ResultStore(root)
    with executor:
        root.mkdir(parents=True, exist_ok=True)
        done = _stored(store, plan.keys(), plan.config(),
                       lambda msg: tqdm.write(msg, sys.stderr))
        reused = len(done)
        todo: dict[int, list[RunKey]] = {}
        for key in plan.keys():
            if key not in done:
                todo.setdefault(key.seed, []).append(key)
        work = work_name(root, plan)
        # Each job's own progress bars only make sense when jobs do not run side by side.
        show_each = progress and isinstance(executor, InlineExecutor)

        def submit_runs(seed: int, dense: bytes) -> None:
            shared = executor.share(dense)
            for key in todo[seed]:
                executor.submit(Task(key, prune_task,
                                     (prune_fn, plan, key, shared, work, show_each)))

        errors: list[str] = []
        ran = 0
        bar = tqdm(total=len(todo) + sum(map(len, todo.values())), desc="compare", unit="job",
                   file=sys.stderr, disable=not progress, dynamic_ncols=True)
        try:
            for seed in todo:
                stored = dense_checkpoint(root, plan.model, plan.dataset, seed)
                if stored.exists():
                    bar.update(1)
                    submit_runs(seed, stored.read_bytes())
                else:
                    executor.submit(Task(seed, train_dense_task,
                                         (dense_fn, plan, seed, work, show_each)))
            for item in executor.finished():
                bar.update(1)
                if not isinstance(item.tag, RunKey):  # a seed: its dense model
                    seed = item.tag
                    if not item.ok:
                        errors.append(f"dense seed {seed}: {item.error} "
                                      f"(its {len(todo[seed])} runs skipped)")
                        tqdm.write(f"error: {errors[-1]}", sys.stderr)
                        bar.update(len(todo[seed]))
                        continue
                    bar.set_postfix_str(f"dense seed {seed}")
                    _save_bytes(dense_checkpoint(root, plan.model, plan.dataset, seed),
                                item.value)
                    submit_runs(seed, item.value)
                    continue
                bar.set_postfix_str(item.tag.label())
                done[item.tag] = _store_run(store, plan, item)
                if done[item.tag].status == STATUS_ERROR:
                    errors.append(f"{item.tag.label()}: {item.error}")
                    tqdm.write(f"error: {errors[-1]}", sys.stderr)
                else:
                    ran += 1
        finally:
            bar.close()
    # Every task ended: what is left in this machine's scratch directory is stale.
    shutil.rmtree(work_dir(work), ignore_errors=True)
    records = [done[key] for key in plan.keys() if key in done]
    return CompareOutcome(records, ran=ran, reused=reused, errors=errors)


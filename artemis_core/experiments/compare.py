"""The comparison harness: strategies × targets × seeds on one model and dataset.

The dense baseline is trained once per seed and reused by every run of that seed. Each
run stores its own result file as soon as it finishes (in the worker process that ran
it), so an interrupted comparison resumes where it stopped. The training functions are
parameters (the CLI passes :mod:`artemis_core.pruning.pipeline`'s), so the scheduling, storing
and resuming are tested with small deterministic runners.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..errors import ArtemisError
from ..io import jsonable
from ..version import __version__
from .results import (
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


def _init_worker(threads: int) -> None:
    import torch

    # Workers share the cores: more torch threads than cores per worker only thrash.
    torch.set_num_threads(threads)


def _train_dense(dense_fn: DenseFn, plan: ComparePlan, seed: int, out: Path,
                 progress: bool) -> None:
    dense_fn(plan.model, plan.dataset, seed, plan.dense_epochs, out, data_root=plan.data_root,
             progress=progress)


def _run_one(prune_fn: PruneFn, plan: ComparePlan, key: RunKey, root: Path,
             progress: bool) -> RunRecord:
    """Run one pruning job and store its result file (in whichever process runs it)."""
    checkpoint = dense_checkpoint(root, key.model, key.dataset, key.seed)
    start = time.perf_counter()
    try:
        metrics = prune_fn(key.strategy, key.target, checkpoint, key.seed,
                           epochs=plan.prune_epochs, out=pruned_checkpoint(root, key),
                           progress=progress, data_root=plan.data_root,
                           cost_model=plan.cost_model)
        record = RunRecord(key, plan.config(), jsonable(dict(metrics)),
                           time.perf_counter() - start, artemis_version=__version__)
    except ArtemisError as exc:
        # A user-level outcome (e.g. a target this strategy cannot reach) is a result
        # too: store it so a resumed comparison does not retry it forever.
        record = RunRecord(key, plan.config(), {}, time.perf_counter() - start,
                           status=STATUS_FAILED, error=f"{type(exc).__name__}: {exc}",
                           artemis_version=__version__)
    ResultStore(root).save(record)
    return record


class _DeferredFuture(Future):
    """A task of :class:`_InlineExecutor`: it runs when :meth:`run` is called."""

    def __init__(self, call: Callable[[], Any]) -> None:
        super().__init__()
        self._call = call

    def run(self) -> None:
        """Run the task in this process; Ctrl-C (not an ``Exception``) propagates."""
        try:
            self.set_result(self._call())
        except Exception as exc:
            self.set_exception(exc)


class _InlineExecutor(Executor):
    """``--jobs 1``: tasks run one by one in this process, oldest first, when the
    scheduler asks for the next finished one (no pickling; Ctrl-C stops at once)."""

    def submit(self, fn, /, *args, **kwargs) -> _DeferredFuture:
        return _DeferredFuture(functools.partial(fn, *args, **kwargs))


def _next_finished(running: Mapping[Future, Any]) -> list[Future]:
    """Finished tasks in submission order (seed-major, reproducible); with the inline
    executor, runs the oldest task first."""
    oldest = next(iter(running))
    if isinstance(oldest, _DeferredFuture):
        oldest.run()
        return [oldest]
    finished, _ = wait(running, return_when=FIRST_COMPLETED)
    return [f for f in running if f in finished]


def available_cores() -> int:
    """CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _executor(jobs: int) -> Executor:
    if jobs == 1:
        return _InlineExecutor()
    threads = max(1, available_cores() // jobs)
    return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(threads,))


def _stored(store: ResultStore, keys: Iterable[RunKey], config: Mapping[str, Any],
            warn: Callable[[str], None]) -> dict[RunKey, RunRecord]:
    """Runs already stored; refuses a directory whose runs used other options."""
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
        found[key] = record
    return found


def run_comparison(plan: ComparePlan, root: str | Path, dense_fn: DenseFn, prune_fn: PruneFn,
                   *, jobs: int = 1, progress: bool = True) -> CompareOutcome:
    """Run every run of ``plan`` not yet stored under ``root`` in ``jobs`` processes.

    A run that raises an :class:`ArtemisError` is stored as failed; any other exception
    is reported in ``errors`` (nothing stored, so the next call retries it) while the
    other runs go on. The dense model of a seed is trained only if one of its runs is
    missing.
    """
    if jobs < 1:
        raise ArtemisError(f"--jobs {jobs}: must be at least 1")
    root = Path(root)
    store = ResultStore(root)
    root.mkdir(parents=True, exist_ok=True)
    done = _stored(store, plan.keys(), plan.config(), lambda msg: tqdm.write(msg, sys.stderr))
    todo: dict[int, list[RunKey]] = {}
    for key in plan.keys():
        if key not in done:
            todo.setdefault(key.seed, []).append(key)
    errors: list[str] = []
    ran = 0
    total = len(todo) + sum(map(len, todo.values()))
    bar = tqdm(total=total, desc="compare", unit="job", file=sys.stderr, disable=not progress,
               dynamic_ncols=True)
    executor = _executor(jobs)
    # Each job's own progress bars only make sense when jobs do not run side by side.
    show_each = progress and jobs == 1
    try:
        running: dict[Future, tuple[str, Any]] = {}
        for seed in todo:
            out = dense_checkpoint(root, plan.model, plan.dataset, seed)
            task = executor.submit(_train_dense, dense_fn, plan, seed, out, show_each)
            running[task] = ("dense", seed)
        while running:
            for future in _next_finished(running):
                kind, what = running.pop(future)
                bar.update(1)
                label = f"dense seed {what}" if kind == "dense" else what.label()
                exc = future.exception()
                if exc is not None:
                    skipped = f" (its {len(todo[what])} runs skipped)" if kind == "dense" else ""
                    errors.append(f"{label}: {type(exc).__name__}: {exc}{skipped}")
                    tqdm.write(f"error: {errors[-1]}", sys.stderr)
                    bar.update(len(todo[what]) if kind == "dense" else 0)
                    continue
                bar.set_postfix_str(label)
                if kind == "dense":
                    for key in todo[what]:
                        task = executor.submit(_run_one, prune_fn, plan, key, root, show_each)
                        running[task] = ("run", key)
                else:
                    done[what] = future.result()
                    ran += 1
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        bar.close()
    executor.shutdown()
    records = [done[key] for key in plan.keys() if key in done]
    return CompareOutcome(records, ran=ran, reused=len(records) - ran, errors=errors)

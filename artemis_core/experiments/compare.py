"""The comparison harness: strategies × targets × seeds on one model and dataset.

The dense baseline is trained once per seed and reused by every run of that seed. Each
run stores its own result file as soon as it finishes (in the worker process that ran
it), so an interrupted comparison resumes where it stopped. A run is keyed by every
setting that changes it (:meth:`ComparePlan.config`), so a stored run is reused only when
all of them match. After the plan's runs, a strategy that cannot reach a target is run
once more at the weight sparsity of the best HE-aware run of that target (matched
sparsity, :func:`matched_plans`). The training functions are
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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..errors import ArtemisError
from ..io import jsonable
from ..learning.catalog import Split
from ..registry import get
from ..version import __version__
from .results import (
    STATUS_FAILED,
    ResultError,
    ResultStore,
    RunKey,
    RunRecord,
    lam_text,
    settings_digest,
    sparsity_target,
)
from .selection import choose_lams

#: ``train_dense(model, dataset, seed, epochs, out, data_root=None, progress=True,
#: split=None, augment=False)``
DenseFn = Callable[..., Mapping[str, Any]]
#: ``prune_run(strategy, target, dense_checkpoint, seed, out=None, progress=True,
#: config=None, data_root=None, split=None) -> metrics``
PruneFn = Callable[..., Mapping[str, Any]]


def regularized(strategy: str) -> bool:
    """Whether ``strategy`` has a regularized phase (so λ changes its runs)."""
    return bool(get("strategy", strategy).regularized)


@dataclass(frozen=True)
class ComparePlan:
    """What a comparison runs: every strategy × target × seed × λ on one model and dataset.

    ``prune`` holds the pipeline's :class:`~artemis_core.pruning.pipeline.PruneConfig`
    fields (empty: its defaults); ``lams`` the λ grid of the regularized strategies
    (empty: ``prune``'s λ). ``matched`` names the run whose sparsity a matched-sparsity
    plan reproduces (``{"matched_strategy": ..., "matched_target": ...}``).
    """

    model: str
    dataset: str
    strategies: tuple[str, ...]
    targets: tuple[str, ...]
    seeds: tuple[int, ...]
    dense_epochs: int | None = None
    data_root: str | None = None
    lams: tuple[float, ...] = ()
    prune: Mapping[str, Any] = field(default_factory=dict)
    split: Split = Split()
    matched: Mapping[str, str] = field(default_factory=dict)

    def lams_for(self, strategy: str) -> tuple[float | None, ...]:
        """The λ values a strategy runs with (one ``None`` when λ does not change it)."""
        return self.lams if self.lams and regularized(strategy) else (None,)

    def keys(self) -> list[RunKey]:
        """Every run, seed-major (so one seed's runs can start once its dense model exists)."""
        return [self.key(s, t, seed, lam) for seed in self.seeds for s in self.strategies
                for t in self.targets for lam in self.lams_for(s)]

    def key(self, strategy: str, target: str, seed: int, lam: float | None = None) -> RunKey:
        """The key of one run: its names, λ, and the digest of its :meth:`config`."""
        config = jsonable(self._config(strategy, lam))
        return RunKey(self.model, self.dataset, strategy, target, seed, lam_text(lam),
                      settings_digest(config))

    def _config(self, strategy: str, lam: float | None) -> dict[str, Any]:
        prune = dict(self.prune)
        if lam is not None:
            prune["lam"] = lam
        elif not regularized(strategy):
            prune.pop("lam", None)  # λ does not change a run without a regularized phase
        return {**self.dense_config(), **prune, **self.matched}

    def config(self, key: RunKey) -> dict[str, Any]:
        """Every setting that changes the run ``key``: the dense model's, the pipeline's
        (λ, cap, epochs, schedule, group cost, cost model, N, augmentation, ...), the
        split, the package version; a stored run is reused only when all match. Plain
        JSON values: what the run's file holds."""
        return jsonable(self._config(key.strategy, float(key.lam) if key.lam else None))

    def dense_config(self) -> dict[str, Any]:
        """The settings that change the dense model of a seed."""
        return {"dense_epochs": self.dense_epochs, "validation": self.split.validation,
                "split_seed": self.split.seed, "augment": bool(self.prune.get("augment", False)),
                "artemis_version": __version__}

    def prune_options(self, key: RunKey) -> dict[str, Any]:
        """Keyword arguments of ``prune_run`` for ``key`` (besides where it writes)."""
        config = dict(self.prune) | ({"lam": float(key.lam)} if key.lam else {})
        return {"config": config, "data_root": self.data_root, "split": self.split}

    def dense_options(self) -> dict[str, Any]:
        """Keyword arguments of ``train_dense`` (besides the seed and where it writes)."""
        return {"data_root": self.data_root, "split": self.split,
                "augment": bool(self.prune.get("augment", False))}


def dense_checkpoint(root: Path, plan: ComparePlan, seed: int) -> Path:
    """Where a comparison keeps the dense baseline of one seed (keyed by its settings)."""
    digest = settings_digest(plan.dense_config())
    return Path(root) / "dense" / f"{plan.model}__{plan.dataset}__seed{seed}__{digest}.pt"


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
    dense_fn(plan.model, plan.dataset, seed, plan.dense_epochs, out, progress=progress,
             **plan.dense_options())


def _run_one(prune_fn: PruneFn, plan: ComparePlan, key: RunKey, root: Path,
             progress: bool) -> RunRecord:
    """Run one pruning job and store its result file (in whichever process runs it)."""
    checkpoint = dense_checkpoint(root, plan, key.seed)
    start = time.perf_counter()
    try:
        metrics = prune_fn(key.strategy, key.target, checkpoint, key.seed,
                           out=pruned_checkpoint(root, key), progress=progress,
                           **plan.prune_options(key))
        record = RunRecord(key, plan.config(key), jsonable(dict(metrics)),
                           time.perf_counter() - start, artemis_version=__version__)
    except ArtemisError as exc:
        # A user-level outcome (e.g. a bad setting for this model) is a result too:
        # store it so a resumed comparison does not retry it forever.
        record = RunRecord(key, plan.config(key), {}, time.perf_counter() - start,
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


def _stored(store: ResultStore, plan: ComparePlan, keys: Iterable[RunKey],
            warn: Callable[[str], None]) -> dict[RunKey, RunRecord]:
    """Runs already stored; refuses a file whose settings do not match its key's digest
    (edited by hand)."""
    found = {}
    for key in keys:
        config = plan.config(key)
        try:
            record = store.get(key)
        except ResultError as exc:
            warn(f"warning: {exc}; running it again")
            continue
        if record is None:
            continue
        if dict(record.config) != dict(config):
            raise ArtemisError(
                f"{store.path(key)} holds settings {dict(record.config)}, not the ones its "
                f"name stands for ({config}); it was edited: delete it to run it again")
        found[key] = record
    return found


def matched_plans(plan: ComparePlan, records: Iterable[RunRecord]) -> list[ComparePlan]:
    """One plan per (seed, target) where a strategy did not reach the target: those
    strategies again at the weight sparsity of that target's best HE-aware run (the
    ``he_aware`` strategy whose chosen λ has the best validation accuracy)."""
    chosen = [r for r in choose_lams(records) if r.ok and not r.key.target.endswith("%")]
    plans = []
    for seed in plan.seeds:
        for target in plan.targets:
            here = [r for r in chosen if r.key.seed == seed and r.key.target == target]
            short = [r.key.strategy for r in here if r.metrics.get("reached") is False]
            aware = [r for r in here if r.metrics.get("reached", True)
                     and get("strategy", r.key.strategy).he_aware]
            if not short or not aware:
                continue
            best = max(aware, key=lambda r: r.metrics.get("val_accuracy") or 0.0)
            plans.append(replace(
                plan, strategies=tuple(short), seeds=(seed,),
                targets=(sparsity_target(best.metrics["sparsity"]),),
                matched={"matched_strategy": best.key.strategy, "matched_target": target}))
    return plans


def run_comparison(plan: ComparePlan, root: str | Path, dense_fn: DenseFn, prune_fn: PruneFn,
                   *, jobs: int = 1, progress: bool = True) -> CompareOutcome:
    """Run every run of ``plan`` not yet stored under ``root`` in ``jobs`` processes, then
    its :func:`matched_plans` (runs at matched sparsity), and return them all.

    A run that raises an :class:`ArtemisError` is stored as failed; any other exception
    is reported in ``errors`` (nothing stored, so the next call retries it) while the
    other runs go on. The dense model of a seed is trained only if one of its runs is
    missing.
    """
    if jobs < 1:
        raise ArtemisError(f"--jobs {jobs}: must be at least 1")
    outcome = _execute(plan, Path(root), dense_fn, prune_fn, jobs, progress)
    if plan.matched:
        return outcome
    for matched in matched_plans(plan, outcome.records):
        more = _execute(matched, Path(root), dense_fn, prune_fn, jobs, progress)
        outcome = CompareOutcome(outcome.records + more.records, outcome.ran + more.ran,
                                 outcome.reused + more.reused, outcome.errors + more.errors)
    return outcome


def _execute(plan: ComparePlan, root: Path, dense_fn: DenseFn, prune_fn: PruneFn, jobs: int,
             progress: bool) -> CompareOutcome:
    """The runs of one plan (see :func:`run_comparison`)."""
    store = ResultStore(root)
    root.mkdir(parents=True, exist_ok=True)
    done = _stored(store, plan, plan.keys(), lambda msg: tqdm.write(msg, sys.stderr))
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
            out = dense_checkpoint(root, plan, seed)
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

"""The comparison harness: strategies × targets × seeds on one model and dataset.

The dense baseline is trained once per seed and shared with every run of that seed. Runs
execute on an :mod:`~artemis_core.experiments.executors` executor (local processes or
Ray) and return their results; this process stores each result file as soon as it
arrives, so an interrupted comparison resumes where it stopped. A run is keyed by every
setting that changes it (:meth:`ComparePlan.config`), so a stored run is reused only when
all of them match. After the plan's runs, a strategy that cannot reach a target is run
once more at the weight sparsity of the best HE-aware run of that target (matched
sparsity, :func:`matched_plans`). The training functions are
parameters (the CLI passes :mod:`artemis_core.pruning.pipeline`'s), so the scheduling, storing
and resuming are tested with small deterministic runners.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..errors import ArtemisError, PluginError
from ..io import atomic_write, jsonable
from ..learning.catalog import Split
from ..registry import get
from ..version import __version__
from .executors import Executor, Finished, InlineExecutor, Task, local_executor
from .results import (
    STATUS_ERROR,
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
                "train_subset": self.prune.get("train_subset"), "artemis_version": __version__}

    def prune_options(self, key: RunKey) -> dict[str, Any]:
        """Keyword arguments of ``prune_run`` for ``key`` (besides where it writes)."""
        config = dict(self.prune) | ({"lam": float(key.lam)} if key.lam else {})
        return {"config": config, "data_root": self.data_root, "split": self.split}

    def dense_options(self) -> dict[str, Any]:
        """Keyword arguments of ``train_dense`` (besides the seed and where it writes)."""
        return {"data_root": self.data_root, "split": self.split,
                "augment": bool(self.prune.get("augment", False)),
                "train_subset": self.prune.get("train_subset")}


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


def work_name(root: Path) -> str:
    """The name of a comparison's scratch directory on every worker machine: a digest of
    its result directory (see :func:`work_dir`)."""
    return hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:16]


def work_dir(work: str) -> Path:
    """The scratch directory named ``work`` in this machine's temporary directory: tasks
    keep their unfinished training state there (one folder per task, named by its
    settings), so a run started again on the same machine resumes from its last epoch."""
    return Path(tempfile.gettempdir()) / "artemis-work" / work


def train_dense_task(dense_fn: DenseFn, plan: ComparePlan, seed: int, work: str,
                     progress: bool) -> bytes:
    """Train the dense model of ``seed`` in the worker's scratch directory; returns its
    checkpoint's bytes."""
    scratch = work_dir(work) / dense_checkpoint(Path(), plan, seed).stem
    out = scratch / "dense.pt"
    dense_fn(plan.model, plan.dataset, seed, plan.dense_epochs, out, progress=progress,
             **plan.dense_options())
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
    checkpoint = dense_checkpoint(scratch, plan, key.seed)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.write_bytes(dense)
    out = scratch / "pruned.pt"
    start = time.perf_counter()
    try:
        metrics = prune_fn(key.strategy, key.target, checkpoint, key.seed, out=out,
                           progress=progress, **plan.prune_options(key))
    except PluginError:
        raise  # the driver found the plugin: this worker's installation lacks it (retry)
    except ArtemisError as exc:
        # A user-level outcome (e.g. a bad setting for this model) is a result too:
        # stored, so a resumed comparison does not retry it forever.
        shutil.rmtree(scratch)
        return RunRecord(key, plan.config(key), {}, time.perf_counter() - start,
                         status=STATUS_FAILED, error=f"{type(exc).__name__}: {exc}",
                         artemis_version=__version__), None
    record = RunRecord(key, plan.config(key), jsonable(dict(metrics)),
                       time.perf_counter() - start, artemis_version=__version__)
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
        record = RunRecord(key, plan.config(key), status=STATUS_ERROR, error=item.error,
                           artemis_version=__version__)
    store.save(record)
    return record


def _stored(store: ResultStore, plan: ComparePlan, keys: Iterable[RunKey],
            warn: Callable[[str], None]) -> dict[RunKey, RunRecord]:
    """Runs already stored (not those that crashed: they run again); refuses a file whose
    settings do not match its key's digest (edited by hand)."""
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
        if record.status != STATUS_ERROR:
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
                   *, jobs: int = 1, executor: Executor | None = None,
                   progress: bool = True) -> CompareOutcome:
    """Run every run of ``plan`` not yet stored under ``root``, then its
    :func:`matched_plans` (runs at matched sparsity), on ``executor`` (default:
    :func:`local_executor` of ``jobs``), which this call closes; return them all.

    Workers return checkpoints and records; this process alone writes them, each as it
    arrives, so a killed comparison loses only the runs in flight. A run that raises an
    :class:`ArtemisError` is stored as failed; one that raises anything else or whose
    worker dies is stored with status ``error`` and its reason, reported in ``errors``
    and retried by the next call, while the other runs go on. The dense model of a seed
    is trained only if one of its runs is missing and it is not stored yet.
    """
    executor = executor or local_executor(jobs)
    root = Path(root)
    with executor:
        outcome = _execute(plan, root, dense_fn, prune_fn, executor, progress)
        for matched in [] if plan.matched else matched_plans(plan, outcome.records):
            more = _execute(matched, root, dense_fn, prune_fn, executor, progress)
            outcome = CompareOutcome(outcome.records + more.records, outcome.ran + more.ran,
                                     outcome.reused + more.reused,
                                     outcome.errors + more.errors)
    # Every task ended: what is left in this machine's scratch directory is stale.
    shutil.rmtree(work_dir(work_name(root)), ignore_errors=True)
    return outcome


def _execute(plan: ComparePlan, root: Path, dense_fn: DenseFn, prune_fn: PruneFn,
             executor: Executor, progress: bool) -> CompareOutcome:
    """The runs of one plan (see :func:`run_comparison`)."""
    store = ResultStore(root)
    root.mkdir(parents=True, exist_ok=True)
    done = _stored(store, plan, plan.keys(), lambda msg: tqdm.write(msg, sys.stderr))
    reused = len(done)
    todo: dict[int, list[RunKey]] = {}
    for key in plan.keys():
        if key not in done:
            todo.setdefault(key.seed, []).append(key)
    work = work_name(root)
    # Each job's own progress bars only make sense when jobs do not run side by side.
    show_each = progress and isinstance(executor, InlineExecutor)

    def submit_runs(seed: int, dense: bytes) -> None:
        shared = executor.share(dense)
        for key in todo[seed]:
            executor.submit(Task(key, prune_task, (prune_fn, plan, key, shared, work, show_each)))

    errors: list[str] = []
    ran = 0
    bar = tqdm(total=len(todo) + sum(map(len, todo.values())), desc="compare", unit="job",
               file=sys.stderr, disable=not progress, dynamic_ncols=True)
    try:
        for seed in todo:
            stored = dense_checkpoint(root, plan, seed)
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
                _save_bytes(dense_checkpoint(root, plan, seed), item.value)
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
    records = [done[key] for key in plan.keys() if key in done]
    return CompareOutcome(records, ran=ran, reused=reused, errors=errors)

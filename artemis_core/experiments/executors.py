"""Where a sweep's tasks run: local worker processes (the default) or a Ray cluster.

An executor takes :class:`Task` s — a picklable callable, its arguments, and the CPUs (and
GPUs) one call needs — and yields a :class:`Finished` for each in the calling process (the
*driver*) as it ends. Tasks return what they made instead of writing it, so only the driver
writes to a result directory and workers on other machines need no shared filesystem. A
task that raises, or whose worker dies, comes back with the reason in ``error``; the other
tasks go on. Leaving the ``with`` block by an exception (Ctrl-C included) cancels what is
still outstanding.

    with local_executor(jobs=2) as executor:          # or RayExecutor(address="auto")
        dense = executor.share(checkpoint_bytes)      # stored once, passed to many tasks
        for seed in seeds:
            executor.submit(Task(seed, train_one, (dense, seed)))
        for done in executor.finished():
            store(done.tag, done.value) if done.ok else report(done.tag, done.error)
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from ..errors import ArtemisError

EXECUTORS = ("local", "ray")
RAY_EXTRA = "pip install 'artemis-he[ray]'"
#: How long a cancelled Ray sweep waits for its tasks to be stopped.
CANCEL_SECONDS = 10


@dataclass(frozen=True)
class Task:
    """One call ``fn(*args)`` to run in a worker, known to the driver by ``tag``.

    ``cpus`` is the number of cores the call may use (its torch threads; Ray reserves that
    many), ``None`` for the executor's share per task; ``gpus`` the GPUs Ray reserves for it.
    """

    tag: Hashable
    fn: Callable[..., Any]
    args: tuple = ()
    cpus: int | None = None
    gpus: float = 0


@dataclass(frozen=True)
class Finished:
    """A task that ended: what it returned, or why it did not (``"TypeName: message"``)."""

    tag: Hashable
    value: Any = None
    error: str = ""

    @property
    def ok(self) -> bool:
        """True when the task returned normally."""
        return not self.error


def available_cores() -> int:
    """CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def describe(exc: BaseException) -> str:
    """``"TypeName: first line of the message"``: how a failed task is reported."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def run_task(fn: Callable[..., Any], threads: int | None, *args: Any) -> Any:
    """Run ``fn(*args)`` in a worker with ``threads`` torch threads (workers share the
    cores: more threads than a task's share only thrash)."""
    if threads is not None:
        torch = sys.modules.get("torch")
        if torch is None:  # torch reads it when the task imports it
            os.environ["OMP_NUM_THREADS"] = str(threads)
        else:
            torch.set_num_threads(threads)
    return fn(*args)


class Executor(ABC):
    """Runs :class:`Task` s and hands their outcomes back to the driver as they end."""

    def __init__(self) -> None:
        self._order: dict[Any, Hashable] = {}  # handle -> tag, in submission order

    @abstractmethod
    def submit(self, task: Task) -> None:
        """Queue ``task``; it may start at once."""

    def share(self, value: Any) -> Any:
        """A stand-in for ``value`` to pass as a task argument to many tasks: the task
        receives ``value`` itself, which Ray stores once in its object store."""
        return value

    @abstractmethod
    def finished(self) -> Iterator[Finished]:
        """Each outstanding task as it ends, until none is left (tasks submitted while
        iterating included)."""

    @abstractmethod
    def cancel(self) -> None:
        """Drop every outstanding task and release the workers without waiting (running
        tasks are stopped where possible)."""

    @abstractmethod
    def close(self) -> None:
        """Release the workers once every task has ended."""

    @property
    def pending(self) -> int:
        """Tasks submitted and not yet yielded by :meth:`finished`."""
        return len(self._order)

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 trace: TracebackType | None) -> None:
        if exc is None:
            self.close()
        else:
            self.cancel()


class InlineExecutor(Executor):
    """``--jobs 1``: tasks run one by one in this process, oldest first, when
    :meth:`finished` asks for the next (nothing pickled; Ctrl-C stops at once)."""

    def submit(self, task: Task) -> None:
        self._order[object()] = task

    def finished(self) -> Iterator[Finished]:
        while self._order:
            handle = next(iter(self._order))
            task = self._order.pop(handle)
            try:
                value = task.fn(*task.args)
            except Exception as exc:  # Ctrl-C (not an Exception) propagates
                yield Finished(task.tag, error=describe(exc))
            else:
                yield Finished(task.tag, value)

    def cancel(self) -> None:
        self._order.clear()

    def close(self) -> None:
        self._order.clear()


class PoolExecutor(Executor):
    """``--jobs N``: N spawned worker processes, each task with ``cores // N`` threads.
    A worker that dies fails the tasks it held and the pool is started again."""

    def __init__(self, jobs: int) -> None:
        super().__init__()
        self.jobs = jobs
        self.threads = max(1, available_cores() // jobs)
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, task: Task) -> None:
        call = functools.partial(run_task, task.fn, task.cpus or self.threads, *task.args)
        try:
            future = self._pool.submit(call)
        except BrokenProcessPool:
            self._pool.shutdown(wait=False)
            self._pool = self._start()
            future = self._pool.submit(call)
        self._order[future] = task.tag

    def finished(self) -> Iterator[Finished]:
        while self._order:
            done, _ = wait(self._order, return_when=FIRST_COMPLETED)
            # Submission order among the finished ones: reproducible logs and progress.
            for future in [f for f in self._order if f in done]:
                yield self._outcome(future, self._order.pop(future))

    @staticmethod
    def _outcome(future: Future, tag: Hashable) -> Finished:
        exc = future.exception()
        if exc is None:
            return Finished(tag, future.result())
        if isinstance(exc, BrokenProcessPool):
            return Finished(tag, error="worker process died (killed, or out of memory)")
        return Finished(tag, error=describe(exc))

    def cancel(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._order.clear()

    def close(self) -> None:
        self._pool.shutdown()


def local_executor(jobs: int) -> Executor:
    """The default executor: in this process for one job, else a pool of ``jobs``."""
    if jobs < 1:
        raise ArtemisError(f"--jobs {jobs}: must be at least 1")
    return InlineExecutor() if jobs == 1 else PoolExecutor(jobs)


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise ArtemisError(f"--executor ray needs Ray: {RAY_EXTRA}") from None
    return ray


class RayExecutor(Executor):
    """Each task is one Ray task with its CPUs and GPUs declared.

    With ``address`` (``"auto"`` or ``HOST:PORT``) it joins that cluster; otherwise it
    starts a local Ray instance of ``cpus`` CPUs and stops it on :meth:`close`. When this
    process is already connected (``ray.init`` called before), that connection is used and
    left open. A task whose worker dies is not retried: it comes back failed.
    """

    def __init__(self, address: str | None = None, cpus: int | None = None,
                 cpus_per_task: int = 1) -> None:
        super().__init__()
        self._ray = import_ray()
        self.cpus_per_task = cpus_per_task
        self._owner = not self._ray.is_initialized()
        if self._owner:
            options = {"address": address} if address else {
                "num_cpus": cpus or available_cores(), "include_dashboard": False}
            try:
                self._ray.init(**options, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ArtemisError(f"--ray-address {address}: {describe(exc)}") from None
        self._remote = self._ray.remote(run_task)

    def share(self, value: Any) -> Any:
        return self._ray.put(value)

    def submit(self, task: Task) -> None:
        cpus = task.cpus or self.cpus_per_task
        ref = self._remote.options(num_cpus=cpus, num_gpus=task.gpus, max_retries=0).remote(
            task.fn, cpus, *task.args)
        self._order[ref] = task.tag

    def finished(self) -> Iterator[Finished]:
        while self._order:
            (ref,), _ = self._ray.wait(list(self._order), num_returns=1)
            yield self._outcome(ref, self._order.pop(ref))

    def _outcome(self, ref: Any, tag: Hashable) -> Finished:
        errors = self._ray.exceptions
        try:
            return Finished(tag, self._ray.get(ref))
        except errors.RayTaskError as exc:  # the task raised: report what it raised
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            return Finished(tag, error=describe(cause))
        except errors.RayError as exc:  # the worker or its node died
            return Finished(tag, error=f"worker died: {describe(exc)}")

    def cancel(self) -> None:
        refs = list(self._order)
        self._order.clear()
        # A task handed to a worker just as the cancel arrives can miss it and run on:
        # cancel again whatever has not ended, for a few seconds at most.
        deadline = time.monotonic() + CANCEL_SECONDS
        while refs and time.monotonic() < deadline:
            for ref in refs:
                self._ray.cancel(ref, force=True)
            _, refs = self._ray.wait(refs, num_returns=len(refs), timeout=0.5)
        self.close()

    def close(self) -> None:
        if self._owner:
            self._ray.shutdown()


def make_executor(kind: str, jobs: int | None = None, ray_address: str | None = None
                  ) -> Executor:
    """The executor the ``--executor``, ``--jobs`` and ``--ray-address`` options ask for
    (checked before anything starts)."""
    if kind not in EXECUTORS:
        raise ArtemisError(f"--executor {kind!r}; allowed: {', '.join(EXECUTORS)}")
    if jobs is not None and jobs < 1:
        raise ArtemisError(f"--jobs {jobs}: must be at least 1")
    if kind == "local":
        if ray_address:
            raise ArtemisError("--ray-address needs --executor ray")
        return local_executor(jobs or 1)
    if ray_address and jobs is not None:
        raise ArtemisError("--jobs sets the CPUs of a local Ray instance; with --ray-address "
                           "the cluster's CPUs decide (drop --jobs)")
    return RayExecutor(ray_address, cpus=jobs)

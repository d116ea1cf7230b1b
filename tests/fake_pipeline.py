"""Small deterministic stand-ins for the pipeline's ``train_dense`` / ``prune_run``, used
to test the harness's scheduling, storing and reporting without training anything.

Top-level functions, so ``--jobs N`` worker processes (spawn) and Ray workers can unpickle
them. Every call appends one line to ``calls.log`` in its ``data_root`` (the tests pass
the comparison's directory), so tests can count what ran, across processes.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from artemis_core.experiments.results import RunKey, RunRecord
from artemis_core.he.specs import OpCount

DENSE_ROTATIONS = 120
DENSE_ACCURACY = 0.95
#: Accuracy lost per unit of rotation reduction, by strategy (diagonal loses least).
SLOPE = {"diagonal": 0.004, "hybrid": 0.006, "positional": 0.01, "random": 0.03}


def _log(root: str | None, line: str) -> None:
    if root is None:
        raise ValueError("the fake pipeline logs to data_root: give one")
    with open(Path(root) / "calls.log", "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def calls(root: Path) -> list[str]:
    """Lines logged by the fake runners under ``root``."""
    log = Path(root) / "calls.log"
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def fake_metrics(strategy: str, target: str, seed: int, lam: float | None = None) -> dict:
    """What the fake ``prune_run`` returns: exactly a factor target, accuracy by strategy
    (and λ: validation and test accuracy peak at λ = 1); a sparsity target ("50%") gives
    a reduction of 1.5x."""
    factor = 1.5 if target.endswith("%") else float(target.rstrip("x"))
    rotations = math.ceil(DENSE_ROTATIONS / factor)
    accuracy = (DENSE_ACCURACY - SLOPE.get(strategy, 0.02) * factor - 0.002 * seed
                - 0.01 * abs(math.log2(lam or 1)))
    ops = OpCount(input_rotations=rotations, pmult=4 * rotations, adds=5 * rotations,
                  rescales=7, rotation_steps=frozenset(range(1, rotations // 2 + 1)))
    return {
        "model": "small-cnn", "dataset": "synthetic", "accuracy": accuracy,
        "val_accuracy": accuracy + 0.001, "sparsity": 0.5 + 0.1 * factor, "reached": True,
        "dense_accuracy": DENSE_ACCURACY, "rotations": rotations,
        "dense_rotations": DENSE_ROTATIONS, "rotation_reduction": DENSE_ROTATIONS / rotations,
        "pmult": ops.pmult, "adds": ops.adds, "rescales": ops.rescales, "keys": ops.keys,
        "key_bytes": ops.keys * 2**20, "wall_seconds": 0.01, "ops": ops.as_dict(),
    }


def fake_record(strategy: str, target: str, seed: int, model: str = "small-cnn",
                dataset: str = "synthetic") -> RunRecord:
    """A stored-run record with :func:`fake_metrics`."""
    return RunRecord(RunKey(model, dataset, strategy, target, seed),
                     {"dense_epochs": None, "prune_epochs": None},
                     fake_metrics(strategy, target, seed), wall_seconds=1.0 + seed)


def fake_train_dense(model, dataset, seed, epochs, out, data_root=None, progress=True,
                     split=None, augment=False, train_subset=None) -> dict:
    """Writes a placeholder checkpoint at ``out`` and logs the call."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"{model} {dataset} {seed}")
    _log(data_root, f"dense {seed} pid={os.getpid()}")
    return {"accuracy": DENSE_ACCURACY, "rotations": DENSE_ROTATIONS}


def fake_prune_run(strategy, target, dense_checkpoint, seed, out=None, progress=True,
                   config=None, data_root=None, split=None) -> dict:
    """Checks the dense checkpoint exists, logs the call, returns :func:`fake_metrics`."""
    dense_checkpoint = Path(dense_checkpoint)
    if not dense_checkpoint.exists():
        raise FileNotFoundError(dense_checkpoint)
    lam = (config or {}).get("lam")
    lam_note = f" lam={lam:g}" if lam is not None else ""
    _log(data_root, f"run {strategy} {target} {seed}{lam_note} pid={os.getpid()}")
    return fake_metrics(strategy, target, seed, lam)


def slow_fake_prune_run(*args, **kwargs) -> dict:
    """:func:`fake_prune_run` that takes a moment, so a test can kill it halfway."""
    time.sleep(0.2)
    return fake_prune_run(*args, **kwargs)


def crashing_prune_run(strategy, *args, **kwargs) -> dict:
    """:func:`fake_prune_run` that raises (a bug in a plugin) for the positional strategy."""
    if strategy == "positional":
        raise RuntimeError("bug in a plugin")
    return fake_prune_run(strategy, *args, **kwargs)


def dying_prune_run(strategy, *args, **kwargs) -> dict:
    """:func:`fake_prune_run` whose process dies (as if killed) for the positional strategy."""
    if strategy == "positional":
        os._exit(3)
    return fake_prune_run(strategy, *args, **kwargs)


def sleepy_prune_run(*args, **kwargs) -> dict:
    """:func:`fake_prune_run` that takes two minutes: only cancelling stops it in time."""
    time.sleep(120)
    return fake_prune_run(*args, **kwargs)

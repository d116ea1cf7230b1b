"""Comparison results on disk: one versioned JSON file per run, written atomically.

A result directory holds one ``*.json`` file per run: (model, dataset, strategy, target,
seed, λ) and a digest of every other setting that changes the run (:func:`settings_digest`),
so a stored run is reused only when all of them match. Files are written to a temporary
name and moved into place with ``os.replace``, so a file is either complete or absent: an
interrupted comparison resumes by skipping the runs whose file exists, and loses nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import ArtemisError
from ..he.specs import OpCount
from ..io import write_json_atomic

SCHEMA = "artemis.result"
#: 2: the key holds ``lam`` and ``settings`` (a digest of the run's config).
SCHEMA_VERSION = 2
STATUS_OK = "ok"
STATUS_FAILED = "failed"
#: Metrics every successful run stores (the pipeline's ``prune_run`` returns them).
REQUIRED_METRICS = (
    "accuracy", "dense_accuracy", "rotations", "dense_rotations", "rotation_reduction",
    "pmult", "keys", "key_bytes",
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class ResultError(ArtemisError):
    """A result file that cannot be read: corrupt, foreign, or from a newer schema."""


def canonical_target(text: str) -> str:
    """One spelling per target, so a run is stored once: ``"2.0X"`` -> ``"2x"``, ``"0120"``
    -> ``"120"``. The grammar (factor ``Nx`` or rotation count ``N``) is the pipeline's."""
    from ..pruning.budget import parse_target  # torch-heavy: only commands that run pruning need it

    target = parse_target(text)
    if target.factor is not None:
        return f"{target.factor:g}x"
    if target.sparsity is not None:
        return sparsity_target(target.sparsity)
    return str(target.rotations)


def sparsity_target(fraction: float) -> str:
    """The canonical weight-sparsity target of ``fraction`` (0.9123 -> ``"91.2%"``)."""
    return f"{round(100 * fraction, 1):g}%"


def target_sort_key(target: str) -> tuple[int, float]:
    """Canonical targets from least to most pruning: factors ascending, then rotation
    counts descending, then sparsities ascending."""
    if target.endswith("x"):
        return (0, float(target[:-1]))
    if target.endswith("%"):
        return (2, float(target[:-1]))
    return (1, -float(target))


def settings_digest(settings: Mapping[str, Any]) -> str:
    """A short digest of a run's settings (canonical JSON): equal only when all match."""
    text = json.dumps(dict(settings), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def lam_text(lam: float | None) -> str:
    """λ as it appears in a key: ``""`` when the strategy has no regularized phase."""
    return "" if lam is None else f"{lam:g}"


@dataclass(frozen=True, order=True)
class RunKey:
    """What identifies one run of a comparison."""

    model: str
    dataset: str
    strategy: str
    target: str
    seed: int
    #: λ of the regularized phase (:func:`lam_text`; empty for strategies without one).
    lam: str = ""
    #: :func:`settings_digest` of the run's config (empty in files of schema 1).
    settings: str = ""

    @property
    def file_name(self) -> str:
        """The run's file name inside a result directory (readable and unique)."""
        parts = [self.model, self.dataset, self.strategy, self.target, f"seed{self.seed}"]
        parts += [f"lam{self.lam}"] * bool(self.lam) + [self.settings] * bool(self.settings)
        return "__".join(_UNSAFE.sub("_", p) for p in parts) + ".json"

    def label(self) -> str:
        """Short human label, e.g. ``diagonal 2x seed 0 λ=2``."""
        lam = f" λ={self.lam}" if self.lam else ""
        return f"{self.strategy} {self.target} seed {self.seed}{lam}"


@dataclass(frozen=True)
class RunRecord:
    """One stored run: its key, the options it ran with, and its metrics (or error)."""

    key: RunKey
    config: Mapping[str, Any]
    metrics: Mapping[str, Any] = field(default_factory=dict)
    wall_seconds: float = 0.0
    status: str = STATUS_OK
    error: str = ""
    artemis_version: str = ""

    @property
    def ok(self) -> bool:
        """True when the run produced metrics (not a recorded failure)."""
        return self.status == STATUS_OK

    def op_count(self) -> OpCount:
        """The pruned model's HE operation counts, rebuilt from the stored ``ops`` dict."""
        ops = self.metrics.get("ops") or {}
        names = {f.name for f in fields(OpCount)} - {"rotation_steps"}
        return OpCount(**{n: int(ops.get(n, 0)) for n in names},
                       rotation_steps=frozenset(ops.get("rotation_steps", ())))

    def to_json(self) -> dict[str, Any]:
        """The file's JSON document."""
        return {
            "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "key": asdict(self.key),
            "status": self.status, "error": self.error, "config": dict(self.config),
            "metrics": dict(self.metrics), "wall_seconds": self.wall_seconds,
            "artemis_version": self.artemis_version,
        }


def _parse_record(path: Path, doc: Any) -> RunRecord:
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ResultError(f"{path}: not an Artemis result file (no \"schema\": \"{SCHEMA}\")")
    version = doc.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ResultError(
            f"{path}: result schema version {version!r}; this Artemis reads versions "
            f"up to {SCHEMA_VERSION} (upgrade Artemis to read it)"
        )
    try:
        key = RunKey(**doc["key"])
        status = doc.get("status", STATUS_OK)
        metrics = doc.get("metrics", {})
        if status == STATUS_OK:
            missing = [m for m in REQUIRED_METRICS if not isinstance(metrics.get(m), int | float)]
            if missing:
                raise ResultError(f"{path}: missing or non-numeric metrics: {', '.join(missing)}")
        return RunRecord(
            key=key, config=doc.get("config", {}), metrics=metrics,
            wall_seconds=float(doc.get("wall_seconds", 0.0)), status=status,
            error=str(doc.get("error", "")), artemis_version=str(doc.get("artemis_version", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultError(f"{path}: malformed result file ({type(exc).__name__}: {exc})") from None


def read_record(path: Path) -> RunRecord:
    """Load one result file; any problem is a :class:`ResultError` naming the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ResultError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        doc = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultError(f"{path}: corrupt JSON ({exc})") from None
    return _parse_record(Path(path), doc)


@dataclass(frozen=True)
class LoadedResults:
    """Every readable record of a directory, and one message per file that was not."""

    records: list[RunRecord]
    problems: list[str]


class ResultStore:
    """A result directory: one JSON file per run."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: RunKey) -> Path:
        """Where the run ``key`` is stored."""
        return self.root / key.file_name

    def save(self, record: RunRecord) -> Path:
        """Store ``record`` atomically (replacing an earlier file of the same run)."""
        path = self.path(record.key)
        write_json_atomic(path, record.to_json())
        return path

    def get(self, key: RunKey) -> RunRecord | None:
        """The stored run, or None when it was never stored; a corrupt file raises."""
        path = self.path(key)
        return read_record(path) if path.exists() else None

    def load(self) -> LoadedResults:
        """Read every result file; unreadable ones become problems, the rest still load."""
        if not self.root.is_dir():
            raise ArtemisError(f"result directory {str(self.root)!r} does not exist")
        records: list[RunRecord] = []
        problems: list[str] = []
        seen: dict[RunKey, Path] = {}
        for path in sorted(self.root.glob("*.json")):
            try:
                record = read_record(path)
            except ResultError as exc:
                problems.append(str(exc))
                continue
            if record.key in seen:
                problems.append(f"{path}: same run as {seen[record.key]} ({record.key.label()})")
                continue
            seen[record.key] = path
            records.append(record)
        return LoadedResults(records, problems)

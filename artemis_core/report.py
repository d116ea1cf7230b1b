"""Comparison tables from stored runs: columns, aggregation over seeds, sorting, export.

Rows keep raw numbers under snake_case keys (what ``--format json``/``csv`` export);
:func:`render_table` formats them for people (percent, MiB, ``mean ± std``) in the other
formats.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ArtemisError
from .output import render
from .pareto import pareto_by_group
from .results import RunRecord, target_value
from .specs import OpCount

#: Estimated HE seconds of a model's op counts (see :mod:`artemis_core.latency`).
LatencyFn = Callable[[OpCount], float]

KEY_COLUMNS = ("model", "dataset", "strategy", "target", "seed")
DEFAULT_GROUP_BY = ("model", "dataset", "strategy", "target")
RUNS = "runs"
PARETO = "pareto"
STD_SUFFIX = "_std"


@dataclass(frozen=True)
class Metric:
    """A numeric column: its key, its header for people, and how one value is shown."""

    key: str
    header: str
    show: Callable[[float], str]


def _count(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


METRICS: tuple[Metric, ...] = (
    Metric("accuracy", "accuracy %", lambda v: f"{100 * v:.2f}"),
    Metric("delta_accuracy", "Δ acc (pp)", lambda v: f"{100 * v:+.2f}"),
    Metric("rotations", "rotations", _count),
    Metric("rotation_reduction", "rot. reduction ×", lambda v: f"{v:.2f}"),
    Metric("pmult", "PMult", _count),
    Metric("keys", "keys", _count),
    Metric("key_memory_bytes", "key memory (MiB)", lambda v: f"{v / 2**20:.1f}"),
    Metric("latency_s", "est. latency (s)", lambda v: f"{v:.3g}"),
    Metric("wall_s", "wall (s)", lambda v: f"{v:.1f}"),
)
_METRIC = {m.key: m for m in METRICS}
_STD_SHOWN = {"delta_accuracy": lambda v: f"{100 * v:.2f}"}  # a spread has no sign


def run_values(record: RunRecord, latency: LatencyFn | None = None) -> dict[str, Any]:
    """One successful run as raw column values (key columns + every metric)."""
    m = record.metrics
    values: dict[str, Any] = {
        "model": record.key.model, "dataset": record.key.dataset,
        "strategy": record.key.strategy, "target": record.key.target, "seed": record.key.seed,
        "accuracy": m["accuracy"], "delta_accuracy": m["accuracy"] - m["dense_accuracy"],
        "rotations": m["rotations"], "rotation_reduction": m["rotation_reduction"],
        "pmult": m["pmult"], "keys": m["keys"], "key_memory_bytes": m["key_bytes"],
        "wall_s": record.wall_seconds,
    }
    if latency is not None:
        values["latency_s"] = latency(record.op_count())
    return values


@dataclass(frozen=True)
class Table:
    """Report rows (raw values, snake_case keys) and the column order to show them in."""

    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]

    @property
    def aggregated(self) -> bool:
        """True when some row is the mean of several runs (rows then carry ``*_std``)."""
        return any(row[RUNS] > 1 for row in self.rows)

    def export_rows(self) -> list[dict[str, Any]]:
        """Rows with exactly the exported keys: the columns, plus each shown metric's
        ``_std`` right after it when runs were aggregated."""
        keys = [
            k for c in self.columns
            for k in ((c, c + STD_SUFFIX) if self.aggregated and c in _METRIC else (c,))
        ]
        return [{k: row[k] for k in keys} for row in self.rows]


def _check_names(option: str, names: Iterable[str], allowed: Sequence[str]) -> None:
    for name in names:
        if name not in allowed:
            raise ArtemisError(f"{option}: unknown column {name!r}; allowed: {', '.join(allowed)}")


def parse_sort(spec: str) -> list[tuple[str, bool]]:
    """``"rotation_reduction:desc,strategy"`` -> [(column, descending), ...]."""
    keys = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, order = part.partition(":")
        if order not in ("", "asc", "desc"):
            raise ArtemisError(f"--sort: order {order!r} in {part!r}; allowed: asc, desc")
        keys.append((name, order == "desc"))
    return keys


def _sort_value(column: str, value: Any) -> tuple:
    if value is None:
        return (1, 0)
    return (0, target_value(value) if column == "target" else value)


def _aggregate(runs: list[dict[str, Any]], group_by: Sequence[str],
               metrics: Sequence[str]) -> dict[str, Any]:
    values = np.array([[run[k] for k in metrics] for run in runs], dtype=float)
    std = values.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros(len(metrics))
    row: dict[str, Any] = {k: runs[0][k] for k in group_by}
    row[RUNS] = len(runs)
    for i, key in enumerate(metrics):
        row[key] = float(values[:, i].mean())
        row[key + STD_SUFFIX] = float(std[i])
    return row


def build_table(records: Iterable[RunRecord], *, group_by: Sequence[str] = DEFAULT_GROUP_BY,
                columns: Sequence[str] | None = None, sort: str = "",
                latency: LatencyFn | None = None) -> Table:
    """Successful runs grouped by ``group_by`` (mean ± std of every metric over the rest,
    e.g. over seeds), with a Pareto mark per row among rows of the same model and dataset.

    ``columns`` picks and orders the shown columns (default: group keys, runs, every
    metric, Pareto); ``sort`` is a :func:`parse_sort` spec (default: the group keys).
    """
    _check_names("--group-by", group_by, KEY_COLUMNS)
    group_by = tuple(dict.fromkeys(group_by))
    if not group_by:
        raise ArtemisError(f"--group-by needs at least one of: {', '.join(KEY_COLUMNS)}")
    runs = [run_values(r, latency) for r in records if r.ok]
    metrics = [m.key for m in METRICS if m.key != "latency_s" or latency is not None]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(tuple(run[k] for k in group_by), []).append(run)
    rows = [_aggregate(members, group_by, metrics) for members in groups.values()]

    comparable = [tuple(row.get(k) for k in ("model", "dataset")) for row in rows]
    marks = pareto_by_group(comparable, [r["accuracy"] for r in rows],
                            [r["rotation_reduction"] for r in rows])
    for row, mark in zip(rows, marks, strict=True):
        row[PARETO] = bool(mark)

    available = [*group_by, RUNS, *metrics, PARETO]
    per_run = "seed" in group_by  # every row is one run: a runs column says nothing
    shown = list(columns) if columns else [c for c in available if not (per_run and c == RUNS)]
    _check_names("--columns", shown, available)
    order = parse_sort(sort) or [(k, False) for k in group_by]
    _check_names("--sort", [k for k, _ in order], available)
    for key, descending in reversed(order):  # stable sorts, last key first
        rows.sort(key=lambda row, k=key: _sort_value(k, row[k]), reverse=descending)
    return Table(tuple(dict.fromkeys(shown)), tuple(rows))


def _header(column: str) -> str:
    return _METRIC[column].header if column in _METRIC else column


def _cell(row: dict[str, Any], column: str, aggregated: bool) -> str:
    value = row[column]
    if column == PARETO:
        return "*" if value else ""
    if column not in _METRIC:
        return str(value)
    text = _METRIC[column].show(value)
    spread = row[column + STD_SUFFIX]
    if aggregated and row[RUNS] > 1:
        text += " ± " + _STD_SHOWN.get(column, _METRIC[column].show)(spread)
    return text


def render_table(table: Table, fmt: str) -> str:
    """The table as ``fmt``: json/csv export raw numbers under snake_case keys; every
    tabulate format shows formatted cells under readable headers."""
    if fmt in ("json", "csv"):
        return render(table.export_rows(), fmt)
    headers = [_header(c) for c in table.columns]
    aggregated = table.aggregated
    display = [
        {_header(c): _cell(row, c, aggregated) for c in table.columns} for row in table.rows
    ]
    # Cells are pre-formatted strings: stop tabulate from re-parsing "2.00" as 2.
    align = ["right" if c in _METRIC or c in (RUNS, "seed") else "left" for c in table.columns]
    return render(display, fmt, headers, disable_numparse=True, colalign=align)

"""Comparison tables from stored runs: columns, aggregation over seeds, sorting, export.

Rows keep raw numbers under snake_case keys (what ``--format json``/``csv`` export);
:func:`render_table` formats them for people (percent, MiB, ``mean ± std``) in the other
formats.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ArtemisError
from ..he.specs import OpCount
from ..io import render, split_list
from .pareto import pareto_by_group
from .results import RunRecord, target_sort_key

#: Estimated HE seconds of a model's op counts (see :mod:`artemis_core.he.latency`).
LatencyFn = Callable[[OpCount], float]

KEY_COLUMNS = ("model", "dataset", "cost_model", "strategy", "target", "seed")
DEFAULT_GROUP_BY = ("model", "dataset", "cost_model", "strategy", "target")
#: Cost model of runs stored before it was recorded.
DEFAULT_COST_MODEL = "gazelle"
#: Metrics a run records under every registered cost model (``by_cost_model``), shown
#: side by side as ``KEY[cost model]`` columns.
COUNTED_METRICS = ("rotations", "rotation_reduction", "pmult", "keys")
RUNS = "runs"
PARETO = "pareto"
NOTE = "note"
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
    Metric("delta_accuracy", "vs dense (pp)", lambda v: f"{100 * v:+.2f}"),
    Metric("rotations", "rotations", _count),
    Metric("rotation_reduction", "rot. reduction ×", lambda v: f"{v:.2f}"),
    Metric("pmult", "PMult", _count),
    Metric("keys", "keys", _count),
    Metric("key_memory_bytes", "key memory (MiB)", lambda v: f"{v / 2**20:.1f}"),
    Metric("latency_s", "est. latency (s)", lambda v: f"{v:.3g}"),
    Metric("wall_s", "wall (s)", lambda v: f"{v:.1f}"),
)
_METRIC = {m.key: m for m in METRICS}


def _metric(column: str) -> Metric | None:
    """The metric shown in ``column``: one of :data:`METRICS`, or ``KEY[cost model]``
    (that metric counted under another cost model)."""
    if column in _METRIC:
        return _METRIC[column]
    match = re.fullmatch(r"(\w+)\[(.+)\]", column)
    if match and match.group(1) in COUNTED_METRICS:
        base = _METRIC[match.group(1)]
        return Metric(column, f"{base.header} [{match.group(2)}]", base.show)
    return None
_STD_SHOWN = {"delta_accuracy": lambda v: f"{100 * v:.2f}"}  # a spread has no sign


def run_values(record: RunRecord, latency: LatencyFn | None = None,
               cost_models: Sequence[str] = ()) -> dict[str, Any]:
    """One run as raw column values: key columns, every metric (None for a failed run),
    the run's counts under each of ``cost_models`` (``KEY[name]``; None where the run did
    not record them) and ``note`` (the failure, if any)."""
    key = record.key
    values: dict[str, Any] = {
        "model": key.model, "dataset": key.dataset,
        "cost_model": record.config.get("cost_model")
        or record.metrics.get("cost_model", DEFAULT_COST_MODEL),
        "strategy": key.strategy, "target": key.target, "seed": key.seed,
        NOTE: record.error if not record.ok else "",
    }
    side = {f"{k}[{name}]": record.metrics.get("by_cost_model", {}).get(name, {}).get(k)
            for name in cost_models for k in COUNTED_METRICS}
    if not record.ok:
        return values | dict.fromkeys(_METRIC) | side
    m = record.metrics
    return values | side | {
        "accuracy": m["accuracy"], "delta_accuracy": m["accuracy"] - m["dense_accuracy"],
        "rotations": m["rotations"], "rotation_reduction": m["rotation_reduction"],
        "pmult": m["pmult"], "keys": m["keys"], "key_memory_bytes": m["key_bytes"],
        "latency_s": latency(record.op_count()) if latency is not None else None,
        "wall_s": record.wall_seconds,
    }


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
            for k in ((c, c + STD_SUFFIX) if self.aggregated and _metric(c) else (c,))
        ]
        return [{k: row[k] for k in keys} for row in self.rows]


def _check_names(option: str, names: Iterable[str], allowed: Sequence[str]) -> None:
    for name in names:
        if name not in allowed:
            raise ArtemisError(f"{option}: unknown column {name!r}; allowed: {', '.join(allowed)}")


def parse_sort(spec: str) -> list[tuple[str, bool]]:
    """``"rotation_reduction:desc,strategy"`` -> [(column, descending), ...]."""
    keys = []
    for part in split_list(spec):
        name, _, order = part.partition(":")
        if order not in ("", "asc", "desc"):
            raise ArtemisError(f"--sort: order {order!r} in {part!r}; allowed: asc, desc")
        keys.append((name, order == "desc"))
    return keys


def _sort_value(column: str, value: Any) -> tuple:
    if value is None:
        return (1, 0)
    return (0, target_sort_key(value) if column == "target" else value)


def _aggregate(runs: list[dict[str, Any]], group_by: Sequence[str],
               metrics: Sequence[str]) -> dict[str, Any]:
    """One row: mean and sample std of each metric over the group's successful runs (None
    when all failed), and a note naming the failures."""
    ok = [run for run in runs if not run[NOTE]]
    values = np.array([[run[k] for k in metrics] for run in ok], dtype=float)
    values = values.reshape(len(ok), len(metrics))
    std = values.std(axis=0, ddof=1) if len(ok) > 1 else np.zeros(len(metrics))
    row: dict[str, Any] = {k: runs[0][k] for k in group_by}
    row[RUNS] = len(ok)
    for i, key in enumerate(metrics):
        row[key] = float(values[:, i].mean()) if ok else None
        row[key + STD_SUFFIX] = float(std[i]) if ok else None
    # The first failure stands for the rest (they differ in details such as the best
    # reduction reached, which one row per run shows).
    errors = [run[NOTE] for run in runs if run[NOTE]]
    if len(runs) == 1 or not errors:
        row[NOTE] = errors[0] if errors else ""
    else:
        row[NOTE] = f"{len(errors)} of {len(runs)} runs failed, e.g. {errors[0]}"
    return row


def build_table(records: Iterable[RunRecord], *, group_by: Sequence[str] = DEFAULT_GROUP_BY,
                columns: Sequence[str] | None = None, sort: str = "",
                latency: LatencyFn | None = None, cost_models: Sequence[str] = ()) -> Table:
    """Runs grouped by ``group_by`` (mean ± std of every metric over the rest, e.g. over
    seeds), with a Pareto mark per row among rows of the same model and dataset. A run
    that failed (e.g. a target its strategy cannot reach) is counted in its row's note.

    ``columns`` picks and orders the shown columns (default: group keys, runs, every
    metric, Pareto, and the note when a row has one); ``sort`` is a :func:`parse_sort`
    spec (default: the group keys). ``cost_models`` adds each run's rotations, reduction,
    PMult and keys under those cost models as ``KEY[name]`` columns, side by side (the
    ``cost_model`` column, the one a run was pruned under, is hidden when every row is
    gazelle's).
    """
    _check_names("--group-by", group_by, KEY_COLUMNS)
    group_by = tuple(dict.fromkeys(group_by))
    if not group_by:
        raise ArtemisError(f"--group-by needs at least one of: {', '.join(KEY_COLUMNS)}")
    runs = [run_values(r, latency, cost_models) for r in records]
    metrics = [m.key for m in METRICS if m.key != "latency_s" or latency is not None]
    metrics += [f"{k}[{name}]" for name in dict.fromkeys(cost_models) for k in COUNTED_METRICS]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(tuple(run[k] for k in group_by), []).append(run)
    rows = [_aggregate(members, group_by, metrics) for members in groups.values()]

    measured = [row for row in rows if row[RUNS]]
    marks = pareto_by_group([tuple(row.get(k) for k in ("model", "dataset")) for row in measured],
                            [r["accuracy"] for r in measured],
                            [r["rotation_reduction"] for r in measured])
    for row in rows:
        row[PARETO] = False
    for row, mark in zip(measured, marks, strict=True):
        row[PARETO] = bool(mark)

    available = [*group_by, RUNS, *metrics, PARETO, NOTE]
    hidden = {RUNS} if "seed" in group_by else set()  # one run per row: runs says nothing
    if not any(row[NOTE] for row in rows):
        hidden.add(NOTE)
    if all(row.get("cost_model", DEFAULT_COST_MODEL) == DEFAULT_COST_MODEL for row in rows):
        hidden.add("cost_model")
    shown = list(columns) if columns else [c for c in available if c not in hidden]
    _check_names("--columns", shown, available)
    order = parse_sort(sort) or [(k, False) for k in group_by]
    _check_names("--sort", [k for k, _ in order], available)
    for key, descending in reversed(order):  # stable sorts, last key first
        rows.sort(key=lambda row, k=key: _sort_value(k, row[k]), reverse=descending)
    return Table(tuple(dict.fromkeys(shown)), tuple(rows))


def _header(column: str) -> str:
    metric = _metric(column)
    return metric.header if metric else column


def _cell(row: dict[str, Any], column: str) -> str:
    value = row[column]
    if column == PARETO:
        return "*" if value else ""
    metric = _metric(column)
    if metric is None:
        return str(value)
    if value is None or value != value:  # every run failed, or none recorded it (nan)
        return "-"
    text = metric.show(value)
    spread = row[column + STD_SUFFIX]
    if spread > 0:  # runs that agree exactly (e.g. op counts) show no "± 0"
        text += " ± " + _STD_SHOWN.get(column, metric.show)(spread)
    return text


def render_table(table: Table, fmt: str) -> str:
    """The table as ``fmt``: json/csv export raw numbers under snake_case keys; every
    tabulate format shows formatted cells under readable headers."""
    if fmt in ("json", "csv"):
        return render(table.export_rows(), fmt)
    headers = [_header(c) for c in table.columns]
    display = [{_header(c): _cell(row, c) for c in table.columns} for row in table.rows]
    # Cells are pre-formatted strings: stop tabulate from re-parsing "2.00" as 2.
    align = ["right" if _metric(c) or c in (RUNS, "seed") else "left" for c in table.columns]
    return render(display, fmt, headers, disable_numparse=True, colalign=align)

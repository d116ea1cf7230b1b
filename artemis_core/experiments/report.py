"""Comparison tables from stored runs: λ chosen on validation, aggregation over seeds
(mean ± std, 95 % interval), Pareto marks, sorting, export.

Rows keep raw numbers under snake_case keys (what ``--format json``/``csv`` export);
:func:`render_table` formats them for people (percent, MiB, ``mean ± std``) in the other
formats. Every setting a run was keyed by (``lam``, ``max_sparsity``, ``reg_epochs``, ...)
is a column too; settings that differ between the runs split rows by default.
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
from .selection import choose_lams

#: Estimated HE seconds of a model's op counts (see :mod:`artemis_core.he.latency`).
LatencyFn = Callable[[OpCount], float]

KEY_COLUMNS = ("model", "dataset", "cost_model", "strategy", "target", "at", "seed")
DEFAULT_GROUP_BY = ("model", "dataset", "cost_model", "strategy", "target", "at")
#: Cost model of runs stored before it was recorded.
DEFAULT_COST_MODEL = "gazelle"
#: Metrics a run records under every registered cost model (``by_cost_model``), shown
#: side by side as ``KEY[cost model]`` columns.
COUNTED_METRICS = ("rotations", "rotation_reduction", "pmult", "keys")
RUNS = "runs"
PARETO = "pareto"
NOTE = "note"
CI = "accuracy_ci95"
OVERLAP = "overlaps"
STD_SUFFIX = "_std"
#: ``at``: the run met its target, pruned as far as it could short of it, or was pruned
#: to the sparsity of another strategy's run at the target.
AT_TARGET, AT_MAX = "target", "max reachable"
#: Rows whose rotation reductions are comparable: one Pareto front (and one rival set)
#: per model, dataset and cost model (reductions under two cost models are not).
FRONT_KEYS = ("model", "dataset", "cost_model")
#: Settings that are not split into rows by default: λ is chosen per run, the matched
#: run is named by ``at``, and best-effort is how every comparison prunes.
_NOT_GROUPED = ("lam", "matched_strategy", "matched_target", "best_effort")


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
    Metric("val_accuracy", "val. accuracy %", lambda v: f"{100 * v:.2f}"),
    Metric("delta_accuracy", "vs dense (pp)", lambda v: f"{100 * v:+.2f}"),
    Metric("rotations", "rotations", _count),
    Metric("rotation_reduction", "rot. reduction ×", lambda v: f"{v:.2f}"),
    Metric("sparsity", "sparsity %", lambda v: f"{100 * v:.1f}"),
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


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def run_values(record: RunRecord, latency: LatencyFn | None = None,
               cost_models: Sequence[str] = ()) -> dict[str, Any]:
    """One run as raw column values: key columns, ``at``, its settings, every metric
    (None for a failed run), the run's counts under each of ``cost_models``
    (``KEY[name]``; None where the run did not record them) and ``note`` (the failure,
    if any)."""
    key = record.key
    config = dict(record.config)
    m = record.metrics
    target, at = key.target, AT_TARGET
    if "matched_target" in config:
        target = config["matched_target"]
        at = f"sparsity of {config['matched_strategy']}"
    elif record.ok and m.get("reached") is False:
        at = AT_MAX
    values: dict[str, Any] = {
        **{k: v for k, v in config.items() if not isinstance(v, dict | list)},
        "lam": _number(config.get("lam")), "model": key.model, "dataset": key.dataset,
        "cost_model": config.get("cost_model") or m.get("cost_model", DEFAULT_COST_MODEL),
        "strategy": key.strategy, "target": target, "at": at, "seed": key.seed,
        NOTE: record.error if not record.ok else "",
    }
    side = {f"{k}[{name}]": record.metrics.get("by_cost_model", {}).get(name, {}).get(k)
            for name in cost_models for k in COUNTED_METRICS}
    if not record.ok:
        return values | dict.fromkeys(_METRIC) | side
    return values | side | {
        "accuracy": m["accuracy"], "delta_accuracy": m["accuracy"] - m["dense_accuracy"],
        "val_accuracy": _number(m.get("val_accuracy")), "sparsity": _number(m.get("sparsity")),
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
        return [{k: row.get(k) for k in keys} for row in self.rows]


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


def interval95(values: np.ndarray) -> list[float] | None:
    """Student-t 95 % confidence interval of the mean of ``values`` (None for fewer than 2)."""
    if len(values) < 2:
        return None
    from scipy.stats import t  # ~0.3 s to import: only reports over several seeds need it

    half = float(t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    mean = float(values.mean())
    return [mean - half, mean + half]


def _agreed(values: Iterable[Any]) -> Any:
    """The one value all runs share, or their distinct values as one text."""
    distinct = list(dict.fromkeys(values))
    if len(distinct) == 1:
        return distinct[0]
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in distinct)


def _aggregate(runs: list[dict[str, Any]], group_by: Sequence[str],
               metrics: Sequence[str], settings: Sequence[str]) -> dict[str, Any]:
    """One row: mean and sample std of each metric over the group's successful runs (None
    when none has it), the accuracy's 95 % interval, each setting (its values when they
    differ, e.g. the λ chosen per seed), and a note naming the failures."""
    ok = [run for run in runs if not run[NOTE]]
    values = np.array([[run[k] for k in metrics] for run in ok], dtype=float)
    values = values.reshape(len(ok), len(metrics))
    row: dict[str, Any] = {k: runs[0][k] for k in group_by}
    row[RUNS] = len(ok)
    for i, key in enumerate(metrics):
        column = values[:, i][~np.isnan(values[:, i])]
        row[key] = float(column.mean()) if len(column) else None
        row[key + STD_SUFFIX] = float(column.std(ddof=1)) if len(column) > 1 else (
            0.0 if len(column) else None)
    accuracy = values[:, list(metrics).index("accuracy")] if ok else np.zeros(0)
    row[CI] = interval95(accuracy)
    for key in settings:
        if key not in group_by:
            row[key] = _agreed(run.get(key) for run in (ok or runs))
    # The first failure stands for the rest (they differ in details, which one row per
    # run shows).
    errors = [run[NOTE] for run in runs if run[NOTE]]
    if len(runs) == 1 or not errors:
        row[NOTE] = errors[0] if errors else ""
    else:
        row[NOTE] = f"{len(errors)} of {len(runs)} runs failed, e.g. {errors[0]}"
    return row


def _overlaps(rows: list[dict[str, Any]]) -> None:
    """``overlaps`` of each Pareto row: the strategy with the best mean accuracy among the
    other strategies at the same target, when its 95 % interval overlaps this row's (the
    difference is then not established by these seeds)."""
    for row in rows:
        row[OVERLAP] = ""
        if not row[PARETO] or row[CI] is None:
            continue
        rivals = [r for r in rows if r[CI] is not None and r["strategy"] != row["strategy"]
                  and all(r.get(k) == row.get(k) for k in (*FRONT_KEYS, "target"))]
        if rivals:
            rival = max(rivals, key=lambda r: r["accuracy"])
            if rival[CI][0] <= row[CI][1] and row[CI][0] <= rival[CI][1]:
                row[OVERLAP] = rival["strategy"]


def build_table(records: Iterable[RunRecord], *, group_by: Sequence[str] | None = None,
                columns: Sequence[str] | None = None, sort: str = "",
                latency: LatencyFn | None = None, cost_models: Sequence[str] = ()) -> Table:
    """The λ of each strategy × target × seed chosen on validation accuracy
    (:func:`~artemis_core.experiments.selection.choose_lams`), then runs grouped by
    ``group_by`` (default: :data:`DEFAULT_GROUP_BY` plus every setting whose value differs
    between runs) with mean ± std of every metric over the rest (e.g. over seeds), the
    accuracy's 95 % interval, a Pareto mark per row among rows of the same model,
    dataset and cost model (on means), and for Pareto rows the next strategy whose
    interval overlaps. A run that failed is counted in its row's note.

    ``columns`` picks and orders the shown columns (any setting too; default: group keys,
    runs, λ, every metric, interval, Pareto, overlaps and note when a row has them);
    ``sort`` is a :func:`parse_sort` spec (default: the group keys). ``cost_models`` adds
    each run's rotations, reduction, PMult and keys under those cost models as
    ``KEY[name]`` columns, side by side (the ``cost_model`` column, the one a run was
    pruned under, is hidden when every row is gazelle's).
    """
    chosen = choose_lams(records)
    runs = [run_values(r, latency, cost_models) for r in chosen]
    metrics = [m.key for m in METRICS if m.key != "latency_s" or latency is not None]
    metrics += [f"{k}[{name}]" for name in dict.fromkeys(cost_models) for k in COUNTED_METRICS]
    settings = sorted({k for run in runs for k in run} - set(KEY_COLUMNS) - set(_METRIC)
                      - set(metrics) - {NOTE})
    if group_by is None:
        group_by = DEFAULT_GROUP_BY + tuple(
            k for k in settings if k not in _NOT_GROUPED
            and len({repr(run.get(k)) for run in runs}) > 1)
    _check_names("--group-by", group_by, (*KEY_COLUMNS, *settings))
    group_by = tuple(dict.fromkeys(group_by))
    if not group_by:
        raise ArtemisError(f"--group-by needs at least one of: {', '.join(KEY_COLUMNS)}")
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(tuple(repr(run.get(k)) for k in group_by), []).append(run)
    rows = [_aggregate(members, group_by, metrics, settings) for members in groups.values()]

    measured = [row for row in rows if row[RUNS]]
    marks = pareto_by_group([tuple(row.get(k) for k in FRONT_KEYS) for row in measured],
                            [r["accuracy"] for r in measured],
                            [r["rotation_reduction"] for r in measured])
    for row in rows:
        row[PARETO] = False
    for row, mark in zip(measured, marks, strict=True):
        row[PARETO] = bool(mark)
    _overlaps(rows)

    extra = [k for k in settings if k not in group_by and k != "lam"]
    available = [*group_by, RUNS, "lam", *metrics, CI, PARETO, OVERLAP, NOTE, *extra]
    hidden = {RUNS} if "seed" in group_by else set()  # one run per row: runs says nothing
    for column, empty in ((NOTE, ""), (OVERLAP, ""), (CI, None), ("lam", None),
                          ("at", AT_TARGET), ("cost_model", DEFAULT_COST_MODEL)):
        if all(row.get(column, empty) == empty for row in rows):
            hidden.add(column)
    shown = list(columns) if columns else [c for c in available
                                           if c not in hidden and c not in extra]
    _check_names("--columns", shown, available)
    order = parse_sort(sort) or [(k, False) for k in group_by]
    _check_names("--sort", [k for k, _ in order], available)
    for key, descending in reversed(order):  # stable sorts, last key first
        rows.sort(key=lambda row, k=key: _sort_value(k, row.get(k)), reverse=descending)
    return Table(tuple(dict.fromkeys(shown)), tuple(rows))


_HEADERS = {CI: "accuracy 95% CI", "lam": "λ"}


def _header(column: str) -> str:
    metric = _metric(column)
    return metric.header if metric else _HEADERS.get(column, column)


def _cell(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    if column == PARETO:
        return "*" if value else ""
    if column == CI:
        return "" if value is None else f"[{100 * value[0]:.2f}, {100 * value[1]:.2f}]"
    metric = _metric(column)
    if metric is None:
        if value is None:
            return "-"
        return f"{value:g}" if isinstance(value, float) else str(value)
    if value is None or value != value:  # every run failed, or none recorded it (nan)
        return "-"
    text = metric.show(value)
    spread = row.get(column + STD_SUFFIX) or 0
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
    align = ["right" if _metric(c) or c in (RUNS, "seed", "lam") else "left"
             for c in table.columns]
    return render(display, fmt, headers, disable_numparse=True, colalign=align)

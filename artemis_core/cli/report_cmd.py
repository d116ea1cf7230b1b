"""``artemis report``: re-tabulate, export and plot stored comparison results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from ..errors import ArtemisError
from ..output import format_option
from ..report import DEFAULT_GROUP_BY, LatencyFn, build_table, render_table
from ..results import ResultStore, RunRecord


def split_list(value: str | None) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def calibrated_latency(path: str | None) -> LatencyFn:
    """Estimated seconds of an op count under the calibration at ``path`` (None: the
    user's ``artemis calibrate`` file, else the shipped default)."""
    from ..latency import estimate_seconds, load_calibration

    calibration = load_calibration(path)
    return lambda ops: estimate_seconds(ops, calibration)


def warn_failed(records: Sequence[RunRecord], store: ResultStore) -> None:
    """One stderr line per stored failure (they have no metrics, so no table row)."""
    for record in records:
        if not record.ok:
            click.echo(f"warning: {record.key.label()} not in the table: {record.error} "
                       f"(delete {store.path(record.key)} to retry it)", err=True)


def table_options(function):
    """Options shared by ``compare`` and ``report``: the table's format and latency."""
    function = click.option(
        "--calibration", type=click.Path(exists=True, dir_okay=False),
        help="Per-op latencies for the estimated-latency column (default: the file "
             "`artemis calibrate` wrote, else the shipped one).")(function)
    return format_option()(function)


@click.command(epilog="""\b
Examples:
  artemis compare --strategies diagonal,positional --targets 2x --out runs/demo
  artemis report runs/demo
  artemis report runs/demo --format github --sort rotation_reduction:desc
  artemis report runs/demo --format csv --output results.csv
  artemis report runs/demo --group-by strategy,target,seed --plot front.png
""")
@click.argument("directory", type=click.Path(file_okay=False))
@table_options
@click.option("--columns", help="Comma-separated columns to show, in order (snake_case, as in "
                                "--format json), e.g. strategy,target,accuracy,pareto.")
@click.option("--sort", "sort", default="",
              help="Comma-separated columns to sort by, each optionally :desc "
                   "(default: the --group-by columns).")
@click.option("--group-by", default=",".join(DEFAULT_GROUP_BY), show_default=True,
              help="Columns that make one row; metrics are mean ± std over the other runs "
                   "(add seed for one row per run).")
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="Write the table to this file instead of stdout.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Also draw accuracy vs rotation reduction (.png, .svg or .pdf).")
def report(directory: str, fmt: str, calibration: str | None, columns: str | None, sort: str,
           group_by: str, output: str | None, plot_path: str | None) -> None:
    """Tabulate the results stored in DIRECTORY by `artemis compare`, without re-running.

    Unreadable files are named in a warning on stderr; the other results still report.
    """
    store = ResultStore(directory)
    loaded = store.load()
    for problem in loaded.problems:
        click.echo(f"warning: skipped {problem}", err=True)
    warn_failed(loaded.records, store)
    if not any(record.ok for record in loaded.records):
        raise ArtemisError(f"no results to report in {directory!r}")
    latency = calibrated_latency(calibration)
    table = build_table(loaded.records, group_by=split_list(group_by),
                        columns=split_list(columns), sort=sort, latency=latency)
    text = render_table(table, fmt)
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
    else:
        click.echo(text)
    if plot_path:
        from ..plot import plot_comparison  # matplotlib is slow to import: only when asked

        click.echo(f"plot: {plot_comparison(loaded.records, plot_path, latency)}", err=True)

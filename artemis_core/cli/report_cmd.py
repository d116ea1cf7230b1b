"""``artemis report``: re-tabulate, export and plot stored comparison results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from ..errors import ArtemisError
from ..experiments.plot import check_plot_path, plot_comparison
from ..experiments.report import DEFAULT_GROUP_BY, build_table, render_table
from ..experiments.results import ResultStore, RunRecord
from ..he.latency import Calibration, estimate_seconds, load_calibration
from ..io import split_list
from ..registry import get
from .options import format_option


def output_options(function):
    """Options shared by ``compare`` and ``report``: table format, latency, plot. The
    calibration is read and the plot's file type checked as the options are parsed, so
    a bad one fails before a comparison trains anything."""
    for option in reversed((
        format_option(),
        click.option("--calibration", type=click.Path(exists=True, dir_okay=False),
                     callback=lambda ctx, param, value: load_calibration(value),
                     help="Per-op latencies for the estimated-latency column (default: the "
                          "file `artemis calibrate` wrote, else the shipped one)."),
        click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
                     callback=lambda ctx, param, value: value and check_plot_path(value),
                     help="Also draw accuracy vs rotation reduction (.png, .svg or .pdf)."),
    )):
        function = option(function)
    return function


def show_results(records: Sequence[RunRecord], store: ResultStore, *, fmt: str,
                 calibration: Calibration, plot_path: Path | None,
                 group_by: Sequence[str] | None = None, columns: Sequence[str] = (),
                 sort: str = "", output: str | None = None,
                 cost_models: Sequence[str] = ()) -> None:
    """Print (or write to ``output``) the table of ``records`` and draw the plot if asked."""
    if not records:
        raise ArtemisError(f"no results to report in {str(store.root)!r}")
    failed = sum(not record.ok for record in records)
    if failed:
        click.echo(f"note: {failed} of {len(records)} runs failed (see the note column); they "
                   f"are stored, so a rerun skips them: delete their files in {store.root} to "
                   "retry them", err=True)

    def latency(ops):
        return estimate_seconds(ops, calibration)

    table = build_table(records, group_by=group_by, columns=columns, sort=sort, latency=latency,
                        cost_models=cost_models)
    text = render_table(table, fmt)
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
    else:
        click.echo(text)
    if plot_path:
        click.echo(f"plot: {plot_comparison(records, plot_path, latency)}", err=True)


@click.command(epilog="""\b
Examples:
  artemis compare --strategies diagonal,hunter --targets 1.5x,4x --out runs/demo
  artemis report runs/demo
  artemis report runs/demo --format github --sort rotation_reduction:desc
  artemis report runs/demo --format csv --output results.csv
  artemis report runs/demo --group-by strategy,target,seed --plot front.png
  artemis report runs/demo --columns strategy,target,lam,max_sparsity,accuracy,val_accuracy
  artemis report runs/demo --cost-models gazelle,bsgs   # both counts, side by side
""")
@click.argument("directory", type=click.Path(file_okay=False))
@output_options
@click.option("--columns", help="Comma-separated columns to show, in order (snake_case, as in "
                                "--format json), e.g. strategy,target,accuracy,pareto.")
@click.option("--sort", "sort", default="",
              help="Comma-separated columns to sort by, each optionally :desc "
                   "(default: the --group-by columns).")
@click.option("--group-by",
              help="Columns that make one row; metrics are mean ± std over the other runs "
                   "(add seed for one row per run; any setting such as max_sparsity works) "
                   f"[default: {','.join(DEFAULT_GROUP_BY)} and every setting that differs "
                   "between the runs].")
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="Write the table to this file instead of stdout.")
@click.option("--cost-models", default="",
              help="Comma-separated cost models whose counts of each run (rotations, "
                   "reduction, PMult, keys) to add as columns, side by side, e.g. "
                   "gazelle,bsgs (runs record every registered model's counts).")
def report(directory: str, fmt: str, calibration: Calibration, plot_path: Path | None,
           columns: str | None, sort: str, group_by: str | None, output: str | None,
           cost_models: str) -> None:
    """Tabulate the results stored in DIRECTORY by `artemis compare`, without re-running.

    Unreadable files are named in a warning on stderr; the other results still report.
    """
    store = ResultStore(directory)
    loaded = store.load()
    for problem in loaded.problems:
        click.echo(f"warning: skipped {problem}", err=True)
    show_results(loaded.records, store, fmt=fmt, calibration=calibration, plot_path=plot_path,
                 group_by=split_list(group_by) if group_by else None,
                 columns=split_list(columns), sort=sort,
                 output=output, cost_models=[get("cost_model", name).name
                                             for name in split_list(cost_models)])

"""``artemis compare``: run strategies × targets × seeds and tabulate them."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import ArtemisError
from ..experiments.compare import ComparePlan, run_comparison
from ..experiments.results import ResultStore, canonical_target
from ..he.latency import Calibration
from ..io import split_list
from ..registry import get, get_registry
from .options import cost_model_option, data_options
from .report_cmd import output_options, show_results

DEFAULT_TARGETS = "1.5x,2x,4x,6x"


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(dict.fromkeys(int(s) for s in split_list(text)))
    except ValueError:
        raise ArtemisError(f"--seeds {text!r}: write whole numbers like 0,1,2") from None
    if not seeds or min(seeds) < 0:
        raise ArtemisError(f"--seeds {text!r}: give one or more seeds >= 0")
    return seeds


def build_plan(model: str | None, dataset: str, strategies: str | None, targets: str,
               seeds: str, epochs: int | None, prune_epochs: int | None,
               data_root: str | None, cost_model: str = "gazelle") -> ComparePlan:
    """Validate the command's options against the registry into a :class:`ComparePlan`."""
    model = model or get("dataset", dataset).default_model
    get("model", model)
    names = tuple(dict.fromkeys(split_list(strategies))) or tuple(
        get_registry().names("strategy"))
    for name in names:
        get("strategy", name)
    parsed = tuple(dict.fromkeys(canonical_target(t) for t in split_list(targets)))
    if not parsed:
        raise ArtemisError("--targets: give one or more targets like 1.5x,2x")
    get("cost_model", cost_model)
    return ComparePlan(model, dataset, names, parsed, _seeds(seeds), epochs, prune_epochs,
                       data_root, cost_model)


@click.command(epilog="""\b
Examples:
  artemis compare --strategies diagonal,hunter --targets 1.5x,4x --out runs/demo
  artemis compare --targets 1.5x,2x,4x,6x --seeds 0,1 --jobs 2
  artemis compare --cost-model bsgs --strategies positional,diagonal --targets 1.2x,1.5x
  artemis report runs/demo --format github     # the table again, from the files
""")
@data_options
@click.option("--strategies", help="Comma-separated strategies (default: every registered "
                                   "one, third-party plugins included).")
@click.option("--targets", default=DEFAULT_TARGETS, show_default=True,
              help="Comma-separated rotation-reduction targets.")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated seeds.")
@click.option("--epochs", type=click.IntRange(min=1),
              help="Dense training epochs (default: the pipeline's for the dataset).")
@click.option("--prune-epochs", type=click.IntRange(min=1),
              help="Epochs of each pruning run's training phases (default: the pipeline's).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Result directory (default: runs/DATASET-MODEL); runs stored there are "
                   "skipped, so an interrupted comparison resumes.")
@cost_model_option()
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs in parallel processes (torch threads are split between them).")
@output_options
def compare(model: str | None, dataset: str, data_root: str | None, strategies: str | None,
            targets: str, seeds: str, epochs: int | None, prune_epochs: int | None,
            out: str | None, cost_model: str, jobs: int, fmt: str, calibration: Calibration,
            plot_path: Path | None) -> None:
    """Prune one model with several strategies at several rotation-reduction targets.

    The dense model is trained once per seed and reused; every run is stored as its own
    JSON file in --out, and the table ends the output (`artemis report OUT` shows it again).
    """
    from ..pruning.pipeline import prune_run, train_dense  # torch-heavy: import when running

    plan = build_plan(model, dataset, strategies, targets, seeds, epochs, prune_epochs,
                      data_root, cost_model)
    suffix = "" if cost_model == "gazelle" else f"-{cost_model}"
    out = out or f"runs/{plan.dataset}-{plan.model}{suffix}"
    outcome = run_comparison(plan, out, train_dense, prune_run, jobs=jobs)
    click.echo(f"{outcome.ran} runs done, {outcome.reused} reused from {out}", err=True)
    show_results(outcome.records, ResultStore(out), fmt=fmt, calibration=calibration,
                 plot_path=plot_path)
    if outcome.errors:
        raise ArtemisError(f"{len(outcome.errors)} jobs failed (errors above); run the "
                           "same command again to retry them")

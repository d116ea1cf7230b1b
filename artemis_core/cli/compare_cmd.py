"""``artemis compare``: run strategies × targets × seeds and tabulate them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from ..errors import ArtemisError
from ..experiments.compare import ComparePlan, run_comparison
from ..experiments.executors import EXECUTORS, make_executor
from ..experiments.results import ResultStore, canonical_target
from ..he.latency import Calibration
from ..io import split_list
from ..learning.catalog import Split
from ..registry import get, get_registry
from .options import cost_model_option, counting_log_n_option, data_options
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


def _lams(text: str | None) -> tuple[float, ...]:
    try:
        lams = tuple(dict.fromkeys(float(v) for v in split_list(text or "")))
    except ValueError:
        raise ArtemisError(f"--lams {text!r}: write numbers like 0.5,1,2") from None
    if text is not None and (not lams or min(lams) < 0):
        raise ArtemisError(f"--lams {text!r}: give one or more λ values >= 0")
    return lams


def build_plan(model: str | None, dataset: str, strategies: str | None, targets: str,
               seeds: str, epochs: int | None, prune_epochs: int | None,
               data_root: str | None, lams: str | None = None,
               split: Split | None = None,
               prune: Mapping[str, Any] | None = None) -> ComparePlan:
    """Validate the command's options against the registry into a :class:`ComparePlan`.

    ``prune`` overrides :class:`PruneConfig` fields (``prune_epochs`` sets both phases);
    a comparison always prunes best-effort, so a target out of a strategy's reach gives
    its maximum reduction instead of an error."""
    from ..pruning.pipeline import PruneConfig  # torch-heavy: import when running

    settings = {**(prune or {}), "best_effort": True}
    if prune_epochs is not None:
        settings |= {"reg_epochs": prune_epochs, "finetune_epochs": prune_epochs}
    config = PruneConfig(**settings)
    get("cost_model", config.cost_model)
    model = model or get("dataset", dataset).default_model
    get("model", model)
    names = tuple(dict.fromkeys(split_list(strategies))) or tuple(
        get_registry().names("strategy"))
    for name in names:
        get("strategy", name)
    parsed = tuple(dict.fromkeys(canonical_target(t) for t in split_list(targets)))
    if not parsed:
        raise ArtemisError("--targets: give one or more targets like 1.5x,2x")
    return ComparePlan(model, dataset, names, parsed, _seeds(seeds), epochs, data_root,
                       lams=_lams(lams) or (config.lam,), prune=asdict(config),
                       split=split or Split())


@click.command(epilog="""\b
Examples:
  artemis compare --strategies diagonal,hunter --targets 1.5x,4x --out runs/demo
  artemis compare --targets 1.5x,2x,4x,6x --seeds 0,1 --jobs 2
  artemis compare --strategies diagonal,hybrid --targets 4x --lams 0.5,2 --prune-epochs 2
  artemis compare --cost-model bsgs --strategies positional,diagonal --targets 1.2x,1.5x
  artemis compare --targets 2x,4x --seeds 0,1 --executor ray --jobs 2   # local Ray
  artemis compare --targets 2x,4x --executor ray --ray-address auto     # a Ray cluster
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
              help="Epochs of each of the regularized and fine-tuning phases (default: the "
                   "pipeline's); a strategy without a regularized phase fine-tunes for both, "
                   "so every strategy gets the same epochs after the dense model.")
@click.option("--lams", help="Comma-separated λ grid for the regularized strategies; each "
                             "strategy × target × seed keeps the λ with the best validation "
                             "accuracy [default: the pipeline's λ].")
@click.option("--validation", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=Split.validation, show_default=True,
              help="Fraction of the training data held out (stratified) for validation.")
@click.option("--split-seed", type=click.IntRange(min=0), default=Split.seed, show_default=True,
              help="Seed of the validation split.")
@click.option("--max-sparsity", type=click.FloatRange(0, 1, min_open=True), default=0.95,
              show_default=True, help="Cap: no layer loses more than this fraction of its "
                                      "weights.")
@click.option("--group-cost", type=click.Choice(("rotations", "latency")), default="rotations",
              show_default=True,
              help="c_g of the penalty: rotations a group saves, or its estimated latency.")
@click.option("--augment/--no-augment", default=False, show_default=True,
              help="Random crops and flips in every training phase (natural images only).")
@click.option("--train-subset", type=click.IntRange(min=1),
              help="Train every phase (dense included) on this many training images, a "
                   "fixed draw for every seed [default: all].")
@click.option("--out", type=click.Path(file_okay=False),
              help="Result directory (default: runs/DATASET-MODEL); runs stored there are "
                   "skipped, so an interrupted comparison resumes.")
@cost_model_option()
@counting_log_n_option()
@click.option("--jobs", "-j", type=click.IntRange(min=1),
              help="Runs side by side: local worker processes (torch threads are split "
                   "between them; default 1), or the CPUs of the local Ray instance that "
                   "--executor ray starts without --ray-address (default: all cores).")
@click.option("--executor", type=click.Choice(EXECUTORS), default="local", show_default=True,
              help="Where runs execute: local processes, or one Ray task per run "
                   "(pip install 'artemis-he[ray]').")
@click.option("--ray-address", metavar="ADDRESS|auto",
              help="With --executor ray: the cluster to join (`auto`: the one `ray start` "
                   "runs on this machine); default: start a local Ray instance.")
@output_options
def compare(model: str | None, dataset: str, data_root: str | None, strategies: str | None,
            targets: str, seeds: str, epochs: int | None, prune_epochs: int | None,
            lams: str | None, validation: float, split_seed: int, max_sparsity: float,
            group_cost: str, augment: bool, train_subset: int | None, out: str | None,
            cost_model: str, log_n: int | None,
            jobs: int | None, executor: str, ray_address: str | None, fmt: str,
            calibration: Calibration, plot_path: Path | None) -> None:
    """Prune one model with several strategies at several rotation-reduction targets.

    The dense model is trained once per seed and reused; every run is stored as its own
    JSON file in --out, and the table ends the output (`artemis report OUT` shows it again).
    """
    from ..pruning.pipeline import prune_run, train_dense  # torch-heavy: import when running

    plan = build_plan(model, dataset, strategies, targets, seeds, epochs, prune_epochs,
                      data_root, lams, Split(validation, split_seed),
                      {"max_sparsity": max_sparsity, "group_cost": group_cost,
                       "augment": augment, "cost_model": cost_model,
                       **({"train_subset": train_subset} if train_subset else {}),
                       **({"log_n": log_n} if log_n else {})})
    suffix = "" if cost_model == "gazelle" else f"-{cost_model}"
    out = out or f"runs/{plan.dataset}-{plan.model}{suffix}"
    outcome = run_comparison(plan, out, train_dense, prune_run,
                             executor=make_executor(executor, jobs, ray_address))
    click.echo(f"{outcome.ran} runs done, {outcome.reused} reused from {out}", err=True)
    show_results(outcome.records, ResultStore(out), fmt=fmt, calibration=calibration,
                 plot_path=plot_path)
    if outcome.errors:
        raise ArtemisError(f"{len(outcome.errors)} jobs failed (errors above); run the "
                           "same command again to retry them")

"""``artemis prune``: prune a model to a rotation target with one strategy."""

from __future__ import annotations

from pathlib import Path

import click

from ..io import render
from ..pruning.budget import parse_target
from ..pruning.costs import GROUP_COSTS
from ..pruning.pipeline import (
    PENALTIES,
    SCHEDULES,
    PruneConfig,
    check_prunable,
    prune_run,
    train_dense,
)
from ..registry import get
from .options import cost_model_option, data_options, format_option

SUMMARY = ("strategy", "cost_model", "target", "masked_accuracy", "accuracy",
           "dense_accuracy", "dense_rotations", "rotations", "rotation_reduction", "pmult",
           "keys", "key_memory_mb", "sparsity", "wall_seconds")


def summary_row(metrics: dict) -> dict:
    """The summary columns of a pruning result, rounded for display."""
    row = {k: metrics.get(k) for k in SUMMARY}
    row["key_memory_mb"] = metrics["key_bytes"] / 2**20
    for key in ("masked_accuracy", "accuracy", "dense_accuracy", "sparsity"):
        row[key] = round(row[key], 4) if row[key] is not None else None
    row["rotation_reduction"] = round(row["rotation_reduction"], 2)
    row["key_memory_mb"] = round(row["key_memory_mb"], 1)
    row["wall_seconds"] = round(row["wall_seconds"], 1)
    return row


@click.command(epilog="""\b
Examples:
  artemis prune --strategy diagonal --target 4x
  artemis prune --strategy hybrid --target 2x --dataset digits --out pruned.pt
  artemis prune --strategy diagonal --target 4x --schedule gradual --steps 3
  artemis prune --strategy diagonal --target 2x --checkpoint pruned.pt  # masks compose
  artemis prune --strategy positional --target 150 --checkpoint dense.pt --format json
  artemis prune --strategy positional --target 1.3x --cost-model bsgs
""")
@click.option("--strategy", required=True, help="Strategy name (see artemis plugins).")
@click.option("--target", required=True,
              help="Rotation reduction factor (4x, 1.5x), rotation count (150) or weight "
                   "sparsity (90%).")
@data_options
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path),
              help="Dense checkpoint to start from (default: train one, cached in --runs).")
@click.option("--runs", type=click.Path(file_okay=False, path_type=Path), default="runs",
              show_default=True, help="Where cached dense checkpoints live.")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Dense training epochs [default: the training loop's].")
@click.option("--prune-epochs", type=click.IntRange(min=0), default=None,
              help="Epochs of the regularized and of the fine-tuning phase (each) "
                   f"[default: {PruneConfig.reg_epochs}].")
@click.option("--lam", type=click.FloatRange(min=0), default=PruneConfig.lam, show_default=True,
              help="Group-Lasso strength λ.")
@click.option("--group-cost", type=click.Choice(GROUP_COSTS), default=PruneConfig.group_cost,
              show_default=True,
              help="c_g of the penalty: the estimated seconds a group saves, or its rotations.")
@click.option("--schedule", type=click.Choice(SCHEDULES), default=PruneConfig.schedule,
              show_default=True,
              help="Select once after the regularized epochs, or in --steps steps.")
@click.option("--steps", type=click.IntRange(min=1), default=PruneConfig.steps,
              show_default=True, help="Selections of the gradual schedule.")
@click.option("--penalty", type=click.Choice(PENALTIES), default=PruneConfig.penalty,
              show_default=True,
              help="Penalise only the groups ranked for removal (λ growing), or all.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@cost_model_option()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the pruned checkpoint here.")
@format_option()
def prune(strategy: str, target: str, dataset: str, model: str | None,
          checkpoint: Path | None, runs: Path, epochs: int | None, prune_epochs: int | None,
          lam: float, group_cost: str, schedule: str, steps: int, penalty: str, seed: int,
          cost_model: str, data_root: str | None, out: Path | None, fmt: str) -> None:
    """Prune a model to a rotation target with one strategy and fine-tune it.

    Without --checkpoint a dense model is trained first (and cached for the next run).
    A pruned --checkpoint keeps its masks: the new ones are added to them. Layers HE
    cannot run and unreachable targets fail before any training.
    """
    get("strategy", strategy)  # fail fast on bad names and targets, before any training
    get("cost_model", cost_model)
    parse_target(target)
    config = PruneConfig(lam=lam, group_cost=group_cost, schedule=schedule, steps=steps,
                         penalty=penalty, cost_model=cost_model)
    if checkpoint is None:
        data = get("dataset", dataset)
        model = model or data.default_model
        check_prunable(model, data.num_classes, data.input_shape, strategy, target, config)
        checkpoint = runs / f"dense-{model}-{dataset}-s{seed}.pt"
        train_dense(model, dataset, seed, epochs, checkpoint, data_root)
    metrics = prune_run(strategy, target, checkpoint, seed, prune_epochs, out,
                        config=config, data_root=data_root)
    click.echo(render([summary_row(metrics)], fmt, json_payload=metrics))

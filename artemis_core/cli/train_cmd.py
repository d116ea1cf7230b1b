"""``artemis train``: dense training of a registered model on a registered dataset."""

from __future__ import annotations

from pathlib import Path

import click

from ..io import render
from ..learning.training import TrainConfig
from .options import data_options, format_option

COLUMNS = ("model", "dataset", "epochs", "train_acc", "test_acc", "seconds", "checkpoint")


@click.command(epilog="""\b
Examples:
  artemis train --dataset digits --out runs/digits-resnet.pt
  artemis train --dataset synthetic --epochs 3 --out runs/synthetic.pt --format json
  artemis train --dataset fashion-mnist --train-subset 10000 --epochs 2 \\
      --out runs/fmnist-resnet.pt
  artemis train --dataset cifar10 --model resnet20 --data-root ~/data --epochs 160 \\
      --augment --out runs/cifar10-resnet20.pt
""")
@data_options
@click.option("--epochs", type=click.IntRange(min=1), default=TrainConfig.epochs,
              show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=TrainConfig.lr,
              show_default=True, help="Peak learning rate (cosine schedule to zero).")
@click.option("--batch-size", type=click.IntRange(min=1), default=TrainConfig.batch_size,
              show_default=True)
@click.option("--momentum", type=click.FloatRange(0, 1), default=TrainConfig.momentum,
              show_default=True)
@click.option("--weight-decay", type=click.FloatRange(min=0),
              default=TrainConfig.weight_decay, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=TrainConfig.seed,
              show_default=True, help="Seeds the initial weights and the batch order.")
@click.option("--augment/--no-augment", default=False, show_default=True,
              help="Random crops and horizontal flips (for CIFAR; not for digits).")
@click.option("--train-subset", type=click.IntRange(min=1), default=None,
              help="Train on this many training images (a fixed seeded draw, the same for "
                   "every seed) [default: all]; the test accuracy is on the whole test set.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Checkpoint to write (artemis cost/verify --checkpoint read it).")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Progress bar on stderr.")
@format_option()
def train(model: str | None, dataset: str, data_root: str | None, epochs: int, lr: float,
          batch_size: int, momentum: float, weight_decay: float, seed: int, augment: bool,
          train_subset: int | None, out: Path, progress: bool, fmt: str) -> None:
    """Train a model (dense) and save it as a checkpoint with its accuracies.

    The run's state is kept in OUT.state after every epoch, so running the same command
    again after an interruption continues from the last finished epoch (with the same
    result); the state file is removed once the checkpoint is written.
    """
    from ..pruning.pipeline import fit_dense
    from ..registry import get

    data = get("dataset", dataset)(data_root)
    model = model or data.default_model
    get("model", model)  # an unknown name fails before any data is read
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, momentum=momentum,
                         weight_decay=weight_decay, seed=seed, augment=augment,
                         train_subset=train_subset)
    metrics, history = fit_dense(data, model, config, out, progress)
    row = {"model": model, "dataset": dataset, "epochs": epochs,
           "train_acc": round(metrics["train_accuracy"], 4),
           "test_acc": round(metrics["accuracy"], 4),
           "seconds": round(metrics["wall_seconds"], 1), "checkpoint": str(out)}
    click.echo(render([row], fmt, headers=COLUMNS,
                      json_payload={**row, "history": [vars(r) for r in history]}))

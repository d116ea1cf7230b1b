"""Click options that several commands share, so that their names, types and help agree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click
from torch import nn

from ..errors import ArtemisError
from ..he.params import MAX_LOG_Q_128
from ..io import formats
from ..learning.catalog import DATA_ROOT_ENV
from ..learning.checkpoint import Checkpoint, load_model
from ..learning.zoo import build_model
from ..registry import get, get_registry


def data_options(function):
    """``--model`` (default: the dataset's), ``--dataset`` (default digits), ``--data-root``."""
    for option in reversed((
        click.option("--model", help="Architecture (artemis plugins --kind model) "
                                     "[default: the dataset's]."),
        click.option("--dataset", default="digits", show_default=True,
                     help="Dataset (artemis plugins --kind dataset)."),
        click.option("--data-root", type=click.Path(file_okay=False),
                     help="Directory of a dataset that reads local files, e.g. CIFAR or MNIST "
                          f"[default: ${DATA_ROOT_ENV}; fashion-mnist also looks in "
                          "/usr/share/datasets/fashion-mnist]."),
    )):
        function = option(function)
    return function


def format_option(default: str = "simple"):
    """The shared ``--format`` click option."""
    return click.option(
        "--format", "fmt", type=click.Choice(formats()), default=default, show_default=True,
        help="Output format: any tabulate format, or json / csv.",
    )


@dataclass(frozen=True)
class ChosenModel:
    """The model a command works on, built fresh or loaded from a checkpoint."""

    model: nn.Module
    name: str
    input_shape: tuple[int, int, int]
    dataset: str | None  # the checkpoint's dataset, or the one whose default model it is
    checkpoint: Checkpoint | None  # None for a freshly built (dense) model


def choose_model(name: str | None, checkpoint: str | Path | None, num_classes: int | None = None,
                 input_shape: tuple[int, int, int] | None = None) -> ChosenModel:
    """``--model NAME`` (built with seed 0) or ``--checkpoint FILE`` (its model, weights and
    dataset), the one way every command loads a model, with the same errors everywhere."""
    if checkpoint is not None:
        model, saved = load_model(checkpoint)
        if name is not None and name != saved.model:
            raise ArtemisError(f"--model {name!r} differs from the checkpoint's model "
                               f"{saved.model!r}; leave --model out")
        return ChosenModel(model, saved.model, input_shape or saved.input_shape, saved.dataset,
                           saved)
    if name is None:
        raise ArtemisError("give --model NAME or --checkpoint FILE")
    info = get("model", name)
    dataset = next((e.name for e in get_registry().entries("dataset")
                    if e.obj.default_model == name), None)
    if num_classes is None:
        num_classes = get("dataset", dataset).num_classes if dataset else 10
    shape = input_shape or info.default_input
    return ChosenModel(build_model(name, num_classes, shape, seed=0), name, shape, dataset, None)


def counting_log_n_option():
    """The shared ``--log-n`` of the commands that count (not execute) a model: the ring
    the plans are laid out in, defaulting to what the input size needs."""
    return click.option(
        "--log-n", type=click.IntRange(min(MAX_LOG_Q_128), max(MAX_LOG_Q_128)), default=None,
        help="log2 of the ring degree N the plans are counted at. Default: 16 for inputs "
             "over 16x16 pixels, 14 for smaller ones (raised until one channel's grid fits).")


def cost_model_option(default: str | None = "gazelle", default_help: str = ""):
    """The shared ``--cost-model`` click option (a registered cost model's name);
    ``default_help`` says what a ``None`` default means."""
    return click.option(
        "--cost-model", "cost_model", default=default, show_default=default is not None,
        help="HE cost model that counts (and executes) the layers: gazelle, bsgs, "
             "bsgs-best, or a plugin's (artemis plugins --kind cost_model)." + default_help,
    )

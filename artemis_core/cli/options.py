"""Click options that several commands share, so that their names, types and help agree."""

from __future__ import annotations

import click

from ..io import formats
from ..learning.catalog import DATA_ROOT_ENV


def data_options(function):
    """``--model`` (default: the dataset's), ``--dataset`` (default digits), ``--data-root``."""
    for option in reversed((
        click.option("--model", help="Architecture (artemis plugins --kind model) "
                                     "[default: the dataset's]."),
        click.option("--dataset", default="digits", show_default=True,
                     help="Dataset (artemis plugins --kind dataset)."),
        click.option("--data-root", type=click.Path(file_okay=False),
                     help="Directory of a dataset that reads local files, e.g. CIFAR "
                          f"[default: ${DATA_ROOT_ENV}]."),
    )):
        function = option(function)
    return function


def format_option(default: str = "simple"):
    """The shared ``--format`` click option."""
    return click.option(
        "--format", "fmt", type=click.Choice(formats()), default=default, show_default=True,
        help="Output format: any tabulate format, or json / csv.",
    )


def cost_model_option(default: str = "gazelle"):
    """The shared ``--cost-model`` click option (a registered cost model's name)."""
    return click.option(
        "--cost-model", "cost_model", default=default, show_default=True,
        help="HE cost model that counts (and executes) the layers: gazelle, bsgs, "
             "bsgs-best, or a plugin's (artemis plugins --kind cost_model).",
    )

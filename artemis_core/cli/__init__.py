"""The ``artemis`` command line (click)."""

from __future__ import annotations

import importlib

import click

from ..errors import ArtemisError
from ..version import __version__


class ArtemisGroup(click.Group):
    """Turns :class:`ArtemisError`, and a file the system refuses to read or write (e.g.
    ``--out`` in a missing or read-only directory), into a one-line error instead of a
    traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ArtemisError as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:
            if exc.filename is None:  # not about a file the user named: a bug, show it
                raise
            raise click.ClickException(f"{exc.strerror}: {str(exc.filename)!r}") from exc


@click.group(cls=ArtemisGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="""\b
Examples:
  artemis plugins                      # every registered strategy, model, backend...
  artemis plugins --kind strategy --format json
""")
@click.version_option(__version__, prog_name="artemis")
def main() -> None:
    """Artemis: prune CNNs in rotation-shaped groups for faster CKKS inference."""


#: Command modules, one line each: module ``<name>_cmd`` defines the click command ``name``.
COMMANDS = (
    "calibrate",
    "compare",
    "cost",
    "infer",
    "plugins",
    "prune",
    "report",
    "train",
    "verify",
)


def _add_commands() -> None:
    for name in COMMANDS:
        module = importlib.import_module(f".{name}_cmd", __package__)
        main.add_command(getattr(module, name))


_add_commands()

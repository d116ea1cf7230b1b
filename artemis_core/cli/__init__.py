"""The ``artemis`` command line (click)."""

from __future__ import annotations

import click

from .. import __version__
from ..errors import ArtemisError


class ArtemisGroup(click.Group):
    """Turns :class:`ArtemisError` into a one-line error instead of a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ArtemisError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=ArtemisGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="""\b
Examples:
  artemis plugins                      # every registered strategy, model, backend...
  artemis plugins --kind strategy --format json
""")
@click.version_option(__version__, prog_name="artemis")
def main() -> None:
    """Artemis: prune CNNs in rotation-shaped groups for faster CKKS inference."""


def _add_commands() -> None:
    from .calibrate_cmd import calibrate
    from .cost_cmd import cost
    from .infer_cmd import infer
    from .plugins_cmd import plugins
    from .verify_cmd import verify

    for command in (plugins, calibrate, cost, verify, infer):
        main.add_command(command)


_add_commands()

"""``artemis plugins``: what is registered and where it came from."""

from __future__ import annotations

import click

from ..io import render
from ..registry import KINDS, get_registry
from .options import format_option


@click.command(epilog="""\b
Examples:
  artemis plugins
  artemis plugins --kind strategy --format json
""")
@click.option("--kind", type=click.Choice(sorted(KINDS)), help="Only this plugin kind.")
@format_option()
def plugins(kind: str | None, fmt: str) -> None:
    """List every registered name: kind, source (built-in or distribution) and version."""
    rows = [
        {
            "name": e.name,
            "kind": e.kind,
            "source": e.source,
            "version": e.version,
            "description": getattr(e.obj, "description", ""),
        }
        for e in get_registry().entries(kind)
    ]
    click.echo(render(rows, fmt))

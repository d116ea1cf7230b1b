"""Render rows as any tabulate format, CSV or JSON (one place for every command)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

import click
import tabulate

EXTRA_FORMATS = ("json", "csv")


def formats() -> list[str]:
    """Every ``--format`` value: tabulate's formats plus json and csv."""
    return sorted(set(tabulate.tabulate_formats) | set(EXTRA_FORMATS))


def format_option(default: str = "simple"):
    """The shared ``--format`` click option."""
    return click.option(
        "--format", "fmt", type=click.Choice(formats()), default=default, show_default=True,
        help="Output format: any tabulate format, or json / csv.",
    )


def render(rows: Sequence[dict[str, Any]], fmt: str, headers: Sequence[str] | None = None,
           json_payload: Any = None, **tabulate_options: Any) -> str:
    """Rows (dicts) as text. ``json`` dumps ``json_payload`` when given, else the rows;
    ``tabulate_options`` (e.g. ``colalign``) go to tabulate for the other table formats."""
    if fmt == "json":
        return json.dumps(rows if json_payload is None else json_payload, indent=2, default=str)
    headers = list(headers or (rows[0].keys() if rows else []))
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=headers, extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    table = [[row.get(h, "") for h in headers] for row in rows]
    return tabulate.tabulate(table, headers=headers, tablefmt=fmt, **tabulate_options)

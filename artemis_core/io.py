"""Reading and writing: atomic file writes, JSON documents, comma lists, tables.

Small helpers every layer uses; nothing here imports the rest of the package.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import tabulate

EXTRA_FORMATS = ("json", "csv")


@contextmanager
def atomic_write(path: str | Path, binary: bool = False) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; when the block ends without an
    error it is flushed to disk and renamed onto ``path`` (``os.replace``), otherwise it
    is removed and ``path`` is left as it was.

    The temporary name starts with a dot and ends in ``.tmp``, so a leftover from a killed
    process is never read as a result or checkpoint. It is created with ``open(mode="x")``
    (not ``mkstemp``) so the file gets the usual permissions of the user's umask.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb" if binary else "x",
                  encoding=None if binary else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def to_builtin(value: Any) -> Any:
    """JSON ``default`` for what metrics dicts hold besides builtins: numpy and torch
    values (anything with ``tolist``), sets (sorted) and paths."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def jsonable(document: Any) -> Any:
    """``document`` as plain JSON types (what reading its file back gives)."""
    return json.loads(json.dumps(document, default=to_builtin))


def write_json_atomic(path: Path, document: Any) -> None:
    """Write ``document`` to ``path`` so that readers see the old file or the new one,
    never a partial one."""
    with atomic_write(path) as handle:
        json.dump(document, handle, indent=2, sort_keys=True, default=to_builtin)


def split_list(text: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: items stripped, empty ones dropped."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def formats() -> list[str]:
    """Every ``--format`` value: tabulate's formats plus json and csv."""
    return sorted(set(tabulate.tabulate_formats) | set(EXTRA_FORMATS))


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

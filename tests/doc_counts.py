"""Counts quoted in the docs, re-computed from what the code prints.

A documented count carries an (invisible) HTML comment naming the ``artemis`` command
that prints it and where in that command's ``--format json`` output it is:

    rotations <!-- count: artemis cost --model digits-resnet @ total/rotations -->385

The number right after the marker (``**bold**`` or ```code``` allowed) is checked. Where a
comment cannot stand next to its number (inside a code block), the marker names a text
that precedes the number, and the first number after the first such text below the
marker is checked:

    <!-- count after "dense_rotations": artemis cost --model digits-resnet @ total/rotations -->

A path is ``/``-separated; a segment picks a dict key, or in a list the element whose
``name`` is the segment (``layers/layer1.0.conv2/c_out``), else the element at that
index. ``tests/test_doc_counts.py`` fails on any drift; ``python tests/doc_counts.py
--write`` rewrites the documented numbers to the code's (review the diff).
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!--\s*count(?:\s+after\s+(?P<anchor>[^:]+?))?:\s*artemis\s+"
                    r"(?P<args>.+?)\s+@\s+(?P<path>\S+)\s*-->")
NUMBER = re.compile(r"[\s:=*`]*(\d[\d,]*(?:\.\d+)?)")


@dataclass(frozen=True)
class Count:
    """One documented count: where it is, what it says, and what the code prints."""

    file: Path
    line: int
    command: str
    path: str
    documented: str
    span: tuple[int, int]  # of the documented number in the file's text

    @property
    def actual(self) -> str:
        value = lookup(run_json(self.command), self.path)
        return f"{value:,}" if "," in self.documented and isinstance(value, int) else str(value)

    def describe(self) -> str:
        where = self.file.relative_to(REPO) if self.file.is_relative_to(REPO) else self.file
        return (f"{where}:{self.line}: documents {self.documented}, "
                f"`artemis {self.command}` prints {self.actual} at {self.path}")


@cache
def run_json(command: str) -> object:
    """``artemis COMMAND --format json`` run in this process; its parsed stdout."""
    from click.testing import CliRunner

    from artemis_core.cli import main

    result = CliRunner().invoke(main, [*shlex.split(command), "--format", "json"])
    if result.exit_code != 0:
        raise RuntimeError(f"`artemis {command}` failed: {result.output.strip()}")
    return json.loads(result.stdout)


def lookup(document: object, path: str) -> object:
    """The value at a ``/``-separated ``path`` (see the module docstring)."""
    value = document
    for segment in path.split("/"):
        if isinstance(value, dict):
            value = value[segment]
        else:
            named = [v for v in value if isinstance(v, dict) and v.get("name") == segment]
            value = named[0] if named else value[int(segment)]
    return value


def counts(file: Path) -> list[Count]:
    """Every marked count of ``file``; a marker without its number is a ``ValueError``."""
    text = file.read_text(encoding="utf-8")
    found = []
    for marker in MARKER.finditer(text):
        start = marker.end()
        if marker["anchor"]:
            anchor = text.find(marker["anchor"], start)
            if anchor < 0:
                raise ValueError(f"{file}: no {marker['anchor']} after the marker {marker[0]}")
            start = anchor + len(marker["anchor"])
        number = NUMBER.match(text, start)
        if number is None:
            raise ValueError(f"{file}: no number after the marker {marker[0]}")
        found.append(Count(file, text.count("\n", 0, marker.start()) + 1, marker["args"],
                           marker["path"], number[1], number.span(1)))
    return found


def documents() -> list[Path]:
    """The README and every page under docs/."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def drifted(files: list[Path] | None = None) -> list[Count]:
    """The marked counts whose documented number differs from what the code prints."""
    return [c for f in files or documents() for c in counts(f)
            if c.documented.replace(",", "") != c.actual.replace(",", "")]


def write(files: list[Path] | None = None) -> list[Count]:
    """Rewrite every drifted count to the code's value; returns what was changed."""
    changed = drifted(files)
    for file in {c.file for c in changed}:
        text = file.read_text(encoding="utf-8")
        for count in sorted((c for c in changed if c.file == file), key=lambda c: -c.span[0]):
            text = text[:count.span[0]] + count.actual + text[count.span[1]:]
        file.write_text(text, encoding="utf-8")
    return changed


if __name__ == "__main__":
    changes = write() if "--write" in sys.argv[1:] else drifted()
    for count in changes:
        print(count.describe())
    sys.exit(1 if changes and "--write" not in sys.argv[1:] else 0)

"""Rewrite the README's copy of ``make demo``'s output from a fresh run at this commit.

Runs ``make demo`` into a new temporary result directory (so stored runs are never reused),
keeps what it prints on stdout and its summary lines on stderr, and replaces the block
between the README's ``demo-output`` markers with it, stamped with the commit, the date,
the wall time and the machine's core count.

    python benchmarks/readme_demo.py          # about 3 min on 2 cores
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- demo-output:start -->", "<!-- demo-output:end -->"
#: stderr lines worth keeping: the run summary, notes and the plot's path (not progress bars)
SUMMARY = re.compile(r"^(\d+ runs done|note:|plot:)")


def commit() -> str:
    """The commit the demo ran at (``+dirty`` when the tree has uncommitted changes)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout.strip()
    return head + ("+dirty" if dirty else "")


def run_demo(out: Path) -> tuple[str, list[str], float]:
    """stdout, the stderr summary lines and the wall seconds of ``make demo`` into ``out``."""
    started = time.monotonic()
    done = subprocess.run(["make", "-s", "demo", f"DEMO_OUT={out}"], cwd=ROOT,
                          capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"make demo failed ({done.returncode}):\n{done.stderr[-2000:]}")
    summary = [line.split("\r")[-1].strip() for line in done.stderr.splitlines()]
    return done.stdout.rstrip("\n"), [s for s in summary if SUMMARY.match(s)], seconds


def main() -> None:
    text = README.read_text()
    if START not in text or END not in text:
        sys.exit(f"{README} has no {START} ... {END} block")
    at = commit()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "demo"
        stdout, summary, seconds = run_demo(out)
    summary = [s.replace(str(out), "runs/demo") for s in summary]
    block = "\n".join([
        START,
        f"Produced by `python benchmarks/readme_demo.py` at commit `{at}` on {date.today()}, "
        f"{seconds / 60:.1f} min wall on {os.cpu_count()} cores. Numbers move between "
        "machines (float reductions differ); one machine reproduces them exactly.",
        "",
        "```text",
        "$ make demo",
        stdout,
        *summary,
        "```",
        END,
    ])
    head, rest = text.split(START, 1)
    README.write_text(head + block + rest.split(END, 1)[1])
    print(f"README demo output rewritten at {at} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()

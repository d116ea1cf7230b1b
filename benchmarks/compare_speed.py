"""Wall time of the full digits comparison: six built-in strategies × four targets.

Runs ``artemis compare`` exactly as a user would (a subprocess of the installed CLI) into
a fresh temporary directory, then prints the total wall time, the time per run, and how
many runs were stored (a target a strategy cannot reach counts: it is a stored result).
Target: ≤ 10 minutes on 2 cores.

    .venv/bin/python benchmarks/compare_speed.py [--jobs 2] [--seeds 0] [--keep DIR]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from artemis_core.experiments.executors import available_cores
from artemis_core.experiments.results import ResultStore

STRATEGIES = "positional,diagonal,hybrid,hunter,unstructured,filter"
TARGETS = "1.5x,2x,4x,6x"
LIMIT_SECONDS = 600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--keep", type=Path, help="Result directory to keep (default: temp).")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        out = args.keep or Path(scratch) / "runs"
        command = [sys.executable, "-m", "artemis_core.cli", "compare", "--dataset", "digits",
                   "--strategies", STRATEGIES, "--targets", TARGETS, "--seeds", args.seeds,
                   "--jobs", str(args.jobs), "--out", str(out)]
        print("$", " ".join(command[1:]), flush=True)
        start = time.perf_counter()
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True)
        wall = time.perf_counter() - start
        print(done.stdout)
        records = ResultStore(out).load().records
    runs = len(records)
    failed = sum(not r.ok for r in records)
    print(f"cores: {available_cores()}  jobs: {args.jobs}  exit code: "
          f"{done.returncode}")
    print(f"runs stored: {runs} ({failed} targets not reachable by their strategy)")
    print(f"wall time: {wall:.1f} s ({wall / LIMIT_SECONDS:.2f} of the {LIMIT_SECONDS} s "
          f"budget), per run: {wall / max(runs, 1):.1f} s")
    if records:
        print(f"per-run pruning time (median of stored runs): "
              f"{statistics.median(r.wall_seconds for r in records):.1f} s")


if __name__ == "__main__":
    main()

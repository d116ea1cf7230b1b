"""``artemis calibrate``: measure per-op CKKS latencies for the latency model."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from ..he.calibrate import measure_calibration
from ..he.latency import LEVEL_FIELDS, OP_FIELDS, save_calibration, user_calibration_path
from ..he.params import HEParams
from ..io import render
from .options import format_option

#: Deepest chain ``artemis calibrate`` times by default (the fit prices deeper levels).
DEFAULT_MAX_DEPTH = 4


@click.command(epilog="""\b
Examples:
  artemis calibrate --log-n 13 --repeats 5 --output /tmp/cal.json
  artemis calibrate                    # N=2^14, saved where the latency model reads it
""")
@click.option("--log-n", type=int, default=14, show_default=True,
              help="Ring degree N = 2^K.")
@click.option("--depth", type=click.IntRange(min=1), default=None,
              help="Rescales in the modulus chain [60, 40 x depth, 60]; every level from "
                   "the top down to 1 is timed [default: the deepest 128-bit chain, at "
                   f"most {DEFAULT_MAX_DEPTH}].")
@click.option("--repeats", type=click.IntRange(min=1), default=20, show_default=True,
              help="Timed runs per operation (the median is kept).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=f"JSON file to write [default: {user_calibration_path()}].")
@format_option()
def calibrate(log_n: int, depth: int | None, repeats: int, output: Path | None,
              fmt: str) -> None:
    """Time rotation, PMult, CMult, add, rescale and encode at every level of the chain,
    encrypt and decrypt at its top (real CKKS, one thread, CPU time: other processes do
    not inflate it) and store the medians for the latency model used by cost
    estimates, which prices each operation at the level it runs at."""
    params = (HEParams.deepest(log_n, DEFAULT_MAX_DEPTH) if depth is None
              else HEParams.with_depth(log_n, depth))
    timings = params.levels * len(LEVEL_FIELDS) + 2
    with tqdm(total=timings, desc=f"calibrating N=2^{log_n}", file=sys.stderr,
              leave=False) as bar:
        calibration = measure_calibration(
            params, repeats, lambda op: (bar.set_postfix_str(op), bar.update())
        )
    path = save_calibration(calibration, output)
    rows = [{"operation": op, "level": level, "median": round(seconds * 1e3, 4), "unit": "ms"}
            for op in LEVEL_FIELDS for level, seconds in getattr(calibration, op).items()]
    rows += [{"operation": op, "level": params.levels,
              "median": round(getattr(calibration, op) * 1e3, 4), "unit": "ms"}
             for op in OP_FIELDS if op not in LEVEL_FIELDS]
    rows.append({"operation": "rotation key", "level": params.levels, "unit": "MB",
                 "median": round(calibration.rotation_key_bytes / 1e6, 3)})
    click.echo(render(rows, fmt, json_payload={**calibration.to_dict(), "path": str(path)}))
    if fmt != "json":
        click.echo(f"N=2^{log_n}, primes {list(params.coeff_modulus_bits)}; saved to {path}",
                   err=True)

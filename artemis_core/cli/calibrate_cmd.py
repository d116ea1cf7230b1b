"""``artemis calibrate``: measure per-op CKKS latencies for the latency model."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from ..he.calibrate import measure_calibration
from ..he.latency import OP_FIELDS, save_calibration, user_calibration_path
from ..he.params import HEParams
from ..io import render
from .options import format_option


@click.command(epilog="""\b
Examples:
  artemis calibrate --log-n 13 --repeats 5 --output /tmp/cal.json
  artemis calibrate                    # N=2^14, saved where the latency model reads it
""")
@click.option("--log-n", type=int, default=14, show_default=True,
              help="Ring degree N = 2^K.")
@click.option("--depth", type=click.IntRange(min=1), default=2, show_default=True,
              help="Rescales in the modulus chain [60, 40 x depth, 60] (at least 1: "
                   "rescale is one of the timed operations).")
@click.option("--repeats", type=click.IntRange(min=1), default=20, show_default=True,
              help="Timed runs per operation (the median is kept).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=f"JSON file to write [default: {user_calibration_path()}].")
@format_option()
def calibrate(log_n: int, depth: int, repeats: int, output: Path | None, fmt: str) -> None:
    """Time rotation, PMult, CMult, add, rescale, encode, encrypt and decrypt (real CKKS,
    one thread, CPU time: other processes do not inflate it) and store the medians for
    the latency model used by cost estimates."""
    params = HEParams.with_depth(log_n, depth)
    with tqdm(total=len(OP_FIELDS), desc=f"calibrating N=2^{log_n}", file=sys.stderr,
              leave=False) as bar:
        calibration = measure_calibration(
            params, repeats, lambda op: (bar.set_postfix_str(op), bar.update())
        )
    path = save_calibration(calibration, output)
    rows = [{"operation": op, "median": round(getattr(calibration, op) * 1e3, 4), "unit": "ms"}
            for op in OP_FIELDS]
    rows.append({"operation": "rotation key", "unit": "MB",
                 "median": round(calibration.rotation_key_bytes / 1e6, 3)})
    click.echo(render(rows, fmt, json_payload={**calibration.to_dict(), "path": str(path)}))
    if fmt != "json":
        click.echo(f"N=2^{log_n}, primes {list(params.coeff_modulus_bits)}; saved to {path}",
                   err=True)

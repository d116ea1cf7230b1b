"""``artemis calibrate``: measure per-op CKKS latencies for the latency model."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from ..he.latency import (
    LEVEL_FIELDS,
    OP_FIELDS,
    TRANSFORM_TERMS,
    save_calibration,
    user_calibration_path,
)
from ..io import render
from ..registry import get
from .options import format_option


@click.command(epilog="""\b
Examples:
  artemis calibrate --log-n 13 --repeats 5 --output /tmp/cal.json
  artemis calibrate                    # N=2^14, saved where the latency model reads it
  artemis calibrate --engine orion     # Orion's Lattigo prices, for --engine orion
""")
@click.option("--engine", "engine_name", default="artemis", show_default=True,
              help="Engine to time (artemis plugins --kind engine): artemis (our Pyfhel "
                   "program) or orion (Lattigo primitives and whole linear transforms).")
@click.option("--log-n", type=int, default=14, show_default=True,
              help="Ring degree N = 2^K.")
@click.option("--depth", type=click.IntRange(min=1), default=None,
              help="Rescales in the modulus chain; every level from the top down to 1 is "
                   "timed [default: artemis, the deepest 128-bit chain [60, 40 x depth, "
                   "60] with at most 4; orion, the 128-bit chain it fits for 5 levels].")
@click.option("--repeats", type=click.IntRange(min=1), default=None,
              help="Timed runs per operation (the median is kept) [default: artemis 20, "
                   "orion 5].")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=f"JSON file to write [default: {user_calibration_path()}, or "
                   "calibration-ENGINE.json beside it].")
@format_option()
def calibrate(engine_name: str, log_n: int, depth: int | None, repeats: int | None,
              output: Path | None, fmt: str) -> None:
    """Time rotation, PMult, CMult, add, rescale and encode at every level of the chain,
    encrypt and decrypt at its top, and store the medians for the latency model, which
    prices each operation at the level it runs at. artemis: real CKKS on Pyfhel, one
    thread, CPU time (other processes do not inflate it). orion: wall time of Orion's
    Lattigo calls, and whole BSGS linear transforms fitted as a fixed cost plus costs
    per diagonal, baby and giant rotation (what `artemis infer --engine orion`
    predicts with); keep the machine idle."""
    engine = get("engine", engine_name)({"log_n": log_n})
    with tqdm(desc=f"calibrating {engine_name} at N=2^{log_n}", file=sys.stderr,
              leave=False) as bar:
        calibration = engine.calibrate(log_n, depth, repeats,
                                       lambda op: (bar.set_postfix_str(op), bar.update()))
    path = save_calibration(calibration, output)
    top = calibration.top_level
    rows = [{"operation": op, "level": level, "median": round(seconds * 1e3, 4), "unit": "ms"}
            for op in LEVEL_FIELDS for level, seconds in getattr(calibration, op).items()]
    rows += [{"operation": op, "level": top,
              "median": round(getattr(calibration, op) * 1e3, 4), "unit": "ms"}
             for op in OP_FIELDS if op not in LEVEL_FIELDS]
    rows += [{"operation": f"transform: {term}", "level": level,
              "median": round(terms[term] * 1e3, 4), "unit": "ms"}
             for level, terms in (calibration.transform or {}).items()
             for term in TRANSFORM_TERMS]
    rows.append({"operation": "rotation key", "level": top, "unit": "MB",
                 "median": round(calibration.rotation_key_bytes / 1e6, 3)})
    click.echo(render(rows, fmt, json_payload={**calibration.to_dict(), "path": str(path)}))
    if fmt != "json":
        click.echo(f"{engine_name}, N=2^{log_n}, primes {list(calibration.coeff_modulus_bits)}; "
                   f"saved to {path}", err=True)

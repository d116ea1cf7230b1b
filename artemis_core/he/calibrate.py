"""Measure a :class:`~artemis_core.he.latency.Calibration` on this machine (real CKKS)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from collections.abc import Callable
from datetime import datetime, timezone

from ..registry import get
from .latency import Calibration
from .params import HEParams

#: The real-CKKS backend: timed by calibration, run by ``artemis verify``.
BACKEND = "pyfhel"


def machine_info() -> str:
    """CPU, core count, OS, Python and Pyfhel versions, in one line."""
    try:
        pyfhel = importlib.metadata.version("Pyfhel")
    except importlib.metadata.PackageNotFoundError:
        pyfhel = "missing"
    cpu = platform.processor() or platform.machine()
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, Pyfhel {pyfhel}"
    )


def measure_calibration(params: HEParams, repeats: int = 20,
                        progress: Callable[[str], None] | None = None) -> Calibration:
    """Median per-op latencies and one rotation key's size for ``params``, measured
    now with the ``pyfhel`` backend (``progress(op)`` after each operation)."""
    backend = get("he_backend", BACKEND)(params)
    latencies = backend.measure_latencies(repeats, progress)
    return Calibration(
        log_n=params.log_n,
        coeff_modulus_bits=params.coeff_modulus_bits,
        **latencies,
        rotation_key_bytes=backend.rotation_key_bytes,
        machine=machine_info(),
        measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        note=f"median of {repeats} runs, one thread, scale 2^{params.scale_bits}",
    )

"""The latency model: an OpCount times per-operation latencies measured on one machine.

``artemis calibrate`` measures the latencies (:class:`Calibration`) and stores them as
JSON; :func:`estimate_seconds` turns any :class:`OpCount` into estimated seconds.
"""

from __future__ import annotations

import json
import os
from dataclasses import MISSING, asdict, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import CalibrationError
from ..io import write_json_atomic
from .specs import OpCount

#: Seconds-per-operation fields of a :class:`Calibration`, in table order.
OP_FIELDS = ("rotation", "pmult", "cmult", "add", "rescale", "encode", "encrypt", "decrypt")
USER_FILE = Path("artemis") / "calibration.json"
DEFAULT_RESOURCE = "data/calibration_default.json"


@dataclass(frozen=True)
class Calibration:
    """Median seconds per CKKS operation for one parameter set on one machine.

    ``rotation`` is one key switch (rotate), ``pmult`` a ciphertext x plaintext product
    without its encoding (``encode`` is the encoding of one plaintext), ``cmult`` a
    ciphertext x ciphertext product with relinearisation; ``rotation_key_bytes`` is
    the size of one rotation key. All timed at the top level of a fresh ciphertext, in
    CPU seconds of the executing thread (wall time on an idle machine).
    """

    log_n: int
    coeff_modulus_bits: tuple[int, ...]
    rotation: float
    pmult: float
    cmult: float
    add: float
    rescale: float
    encode: float
    encrypt: float
    decrypt: float
    rotation_key_bytes: int
    machine: str = ""
    measured_at: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "coeff_modulus_bits", tuple(self.coeff_modulus_bits))
        bad = {f: getattr(self, f) for f in OP_FIELDS
               if not isinstance(getattr(self, f), int | float) or getattr(self, f) < 0}
        if bad:
            raise CalibrationError(f"calibration latencies {bad} must be non-negative seconds")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        out = asdict(self)
        out["coeff_modulus_bits"] = list(self.coeff_modulus_bits)
        return out

    @classmethod
    def from_dict(cls, data: Any, source: str = "calibration") -> Calibration:
        """Build from :meth:`to_dict`'s output; a missing or unknown field is an error."""
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING}
        if not isinstance(data, dict):
            raise CalibrationError(f"{source}: expected a JSON object, got {type(data).__name__}")
        missing = sorted(required - set(data))
        unknown = sorted(set(data) - names)
        if missing or unknown:
            raise CalibrationError(
                f"{source}: missing fields {missing}, unknown fields {unknown}; "
                f"expected {sorted(names)}"
            )
        try:
            return cls(**data)
        except TypeError as exc:
            raise CalibrationError(f"{source}: {exc}") from exc


def estimate_seconds(ops: OpCount, calibration: Calibration) -> float:
    """Estimated seconds to execute ``ops`` on the calibrated machine.

    Each PMult also pays one plaintext encoding: executors encode a weight mask when
    they multiply by it (keeping every encoded weight would cost more memory than
    the rotation keys), so encoding is part of the online cost.
    """
    c = calibration
    return (
        ops.rotations * c.rotation
        + ops.pmult * (c.pmult + c.encode)
        + ops.cmult * c.cmult
        + ops.adds * c.add
        + ops.rescales * c.rescale
    )


def user_calibration_path() -> Path:
    """``$XDG_CONFIG_HOME/artemis/calibration.json`` (``~/.config`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / USER_FILE


def load_calibration(path: str | Path | None = None) -> Calibration:
    """Read a calibration; ``None``: the user's file if present, else the shipped
    default (measured at N = 2^14 with 4 primes, see its ``note``)."""
    if path is None:
        user = user_calibration_path()
        if user.exists():
            return _read(user)
        text = resources.files("artemis_core").joinpath(DEFAULT_RESOURCE).read_text()
        return _parse(text, f"shipped {DEFAULT_RESOURCE}")
    return _read(Path(path))


def save_calibration(calibration: Calibration, path: str | Path | None = None) -> Path:
    """Write ``calibration`` atomically (``None``: the user's file); returns the path."""
    target = Path(path) if path is not None else user_calibration_path()
    try:
        write_json_atomic(target, calibration.to_dict())
    except OSError as exc:
        raise CalibrationError(f"cannot write calibration {target}: {exc.strerror}") from exc
    return target


def _read(path: Path) -> Calibration:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CalibrationError(f"cannot read calibration {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:  # not text, so not JSON either
        raise CalibrationError(f"{path} is not valid JSON: {exc}") from exc
    return _parse(text, str(path))


def _parse(text: str, source: str) -> Calibration:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"{source} is not valid JSON: {exc}") from exc
    return Calibration.from_dict(data, source)

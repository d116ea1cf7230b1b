"""The latency model: an OpCount times per-operation latencies measured on one machine.

``artemis calibrate`` measures the latencies (:class:`Calibration`, per level of the
modulus chain) and stores them as JSON; :func:`estimate_seconds` turns an
:class:`OpCount`, or one per level, into estimated seconds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CalibrationError
from ..io import write_json_atomic
from .params import HEParams
from .specs import LevelCounts, OpCount

#: Operations priced at the level they run at: seconds measured at each level.
LEVEL_FIELDS = ("rotation", "pmult", "cmult", "add", "rescale", "encode")
#: Seconds-per-operation fields of a :class:`Calibration`, in table order.
OP_FIELDS = (*LEVEL_FIELDS, "encrypt", "decrypt")
#: Degree of the fitted price in the number of primes a ciphertext holds: a key switch
#: (rotation; cmult's relinearisation) decomposes into one digit per prime and extends
#: each to every prime, so it grows quadratically; the other operations work prime by
#: prime, so linearly.
FIT_DEGREE = {"rotation": 2, "cmult": 2, "baby": 2, "giant": 2}
#: Terms of a hoisted BSGS linear transform's price (``Calibration.transform``): a fixed
#: cost per transform, then per diagonal product, baby-step and giant-step rotation.
TRANSFORM_TERMS = ("transform", "diagonal", "baby", "giant")
#: The level a count without levels is priced at: the top of the default chain
#: [60, 40, 40, 60] that layers are counted under (``HEParams()``), where a model's first
#: layers run; a compiled program's own levels are priced exactly instead.
COUNTING_LEVEL = HEParams().levels
#: The engine whose calibration prices counts when none is named: our Pyfhel program.
DEFAULT_ENGINE = "artemis"


@dataclass(frozen=True)
class Calibration:
    """Median seconds per CKKS operation for one ring size on one machine.

    The :data:`LEVEL_FIELDS` hold ``{level: seconds}`` measured at every level from the
    chain's top down to 1 (level = rescales left: the ciphertext holds level + 1
    primes); :meth:`price` fits them as a polynomial in the number of primes
    (:data:`FIT_DEGREE`), so that any level is priced, also one below or above those
    measured. ``rotation`` is one key switch, ``pmult`` a ciphertext x plaintext
    product with the plaintext already encoded (the server encodes each weight once;
    ``encode`` is one encoding), ``cmult`` a ciphertext x ciphertext product with
    relinearisation; ``encrypt`` and ``decrypt`` are timed at the top level and
    ``rotation_key_bytes`` is the size of one rotation key. CPU seconds of the executing
    thread (wall time on an idle machine), each through the backend's own call as the
    server makes it.

    ``engine`` names the engine measured (``artemis``: our Pyfhel program). An engine
    that evaluates each block of a BSGS layer as one hoisted linear transform (Orion on
    Lattigo) also has ``transform``: ``{level: {term: seconds}}`` for the
    :data:`TRANSFORM_TERMS`, fitted to timed transforms, priced by
    :meth:`price_transform`.
    """

    log_n: int
    coeff_modulus_bits: tuple[int, ...]
    rotation: Mapping[int, float]
    pmult: Mapping[int, float]
    cmult: Mapping[int, float]
    add: Mapping[int, float]
    rescale: Mapping[int, float]
    encode: Mapping[int, float]
    encrypt: float
    decrypt: float
    rotation_key_bytes: int
    machine: str = ""
    measured_at: str = ""
    note: str = ""
    engine: str = DEFAULT_ENGINE
    transform: Mapping[int, Mapping[str, float]] | None = None
    _fits: dict[str, np.ndarray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "coeff_modulus_bits", tuple(self.coeff_modulus_bits))
        for name in LEVEL_FIELDS:
            object.__setattr__(self, name, self._levels(name, getattr(self, name)))
        bad = {f: getattr(self, f) for f in ("encrypt", "decrypt")
               if not _is_seconds(getattr(self, f))}
        if bad:
            raise CalibrationError(f"calibration latencies {bad} must be non-negative seconds")
        tables = {name: getattr(self, name) for name in LEVEL_FIELDS}
        if self.transform is not None:
            transform = self._levels("transform", self.transform, TRANSFORM_TERMS)
            object.__setattr__(self, "transform", transform)
            tables |= {term: {level: terms[term] for level, terms in transform.items()}
                       for term in TRANSFORM_TERMS}
        fits = {}
        for name, table in tables.items():
            primes = np.array([level + 1 for level in table], dtype=np.float64)
            degree = min(FIT_DEGREE.get(name, 1), len(table) - 1)
            fits[name] = np.polyfit(primes, np.array(list(table.values())), degree)
        object.__setattr__(self, "_fits", fits)

    def _levels(self, name: str, table: Any, terms: tuple[str, ...] | None = None) -> dict:
        """``table`` with int levels, checked: seconds per level (or, with ``terms``, a
        mapping of exactly those terms to seconds per level)."""
        top = self.top_level
        if not isinstance(table, Mapping):
            raise CalibrationError(
                f"calibration field {name!r} is {table!r}, not seconds per level; "
                "calibrations made before per-level prices must be measured again: "
                "run `artemis calibrate`"
            )
        try:
            levels = {int(level): seconds for level, seconds in table.items()}
        except ValueError as exc:
            raise CalibrationError(f"calibration field {name!r}: level {exc}") from exc
        def valid(value: Any) -> bool:
            if terms is None:
                return _is_seconds(value)
            return (isinstance(value, Mapping) and set(value) == set(terms)
                    and all(_is_seconds(v) for v in value.values()))

        bad = {k: v for k, v in levels.items() if not (0 <= k <= top and valid(value=v))}
        if not levels or bad:
            what = "seconds" if terms is None else f"seconds for each of {list(terms)}"
            raise CalibrationError(
                f"calibration field {name!r}: {bad or 'no level'}; expected non-negative "
                f"{what} at levels 0..{top} of the chain {list(self.coeff_modulus_bits)}"
            )
        return dict(sorted(levels.items()))

    @property
    def top_level(self) -> int:
        """Rescales left on a fresh ciphertext of the calibrated chain."""
        return len(self.coeff_modulus_bits) - 2

    def price(self, op: str, level: int) -> float:
        """Seconds of one ``op`` (one of :data:`LEVEL_FIELDS`) on a ciphertext at
        ``level``, from the fit over the measured levels (never below zero)."""
        if op not in LEVEL_FIELDS:
            raise CalibrationError(f"op {op!r}; priced per level: {', '.join(LEVEL_FIELDS)}")
        return self._fitted(op, level)

    def price_transform(self, level: int, diagonals: int, baby: int, giant: int) -> float:
        """Seconds of one hoisted BSGS linear transform at ``level`` with ``diagonals``
        products and ``baby`` / ``giant`` rotations (each term fitted over the measured
        levels, as :meth:`price`); raises if this calibration has no transform prices."""
        if self.transform is None:
            raise CalibrationError(f"the {self.engine} calibration has no transform prices")
        counts = {"transform": 1, "diagonal": diagonals, "baby": baby, "giant": giant}
        return sum(n * self._fitted(term, level) for term, n in counts.items())

    def _fitted(self, name: str, level: int) -> float:
        """The fit of ``name``'s seconds over the measured levels, at ``level``, never
        below zero."""
        return max(float(np.polyval(self._fits[name], level + 1)), 0.0)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        out["coeff_modulus_bits"] = list(self.coeff_modulus_bits)
        for name in LEVEL_FIELDS:
            out[name] = {str(level): seconds for level, seconds in getattr(self, name).items()}
        if self.transform is not None:
            out["transform"] = {str(level): dict(terms)
                                for level, terms in self.transform.items()}
        return out

    @classmethod
    def from_dict(cls, data: Any, source: str = "calibration") -> Calibration:
        """Build from :meth:`to_dict`'s output; a missing or unknown field is an error."""
        names = {f.name for f in fields(cls) if f.init}
        required = {f.name for f in fields(cls) if f.init and f.default is MISSING}
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
        except CalibrationError as exc:
            raise CalibrationError(f"{source}: {exc}") from exc


def _is_seconds(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def estimate_seconds(ops: OpCount | LevelCounts, calibration: Calibration,
                     level: int | None = None) -> float:
    """Estimated server seconds to execute ``ops`` on the calibrated machine, each
    operation priced at the level it runs at: ``ops`` by level (as
    :attr:`HEBackend.ops_by_level` or :meth:`HEProgram.op_count_by_level` give them), or
    one :class:`OpCount` priced at ``level`` (``None``: :data:`COUNTING_LEVEL`).

    A PMult costs no encoding: the server encodes each weight plaintext once (see
    :class:`~artemis_core.deploy.evaluator.PyfhelEvaluator`)."""
    if isinstance(ops, OpCount):
        ops = {COUNTING_LEVEL if level is None else level: ops}
    total = 0.0
    for at, count in ops.items():
        price = partial(calibration.price, level=at)
        total += (count.rotations * price("rotation") + count.pmult * price("pmult")
                  + count.cmult * price("cmult") + count.adds * price("add")
                  + count.rescales * price("rescale"))
    return total


def user_calibration_path(engine: str = DEFAULT_ENGINE) -> Path:
    """``$XDG_CONFIG_HOME/artemis/calibration.json`` (``~/.config`` when unset) for our
    program, ``calibration-ENGINE.json`` beside it for another engine."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    name = "calibration.json" if engine == DEFAULT_ENGINE else f"calibration-{engine}.json"
    return Path(base) / "artemis" / name


def load_calibration(path: str | Path | None = None,
                     engine: str = DEFAULT_ENGINE) -> Calibration:
    """Read a calibration; ``None``: ``engine``'s user file if present, else its shipped
    default (see its ``note``), else, for an engine without either, our program's."""
    if path is not None:
        return _read(Path(path))
    user = user_calibration_path(engine)
    if user.exists():
        return _read(user)
    name = "default" if engine == DEFAULT_ENGINE else f"{engine}_default"
    shipped = resources.files("artemis_core").joinpath(f"data/calibration_{name}.json")
    if not shipped.is_file():
        return load_calibration()
    return _parse(shipped.read_text(), f"shipped data/calibration_{name}.json")


def save_calibration(calibration: Calibration, path: str | Path | None = None) -> Path:
    """Write ``calibration`` atomically (``None``: the user's file for its engine);
    returns the path."""
    target = Path(path) if path is not None else user_calibration_path(calibration.engine)
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

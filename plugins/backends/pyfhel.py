"""``pyfhel``: real CKKS through Pyfhel (Microsoft SEAL), counting every operation.

Pyfhel's plain calls mutate their first argument, match neither levels nor scales, and
let SEAL compose a rotation whose step has no key of its own out of other keys (two key
switches for one call). This backend returns new ciphertexts, tracks levels itself,
encodes plaintexts at the ciphertext's level, and refuses a rotation without its own
key, so that executed work is exactly what a plan counts. See docs/pyfhel.md.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from Pyfhel import PyCtxt, Pyfhel, PyPtxt

from artemis_core import hookimpl
from artemis_core.errors import BackendError, ParamsError
from artemis_core.he.backend import HEBackend, canonical_step
from artemis_core.he.latency import LEVEL_FIELDS
from artemis_core.he.params import SEAL_MAX_LOG_N, HEParams

#: Relative scale difference SEAL still accepts as "the same scale" (it compares
#: doubles to within a few ulps); anything larger is a mismatch we report ourselves.
SCALE_RTOL = 1e-12
#: Bytes of distinct ciphertexts cycled through when timing primitives: twice the
#: build machine's 32 MiB last-level cache, so that operands come from memory as in a
#: layer (a pool that fits in cache times PMults and additions 15-20 % fast).
POOL_BYTES = 64 << 20


@dataclass(frozen=True)
class PyfhelCiphertext:
    """A SEAL ciphertext with the level this backend tracks: rescales left (fresh:
    ``params.levels``); ``PyCtxt.mod_level`` is not reliable across operations."""

    ctxt: PyCtxt
    level: int
    owner: int  # id() of the backend that encrypted it: other keys decrypt garbage

    @property
    def scale(self) -> float:
        """The ciphertext's CKKS scale (SEAL keeps it exactly)."""
        return self.ctxt.scale


class PyfhelBackend(HEBackend):
    """Real CKKS on Microsoft SEAL through Pyfhel."""

    name = "pyfhel"
    description = "real CKKS (Microsoft SEAL via Pyfhel 3.5); measures encrypted latency"

    def __init__(self, params: HEParams) -> None:
        super().__init__(params)
        *data_bits, special_bits = params.coeff_modulus_bits
        if special_bits < max(data_bits):
            # Key switching divides its noise by the special prime only: a smaller one
            # leaves rotations visibly wrong (measured: 5e-2 absolute error at N=2^12).
            raise ParamsError(
                f"coeff_modulus_bits={list(params.coeff_modulus_bits)}: the last (special) "
                f"prime has {special_bits} bits, fewer than the largest data prime "
                f"({max(data_bits)}); rotations would be too noisy"
            )
        if params.log_n > SEAL_MAX_LOG_N and not params.allow_insecure:
            raise ParamsError(
                f"SEAL has no 128-bit table above N=2^{SEAL_MAX_LOG_N} and refuses "
                f"N=2^{params.log_n}; use N <= 2^{SEAL_MAX_LOG_N}, or allow_insecure "
                "(--allow-insecure) to run without SEAL's check (marked insecure)"
            )
        self._he = Pyfhel()
        status = self._he.contextGen(
            scheme="ckks", n=params.n, scale=2.0**params.scale_bits,
            qi_sizes=list(params.coeff_modulus_bits), sec=0 if params.allow_insecure else 128,
        )
        if status != "success: valid":
            raise ParamsError(
                f"SEAL refused log_n={params.log_n}, coeff_modulus_bits="
                f"{list(params.coeff_modulus_bits)}: {status}"
            )
        # A ciphertext at level l holds primes[: l + 1]; a rescale divides by primes[l].
        self._primes = [float(q) for q in self._he.get_qi()]
        self._steps: frozenset[int] = frozenset()
        self._has_keys = False
        #: Encoded plaintexts by (values, level, scale) when kept (see :meth:`_encode`).
        self._plaintexts: dict[tuple[bytes, int, float], PyPtxt] | None = None

    @property
    def pyfhel(self) -> Pyfhel:
        """The underlying Pyfhel object, e.g. to serialise keys and ciphertexts."""
        return self._he

    @property
    def rotation_steps(self) -> frozenset[int]:
        """Steps (canonical form) that have a rotation key of their own."""
        return self._steps

    @property
    def rotation_key_bytes(self) -> int:
        """Serialized size of all rotation keys generated (0 without any)."""
        return int(self._he.sizeof_rotate_key()) if self._steps else 0

    def keygen(self, rotation_steps: Iterable[int]) -> None:
        """Secret, public and relinearisation keys (once), and exactly one rotation key
        per distinct non-zero step (steps equal modulo the slot count share a key)."""
        if not self._has_keys:
            with _seal("keygen"):
                self._he.keyGen()
                self._he.relinKeyGen()
            self._has_keys = True
        steps = {canonical_step(int(s), self.params.slots) for s in rotation_steps} - {0}
        if steps:
            # An empty list would make Pyfhel generate every power-of-two key instead.
            with _seal("rotation keygen"):
                self._he.rotateKeyGen(rot_steps=sorted(steps))
        self._steps = frozenset(steps)

    def encrypt(self, values: np.ndarray, level: int | None = None) -> PyfhelCiphertext:
        """Encrypt up to ``slots`` real values (zero-padded) at ``level`` (``None``: the
        top level; lower levels are reached by dropping primes, the scale unchanged)."""
        self._require_keys("encrypt")
        level = self._encrypt_level(level)
        with _seal("encrypt"):
            ctxt = self._he.encryptFrac(self._slots_vector(values, "encrypt"))
            for _ in range(self.params.levels - level):
                self._he.mod_switch_to_next(ctxt)
        return PyfhelCiphertext(ctxt, level, id(self))

    def decrypt(self, ct: PyfhelCiphertext) -> np.ndarray:
        """Decrypt to ``slots`` real values."""
        self._check(ct, "decrypt")
        with _seal("decrypt"):
            return np.asarray(self._he.decryptFrac(ct.ctxt), dtype=np.float64)

    def rotate(self, ct: PyfhelCiphertext, step: int) -> PyfhelCiphertext:
        """Cyclic left shift by ``step``: one key switch with that step's own key."""
        self._check(ct, "rotate")
        canonical = canonical_step(int(step), self.params.slots)
        if canonical not in self._steps:
            known = ", ".join(map(str, sorted(self._steps))) or "none"
            raise BackendError(
                f"rotate: no rotation key for step {step} (canonical {canonical}); keys: "
                f"{known}. SEAL would compose it from other keys (several key switches)"
            )
        with _seal("rotate"):
            out = self._he.rotate(ct.ctxt, canonical, True)
        self._count_rotation(ct.level, canonical)
        return PyfhelCiphertext(out, ct.level, ct.owner)

    def add(self, a: PyfhelCiphertext, b: PyfhelCiphertext) -> PyfhelCiphertext:
        """Ciphertext + ciphertext at the same level and scale."""
        self._check_pair(a, b, "add")
        with _seal("add"):
            out = self._he.add(a.ctxt, b.ctxt, True)
        self._count(a.level, adds=1)
        return PyfhelCiphertext(out, a.level, a.owner)

    def multiply_plain(self, ct: PyfhelCiphertext, values: np.ndarray) -> PyfhelCiphertext:
        """Ciphertext x plaintext; the plaintext is encoded at the ciphertext's level at
        scale q_l (the prime the next rescale drops), so the rescaled product keeps the
        ciphertext's scale exactly and adds with other ciphertexts of that level."""
        self._check(ct, "multiply_plain")
        vector = self._slots_vector(values, "multiply_plain")
        if not vector.any():
            raise BackendError(
                "multiply_plain: all-zero plaintext; skip the product (SEAL refuses a "
                "transparent ciphertext)"
            )
        prime = self._rescale_prime(ct.level)
        self._check_room(ct, ct.scale * prime, "multiply_plain")
        plain = self._encode(vector, ct.level, prime)
        with _seal("multiply_plain"):
            out = self._he.multiply_plain(ct.ctxt, plain, True)
        self._count(ct.level, pmult=1)
        return PyfhelCiphertext(out, ct.level, ct.owner)

    def add_plain(self, ct: PyfhelCiphertext, values: np.ndarray) -> PyfhelCiphertext:
        """Ciphertext + plaintext, encoded at the ciphertext's level and scale."""
        self._check(ct, "add_plain")
        plain = self._encode(self._slots_vector(values, "add_plain"), ct.level, ct.scale)
        with _seal("add_plain"):
            out = self._he.add_plain(ct.ctxt, plain, True)
        self._count(ct.level, adds=1)
        return PyfhelCiphertext(out, ct.level, ct.owner)

    def rescale(self, ct: PyfhelCiphertext) -> PyfhelCiphertext:
        """Divide by the level's last prime and drop it; refused at the last level."""
        self._check(ct, "rescale")
        if ct.level == 0:
            raise BackendError(
                "rescale: no level left (ciphertext at level 0; coeff_modulus_bits="
                f"{list(self.params.coeff_modulus_bits)} allows {self.params.levels} "
                "rescales); use a deeper chain, e.g. HEParams.with_depth(log_n, depth)"
            )
        out = ct.ctxt.copy()
        with _seal("rescale"):
            self._he.rescale_to_next(out)
        self._count(ct.level, rescales=1)
        return PyfhelCiphertext(out, ct.level - 1, ct.owner)

    def multiply(self, a: PyfhelCiphertext, b: PyfhelCiphertext) -> PyfhelCiphertext:
        """Ciphertext x ciphertext at the same level, relinearised (one cmult); not
        rescaled."""
        self._check_levels(a, b, "multiply")
        self._check_room(a, a.scale * b.scale, "multiply")
        with _seal("multiply"):
            out = self._he.multiply(a.ctxt, b.ctxt, True)
            self._he.relinearize(out)
        self._count(a.level, cmult=1)
        return PyfhelCiphertext(out, a.level, a.owner)

    def measure_latencies(self, repeats: int = 20,
                          progress: Callable[[str], None] | None = None,
                          ) -> dict[str, float | dict[int, float]]:
        """Median seconds of each primitive (``latency.OP_FIELDS``) over ``repeats``
        runs on random data (``progress(op)`` after each): the per-level operations
        (``latency.LEVEL_FIELDS``) at every level from the top down to 1, as ``{level:
        seconds}``, encryption and decryption at the top level. ``pmult`` is the
        server's product with an already encoded plaintext (it encodes each weight once);
        ``encode`` times the encoding; rotations cycle over many keys, as a layer's do.
        Leaves one rotation key (step 1), so
        :attr:`rotation_key_bytes` is one key's size; op counts are left as they were."""
        if repeats < 1:
            raise BackendError(f"repeats={repeats} must be at least 1")
        saved = self._counts.copy(), {k: set(v) for k, v in self._steps_used.items()}
        saved_plaintexts, self._plaintexts = self._plaintexts, {}
        # Distinct operands and rotation keys in turn, as in a layer: one ciphertext or
        # one key over and over stays in cache and times every operation 10-20 % fast.
        # (A ciphertext: 2 polynomials of N 64-bit words per prime at the top level.)
        pool = max(8, -(-POOL_BYTES // (2 * self.params.n * 8 * (self.params.levels + 1))))
        steps = range(1, 1 + min(pool, max(8, -(-POOL_BYTES // self.params.rotation_key_bytes)),
                                 self.params.slots // 2 - 1))
        self.keygen(steps)
        xs = np.random.default_rng(0).uniform(-1, 1, (pool, self.params.slots))
        top = self.params.levels
        medians: dict[str, Any] = {}
        for level in range(top, 0, -1):
            for name, op in self._timed_ops(level, xs, steps, with_client=level == top).items():
                seconds = _median_seconds(op, repeats, pool)
                if name in LEVEL_FIELDS:
                    medians.setdefault(name, {})[level] = seconds
                else:
                    medians[name] = seconds
                if progress is not None:
                    progress(f"{name} at level {level}")
        self.keygen([1])  # one key left: rotation_key_bytes is one key's size
        self._counts, self._steps_used = saved[0], defaultdict(set, saved[1])
        self._plaintexts = saved_plaintexts
        return medians

    def _timed_ops(self, level: int, xs: np.ndarray, steps: Sequence[int],
                   with_client: bool) -> dict[str, Callable[[int], Any]]:
        """Operation ``i`` of each primitive on ciphertexts at ``level`` (``with_client``:
        also encryption and decryption)."""
        cts = [self.encrypt(x, level) for x in xs]
        prime = self._rescale_prime(level)
        products = [self.multiply_plain(ct, x) for ct, x in zip(cts, xs, strict=True)]
        ops: dict[str, Callable[[int], Any]] = {
            "rotation": lambda i: self.rotate(cts[i], steps[i % len(steps)]),
            "pmult": lambda i: self.multiply_plain(cts[i], xs[i - 1]),  # encoded above
            "cmult": lambda i: self.multiply(cts[i], cts[i - 1]),
            "add": lambda i: self.add(cts[i], cts[i - 1]),
            "rescale": lambda i: self.rescale(products[i]),
            "encode": lambda i: self._encode_now(xs[i], level, prime),
        }
        if with_client:
            ops["encrypt"] = lambda i: self.encrypt(xs[i])
            ops["decrypt"] = lambda i: self.decrypt(cts[i])
        return ops

    def _rescale_prime(self, level: int) -> float:
        if level == 0:
            return 2.0**self.params.scale_bits  # nothing left to rescale with
        return self._primes[level]

    def _encode(self, vector: np.ndarray, level: int, scale: float) -> PyPtxt:
        """The plaintext of ``vector`` at ``level`` and ``scale``; encoded once and kept
        when this backend keeps plaintexts (a server, whose weights repeat)."""
        if self._plaintexts is None:
            return self._encode_now(vector, level, scale)
        key = (vector.tobytes(), level, scale)
        plain = self._plaintexts.get(key)
        if plain is None:
            plain = self._plaintexts[key] = self._encode_now(vector, level, scale)
        return plain

    def _encode_now(self, vector: np.ndarray, level: int, scale: float) -> PyPtxt:
        with _seal("encode"):
            plain = self._he.encodeFrac(vector, scale=scale)
            for _ in range(self.params.levels - level):
                self._he.mod_switch_to_next(plain)
        return plain

    def _slots_vector(self, values: Any, op: str) -> np.ndarray:
        vector = np.asarray(values, dtype=np.float64)
        if vector.ndim != 1 or vector.size > self.params.slots:
            raise BackendError(
                f"{op}: expected a 1-D vector of at most {self.params.slots} values, "
                f"got shape {vector.shape}"
            )
        if not np.isfinite(vector).all():
            raise BackendError(f"{op}: values must be finite (got NaN or infinity)")
        padded = np.zeros(self.params.slots)
        padded[: vector.size] = vector
        return padded

    def _require_keys(self, op: str) -> None:
        if not self._has_keys:
            raise BackendError(f"{op}: call keygen(rotation_steps) first")

    def _check(self, ct: Any, op: str) -> None:
        if not isinstance(ct, PyfhelCiphertext) or ct.owner != id(self):
            raise BackendError(f"{op}: not a ciphertext of this pyfhel backend: {ct!r}")

    def _check_room(self, ct: PyfhelCiphertext, scale: float, op: str) -> None:
        modulus_bits = sum(self.params.coeff_modulus_bits[: ct.level + 1])
        if math.log2(scale) >= modulus_bits:
            raise BackendError(
                f"{op}: no level left for a product at level {ct.level} (scale "
                f"2^{math.log2(scale):.1f} does not fit the remaining {modulus_bits}-bit "
                "modulus); use a deeper chain, e.g. HEParams.with_depth(log_n, depth)"
            )

    def _check_levels(self, a: PyfhelCiphertext, b: PyfhelCiphertext, op: str) -> None:
        self._check(a, op)
        self._check(b, op)
        if a.level != b.level:
            raise BackendError(
                f"{op}: level mismatch ({a.level} vs {b.level}); rescale the operands to "
                "the same level first"
            )

    def _check_pair(self, a: PyfhelCiphertext, b: PyfhelCiphertext, op: str) -> None:
        self._check_levels(a, b, op)
        if not math.isclose(a.scale, b.scale, rel_tol=SCALE_RTOL):
            raise BackendError(
                f"{op}: scale mismatch ({a.scale:.12g} vs {b.scale:.12g}) at level {a.level}; "
                "SEAL adds only ciphertexts of the same scale"
            )


def _median_seconds(op: Callable[[int], Any], repeats: int, pool: int) -> float:
    """Median time of ``op(i)`` over ``repeats`` calls, ``i`` cycling over ``pool``
    operands."""
    for i in range(pool):
        op(i)  # warm-up: first calls pay allocation and page faults
    times = []
    for r in range(repeats):
        start = time.thread_time()
        op(r % pool)
        times.append(time.thread_time() - start)
    return float(np.median(times))


@contextmanager
def _seal(op: str) -> Iterator[None]:
    """Turn SEAL's exceptions into one-line BackendErrors naming the operation."""
    try:
        yield
    except (ValueError, RuntimeError) as exc:
        raise BackendError(f"{op}: SEAL refused: {exc}") from exc


@hookimpl
def register_he_backends(register) -> None:
    """Register the ``pyfhel`` backend."""
    register(PyfhelBackend)

"""CKKS parameters, validated once against the 128-bit security table."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ParamsError

#: Largest total modulus log2(Q) for 128-bit classical security with a ternary secret:
#: the HomomorphicEncryption.org Security Standard (2018, Table 1) for N <= 2^15, which
#: SEAL enforces, and OpenFHE's HEStd_128_classic table above it (SEAL has none there).
MAX_LOG_Q_128 = {10: 27, 11: 54, 12: 109, 13: 218, 14: 438, 15: 881, 16: 1747, 17: 3523}
MAX_PRIME_BITS = 60
#: SEAL's own 128-bit table stops at N = 2^15: it refuses larger rings unless its
#: security check is switched off.
SEAL_MAX_LOG_N = 15
#: SEAL's serialisation overheads (bytes): per key-switching component, per key set.
GALOIS_COMPONENT_HEADER = 113
GALOIS_SET_HEADER = 56


@dataclass(frozen=True)
class HEParams:
    """Ring degree N = 2**log_n, modulus chain (bits per prime, the last one special)
    and the CKKS scale 2**scale_bits. ``levels`` rescales are available."""

    log_n: int = 14
    coeff_modulus_bits: tuple[int, ...] = (60, 40, 40, 60)
    scale_bits: int = 40
    allow_insecure: bool = False

    def __post_init__(self) -> None:
        if self.log_n not in MAX_LOG_Q_128:
            raise ParamsError(
                f"log_n={self.log_n} unsupported; "
                f"allowed: {min(MAX_LOG_Q_128)}..{max(MAX_LOG_Q_128)}"
            )
        bits = tuple(self.coeff_modulus_bits)
        object.__setattr__(self, "coeff_modulus_bits", bits)
        if len(bits) < 2:
            raise ParamsError(f"coeff_modulus_bits={list(bits)} needs at least 2 primes")
        bad = [b for b in bits if not 20 <= b <= MAX_PRIME_BITS]
        if bad:
            raise ParamsError(
                f"coeff_modulus_bits={list(bits)}: primes {bad} out of range; allowed 20..60 bits"
            )
        if not 20 <= self.scale_bits < bits[0]:
            raise ParamsError(
                f"scale_bits={self.scale_bits} must be at least 20 and below the first prime "
                f"({bits[0]} bits)"
            )
        if self.log_q > MAX_LOG_Q_128[self.log_n] and not self.allow_insecure:
            raise ParamsError(
                f"log2(Q)={self.log_q} exceeds {MAX_LOG_Q_128[self.log_n]} for N=2^{self.log_n}: "
                "not 128-bit secure (use a larger N, fewer/smaller primes, or allow_insecure)"
            )

    @classmethod
    def for_ring_degree(cls, n: int, **kwargs) -> HEParams:
        """Build from the ring degree N itself; N must be a power of two."""
        if not isinstance(n, int) or n < 2 or n & (n - 1):
            raise ParamsError(f"ring degree N={n!r} must be a power of two")
        return cls(log_n=n.bit_length() - 1, **kwargs)

    @classmethod
    def with_depth(cls, log_n: int, depth: int, scale_bits: int = 40, **kwargs) -> HEParams:
        """A chain with ``depth`` rescales: [60, scale_bits x depth, 60]."""
        if depth < 0:
            raise ParamsError(f"depth={depth} must be non-negative")
        return cls(log_n, (60, *([scale_bits] * depth), 60), scale_bits, **kwargs)

    @classmethod
    def deepest(cls, log_n: int, max_depth: int, scale_bits: int = 40) -> HEParams:
        """The chain [60, scale_bits x depth, 60] with the most rescales (at most
        ``max_depth``, at least 1) that is 128-bit secure at N = 2^log_n."""
        room = MAX_LOG_Q_128.get(log_n, 0) - 2 * MAX_PRIME_BITS
        return cls.with_depth(log_n, max(1, min(max_depth, room // scale_bits)), scale_bits)

    @property
    def security(self) -> str:
        """What the parameters are: ``128-bit`` (HE Standard, N <= 2^15: SEAL checks it
        too), ``128-bit (OpenFHE table; SEAL cannot check)`` above, or ``insecure``."""
        if self.log_q > MAX_LOG_Q_128[self.log_n]:
            return "insecure"
        return "128-bit" if self.log_n <= SEAL_MAX_LOG_N else \
            "128-bit (OpenFHE table; SEAL cannot check)"

    @property
    def n(self) -> int:
        """Ring degree N."""
        return 1 << self.log_n

    @property
    def slots(self) -> int:
        """CKKS slots S = N/2."""
        return self.n // 2

    @property
    def log_q(self) -> int:
        """Total modulus size in bits (special prime included, as the standard counts)."""
        return sum(self.coeff_modulus_bits)

    @property
    def levels(self) -> int:
        """Rescales available on a fresh ciphertext."""
        return len(self.coeff_modulus_bits) - 2

    @property
    def rotation_key_bytes(self) -> int:
        """Serialised size of one rotation (Galois) key in SEAL: (k-1) decomposition
        components, each 2 polynomials over k primes of N 64-bit words plus a 113-byte
        header (tests/test_params.py checks it against Pyfhel's own serialisation)."""
        k = len(self.coeff_modulus_bits)
        return (k - 1) * (2 * k * self.n * 8 + GALOIS_COMPONENT_HEADER)

    def rotation_keys_bytes(self, count: int) -> int:
        """Serialised size of a set of ``count`` rotation keys, as a client sends it:
        each key, and once for the set an N-word table and a 56-byte header."""
        if count < 0:
            raise ParamsError(f"count={count} rotation keys must be non-negative")
        return count * self.rotation_key_bytes + (self.n * 8 + GALOIS_SET_HEADER if count else 0)


def default_log_n(input_shape: tuple[int, ...]) -> int:
    """log2 N for a model input C×H×W: 16 for CIFAR-sized and larger inputs (over 16×16
    pixels), 14 for small ones such as 8×8 digits, raised until one channel's
    next_pow2(H·W) slot region fits in the N/2 slots."""
    pixels = int(input_shape[-2]) * int(input_shape[-1])
    log_n = 16 if pixels > 256 else 14
    while (1 << (log_n - 1)) < pixels and log_n < max(MAX_LOG_Q_128):
        log_n += 1
    return log_n

"""HEParams: the security table, the ring degree and the derived sizes."""

from __future__ import annotations

import pytest

from artemis_core import HEParams, ParamsError


def test_slots_levels_and_key_size():
    params = HEParams(14, (60, 40, 40, 60), 40)
    assert (params.n, params.slots, params.levels, params.log_q) == (16384, 8192, 2, 200)
    assert params.rotation_key_bytes == 3 * (2 * 4 * 16384 * 8 + 113)
    assert params.rotation_keys_bytes(0) == 0
    assert params.rotation_keys_bytes(2) == 2 * params.rotation_key_bytes + 16384 * 8 + 56


# Published 128-bit classical bounds on log2(Q), ternary secret: the HomomorphicEncryption.org
# Security Standard (Albrecht et al., 2018, Table 1) up to N = 2^15, and OpenFHE's table
# (HEStd_128_classic, src/core/lib/lattice/stdlatticeparms.cpp) for N = 2^16 and 2^17.
PUBLISHED_128 = {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881,
                 65536: 1747, 131072: 3523}


@pytest.mark.parametrize("n, limit", PUBLISHED_128.items())
def test_security_table_is_the_published_one(n, limit):
    log_n = n.bit_length() - 1
    if limit >= 42:  # two primes above the 20-bit scale: the smallest chain there is
        assert HEParams(log_n, _chain_of(limit), 20).log_q == limit
    with pytest.raises(ParamsError, match=f"exceeds {limit} for N=2\\^{log_n}"):
        HEParams(log_n, _chain_of(max(limit + 1, 42)), 20)


def _chain_of(bits: int) -> tuple[int, ...]:
    """Primes of 21..60 bits summing to exactly ``bits`` (bits >= 42)."""
    count = max(-(-bits // 60), 2)
    base, extra = divmod(bits, count)
    return tuple(base + (i < extra) for i in range(count))


@pytest.mark.parametrize("log_n, limit", [(13, 218), (14, 438), (15, 881), (16, 1747), (17, 3523)])
def test_insecure_modulus_is_refused_naming_the_limit(log_n, limit):
    bits = (60,) * (limit // 60 + 1)
    with pytest.raises(ParamsError, match=f"exceeds {limit} for N=2\\^{log_n}"):
        HEParams(log_n, bits, 40)
    assert HEParams(log_n, bits, 40, allow_insecure=True).log_q > limit


def test_largest_secure_modulus_is_accepted():
    assert HEParams(13, (60, 40, 40, 40, 38), 38).log_q == 218


@pytest.mark.parametrize("n", [3000, 0, 2**14 + 1])
def test_ring_degree_must_be_a_power_of_two(n):
    with pytest.raises(ParamsError, match=f"N={n} must be a power of two"):
        HEParams.for_ring_degree(n)


def test_ring_degree_sets_log_n():
    assert HEParams.for_ring_degree(2**15).log_n == 15


@pytest.mark.parametrize("kwargs, message", [
    ({"log_n": 9}, "log_n=9 unsupported"),
    ({"coeff_modulus_bits": (60,)}, "at least 2 primes"),
    ({"coeff_modulus_bits": (60, 70, 60)}, "out of range"),
    ({"scale_bits": 60}, "below the first prime"),
])
def test_inconsistent_parameters_are_refused(kwargs, message):
    with pytest.raises(ParamsError, match=message):
        HEParams(**kwargs)


def test_depth_builds_the_chain():
    params = HEParams.with_depth(15, 5, 40)
    assert params.coeff_modulus_bits == (60, 40, 40, 40, 40, 40, 60)
    assert params.levels == 5

"""The ``sim`` backend: exact slot arithmetic, CKKS-like refusals, and op counting."""

from __future__ import annotations

import numpy as np
import pytest
from artemis_plugins.backends.sim import SimBackend

from artemis_core import BackendError, HEParams, OpCount, registry

PARAMS = HEParams(10, allow_insecure=True)  # 512 slots, 2 levels


@pytest.fixture
def sim():
    backend = SimBackend(PARAMS)
    backend.keygen([1, -3])
    return backend


def test_is_registered_as_sim():
    assert registry.get("he_backend", "sim") is SimBackend


def test_encrypt_pads_to_the_slot_count_and_decrypts_exactly(sim):
    ct = sim.encrypt(np.arange(5.0))
    out = sim.decrypt(ct)
    assert out.shape == (512,)
    assert np.array_equal(out[:5], np.arange(5.0)) and not out[5:].any()
    assert ct.level == PARAMS.levels


def test_rotation_is_a_cyclic_left_shift(sim):
    values = np.arange(512.0)
    assert np.array_equal(sim.decrypt(sim.rotate(sim.encrypt(values), 1)), np.roll(values, -1))
    assert np.array_equal(sim.decrypt(sim.rotate(sim.encrypt(values), -3)), np.roll(values, 3))


def test_a_key_serves_every_step_equal_modulo_the_slots(sim):
    sim.rotate(sim.encrypt(np.ones(4)), 512 - 3)
    assert sim.ops.rotation_steps == frozenset({-3})


def test_rotation_without_its_key_is_refused(sim):
    with pytest.raises(BackendError, match="no rotation key for step 2"):
        sim.rotate(sim.encrypt(np.ones(4)), 2)


def test_every_operation_is_counted(sim):
    a = sim.encrypt(np.ones(4))
    b = sim.multiply_plain(a, np.full(4, 2.0))
    with sim.rotation_purpose("input"):
        b = sim.rotate(b, 1)
    with sim.rotation_purpose("output"):
        b = sim.rotate(b, -3)
    b = sim.add(b, sim.multiply_plain(a, np.ones(4)))
    b = sim.rescale(b)
    b = sim.add_plain(b, np.ones(4))
    assert sim.ops == OpCount(input_rotations=1, output_rotations=1, pmult=2, adds=2,
                              rescales=1, rotation_steps=frozenset({1, -3}))
    sim.reset_counts()
    assert sim.ops == OpCount()


def test_products_rescale_and_levels(sim):
    ct = sim.rescale(sim.multiply_plain(sim.encrypt(np.full(4, 3.0)), np.full(4, 0.5)))
    assert ct.level == PARAMS.levels - 1
    assert np.allclose(sim.decrypt(ct)[:4], 1.5)


def test_rescale_at_level_zero_is_refused():
    sim = SimBackend(HEParams(10, (30, 30), 25, allow_insecure=True))
    ct = sim.multiply_plain(sim.encrypt(np.ones(2)), np.ones(2))
    with pytest.raises(BackendError, match="level 0"):
        sim.rescale(ct)


def test_adding_different_scales_is_refused(sim):
    fresh = sim.encrypt(np.ones(2))
    with pytest.raises(BackendError, match="scale"):
        sim.add(fresh, sim.multiply_plain(fresh, np.ones(2)))


def test_product_with_an_all_zero_plaintext_is_refused(sim):
    with pytest.raises(BackendError, match="all-zero plaintext"):
        sim.multiply_plain(sim.encrypt(np.ones(2)), np.zeros(2))


def test_too_many_values_are_refused(sim):
    with pytest.raises(BackendError, match="do not fit in 512 slots"):
        sim.encrypt(np.ones(513))


def test_unknown_rotation_purpose_is_refused(sim):
    with pytest.raises(BackendError, match="allowed: input, output, other"), \
            sim.rotation_purpose("diagonal"):
        pass


def test_ciphertext_product_multiplies_scales_and_counts_a_cmult(sim):
    a, b = sim.encrypt(np.arange(4.0)), sim.encrypt(np.full(4, 3.0))
    product = sim.rescale(sim.multiply(a, b))
    assert np.array_equal(sim.decrypt(product)[:4], 3 * np.arange(4.0))
    assert sim.ops == OpCount(cmult=1, rescales=1)
    with pytest.raises(BackendError, match="levels 1 and 2"):
        sim.multiply(product, a)

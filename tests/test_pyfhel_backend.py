"""The ``pyfhel`` backend: real CKKS primitives, exact op counts, clear refusals."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from artemis_core.errors import BackendError, ParamsError
from artemis_core.he.executor import run_layer
from artemis_core.he.params import HEParams
from artemis_core.he.specs import ConvSpec, OpCount
from artemis_core.registry import PluginWarning, build_plugin_manager, build_registry, get

PARAMS = HEParams.with_depth(13, 1)  # [60, 40, 60]: one rescale, fast
STEPS = (1, 2, -5)
TOL = 1e-5  # CKKS error at scale 2^40 on values of order 1


@pytest.fixture(scope="module")
def backend():
    be = get("he_backend", "pyfhel")(PARAMS)
    be.keygen(STEPS)
    return be


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.fixture
def x(rng):
    return rng.uniform(-1, 1, PARAMS.slots)


def test_encrypt_decrypt_round_trip(backend, x):
    assert np.abs(backend.decrypt(backend.encrypt(x)) - x).max() < TOL


def test_short_vectors_are_zero_padded(backend):
    out = backend.decrypt(backend.encrypt(np.array([1.0, 2.0])))
    assert out.shape == (PARAMS.slots,)
    assert np.abs(out[:2] - [1, 2]).max() < TOL and np.abs(out[2:]).max() < TOL


@pytest.mark.parametrize("step", [1, -5, PARAMS.slots - 5])
def test_rotate_is_a_left_shift_counted_once(backend, x, step):
    backend.reset_counts()
    ct = backend.encrypt(x)
    out = backend.decrypt(backend.rotate(ct, step))
    assert np.abs(out - np.roll(x, -step)).max() < TOL
    assert backend.ops.rotations == 1
    assert backend.ops.rotation_steps == {-5 if step != 1 else 1}
    assert np.abs(backend.decrypt(ct) - x).max() < TOL  # the input is left untouched


def test_rotation_without_its_own_key_is_refused(backend, x):
    # SEAL would compose 3 = 1 + 2 from the other keys (two key switches).
    backend.reset_counts()
    with pytest.raises(BackendError, match="no rotation key for step 3"):
        backend.rotate(backend.encrypt(x), 3)
    assert backend.ops == OpCount()


def test_keygen_makes_one_key_per_distinct_step():
    be = get("he_backend", "pyfhel")(PARAMS)
    be.keygen([])
    assert be.rotation_steps == frozenset() and be.rotation_key_bytes == 0
    be.keygen([4, 4 - PARAMS.slots, 0])  # same Galois element twice; 0 needs no key
    one = be.rotation_key_bytes
    be.keygen([4, 8])
    assert be.rotation_steps == {4, 8}
    assert 1.8 * one < be.rotation_key_bytes < 2.2 * one
    assert one == pytest.approx(PARAMS.rotation_key_bytes, rel=0.1)


def test_multiply_accumulate_rescale(backend, x, rng):
    w1, w2 = rng.uniform(-1, 1, (2, PARAMS.slots))
    backend.reset_counts()
    ct = backend.encrypt(x)
    total = backend.add(backend.multiply_plain(ct, w1),
                        backend.multiply_plain(backend.rotate(ct, 2), w2))
    out = backend.rescale(total)
    assert np.abs(backend.decrypt(out) - (x * w1 + np.roll(x, -2) * w2)).max() < TOL
    assert (out.level, total.level) == (PARAMS.levels - 1, PARAMS.levels)
    assert out.scale == backend.encrypt(x).scale  # plaintexts encoded at the dropped prime
    assert (backend.ops.pmult, backend.ops.adds, backend.ops.rescales,
            backend.ops.rotations) == (2, 1, 1, 1)


def test_ops_are_counted_at_the_level_they_run_at(backend, x, rng):
    w = rng.uniform(-1, 1, PARAMS.slots)
    backend.reset_counts()
    ct = backend.encrypt(x)
    low = backend.rescale(backend.multiply_plain(backend.rotate(ct, 1), w))
    backend.add(backend.rotate(low, 2), low)
    assert backend.ops_by_level == {
        0: OpCount(other_rotations=1, adds=1, rotation_steps=frozenset({2})),
        1: OpCount(other_rotations=1, pmult=1, rescales=1, rotation_steps=frozenset({1})),
    }
    assert backend.ops == sum(backend.ops_by_level.values(), OpCount())


@pytest.mark.parametrize("name", ["pyfhel", "sim"])
def test_encrypt_at_a_lower_level_keeps_values_and_scale(name, x):
    deep = get("he_backend", name)(HEParams.with_depth(13, 2))
    deep.keygen([1])
    ct = deep.encrypt(x, level=1)
    assert ct.level == 1
    assert np.abs(deep.decrypt(deep.rotate(ct, 1)) - np.roll(x, -1)).max() < TOL
    assert set(deep.ops_by_level) == {1}
    for bad in (3, -1, 1.5):
        with pytest.raises(BackendError, match=f"level={bad!r}; allowed: 0..2"):
            deep.encrypt(x, level=bad)


def test_only_a_server_keeps_its_encoded_plaintexts(backend, x, rng):
    from artemis_core.deploy.evaluator import EvaluationKeys, PyfhelEvaluator

    w = rng.uniform(-1, 1, PARAMS.slots)
    backend.multiply_plain(backend.encrypt(x), w)
    assert backend._plaintexts is None  # a client encodes and forgets
    server = PyfhelEvaluator(PARAMS, EvaluationKeys.export(backend))
    ct = server.encrypt(x)
    first, again = server.multiply_plain(ct, w), server.multiply_plain(ct, w.copy())
    assert len(server._plaintexts) == 1  # the same values: encoded once
    assert first.level == again.level == PARAMS.levels


def test_rescaled_products_add_at_the_lower_level(backend, x, rng):
    w = rng.uniform(-1, 1, PARAMS.slots)
    ct = backend.encrypt(x)
    a = backend.rescale(backend.multiply_plain(ct, w))
    b = backend.rescale(backend.multiply_plain(backend.rotate(ct, 1), w))
    assert np.abs(backend.decrypt(backend.add(a, b)) - (x * w + np.roll(x, -1) * w)).max() < TOL


def test_add_plain_after_rescale(backend, x, rng):
    w, bias = rng.uniform(-1, 1, (2, PARAMS.slots))
    backend.reset_counts()
    out = backend.add_plain(backend.rescale(backend.multiply_plain(backend.encrypt(x), w)), bias)
    assert np.abs(backend.decrypt(out) - (x * w + bias)).max() < TOL
    assert backend.ops.adds == 1


def test_ciphertext_product_is_relinearised_and_counted(backend, x, rng):
    y = rng.uniform(-1, 1, PARAMS.slots)
    backend.reset_counts()
    out = backend.rescale(backend.multiply(backend.encrypt(x), backend.encrypt(y)))
    assert np.abs(backend.decrypt(out) - x * y).max() < TOL
    assert backend.ops.cmult == 1 and backend.ops.rescales == 1
    assert out.ctxt.size() == 2


def test_level_mismatch_is_refused(backend, x):
    ct = backend.encrypt(x)
    low = backend.rescale(backend.multiply_plain(ct, x))
    for op in (backend.add, backend.multiply):
        with pytest.raises(BackendError, match=r"level mismatch \(1 vs 0\)"):
            op(ct, low)


def test_scale_mismatch_is_refused(backend, x):
    ct = backend.encrypt(x)
    with pytest.raises(BackendError, match="scale mismatch"):
        backend.add(backend.multiply(ct, ct), backend.multiply_plain(ct, x))


def test_too_shallow_chains_are_refused(backend, x):
    low = backend.rescale(backend.multiply_plain(backend.encrypt(x), x))
    with pytest.raises(BackendError, match="rescale: no level left.*deeper chain"):
        backend.rescale(low)
    for product in (lambda: backend.multiply_plain(low, x), lambda: backend.multiply(low, low)):
        with pytest.raises(BackendError, match="no level left for a product at level 0"):
            product()


def test_all_zero_plaintext_is_refused(backend, x):
    with pytest.raises(BackendError, match="all-zero plaintext"):
        backend.multiply_plain(backend.encrypt(x), np.zeros(10))


@pytest.mark.parametrize("values, message", [
    (np.ones(PARAMS.slots + 1), "at most 4096 values"),
    (np.ones((2, 3)), "1-D vector"),
    (np.array([1.0, np.nan]), "finite"),
])
def test_bad_vectors_are_refused(backend, values, message):
    with pytest.raises(BackendError, match=message):
        backend.encrypt(values)


def test_foreign_ciphertexts_are_refused(backend, x):
    other = get("he_backend", "pyfhel")(PARAMS)
    other.keygen([])
    with pytest.raises(BackendError, match="not a ciphertext of this pyfhel backend"):
        backend.decrypt(other.encrypt(x))


def test_encrypt_before_keygen_is_refused(x):
    with pytest.raises(BackendError, match="keygen"):
        get("he_backend", "pyfhel")(PARAMS).encrypt(x)


def test_small_special_prime_is_refused():
    with pytest.raises(ParamsError, match="special.*rotations would be too noisy"):
        get("he_backend", "pyfhel")(HEParams(12, (40, 30, 30), 30))


def test_missing_pyfhel_is_a_plugin_warning(monkeypatch):
    monkeypatch.setitem(sys.modules, "Pyfhel", None)  # import Pyfhel -> ImportError
    monkeypatch.delitem(sys.modules, "artemis_plugins.backends.pyfhel", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = build_registry(*build_plugin_manager())
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]
    assert any("artemis_plugins.backends.pyfhel" in m and "Pyfhel" in m for m in messages)
    assert "pyfhel" not in registry.names("he_backend")
    assert registry.names("model")  # the others keep working


@pytest.mark.parametrize("prune", ["dense", "diagonal"])
def test_conv_layer_matches_torch_and_executes_the_predicted_ops(prune):
    """A 3x3 conv (with bias) through the gazelle plan on real CKKS: the decrypted output
    is torch's within CKKS error and the executed ops are the plan's, as on ``sim``."""
    spec = ConvSpec("conv", 6, 5, 3, 1, 1, 8, 8, bias=True)
    gen = torch.Generator().manual_seed(3)
    weight = torch.randn(spec.weight_shape, generator=gen, dtype=torch.float64)
    bias = torch.randn(spec.c_out, generator=gen, dtype=torch.float64)
    x = torch.randn(spec.c_in, 8, 8, generator=gen, dtype=torch.float64)
    cost_model = get("cost_model", "gazelle")()
    mask = torch.ones(spec.weight_shape)
    if prune == "diagonal":
        groups = cost_model.group_index(spec, PARAMS, "diagonal")
        dropped = groups[::2]
        mask.view(-1)[dropped[dropped >= 0]] = 0
    plan = cost_model.plan(spec, PARAMS, mask)
    real, sim = get("he_backend", "pyfhel")(PARAMS), get("he_backend", "sim")(PARAMS)
    out = run_layer(plan, real, x, weight * mask, bias)
    run_layer(plan, sim, x, weight * mask, bias)
    expected = F.conv2d(x[None], weight * mask, bias, padding=1)[0]
    assert (out - expected).abs().max() < 1e-5 * expected.abs().max()
    assert real.ops == plan.op_count() == sim.ops
    if prune == "diagonal":
        assert real.ops.rotations < cost_model.count(spec, PARAMS).rotations

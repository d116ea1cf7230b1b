"""The latency model: calibration files and OpCount -> seconds."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from artemis_core.errors import ArtemisError, CalibrationError
from artemis_core.he.latency import (
    COUNTING_LEVEL,
    LEVEL_FIELDS,
    Calibration,
    estimate_seconds,
    load_calibration,
    save_calibration,
    user_calibration_path,
)
from artemis_core.he.specs import OpCount, add_levels


def _calibration(**changes) -> Calibration:
    """Seconds at levels 1..3 of a depth-3 chain: rotation and cmult quadratic in the
    primes k = level + 1 (k² ms, 1.5·k² ms), the rest linear."""
    base = Calibration(
        log_n=14, coeff_modulus_bits=(60, 40, 40, 40, 60),
        rotation={1: 4e-3, 2: 9e-3, 3: 16e-3}, pmult={1: 2e-4, 2: 3e-4, 3: 4e-4},
        cmult={1: 6e-3, 2: 13.5e-3, 3: 24e-3}, add={1: 6e-5, 2: 9e-5, 3: 1.2e-4},
        rescale={1: 6e-4, 2: 9e-4, 3: 1.2e-3}, encode={1: 1e-3, 2: 1e-3, 3: 1e-3},
        encrypt=8e-3, decrypt=3e-3, rotation_key_bytes=1_600_000, machine="test box",
        measured_at="2026-01-01T00:00:00",
    )
    return replace(base, **changes)


@pytest.fixture
def config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config"


def test_save_then_load_round_trips(tmp_path):
    cal = _calibration()
    path = save_calibration(cal, tmp_path / "sub" / "cal.json")
    assert load_calibration(path) == cal
    assert [p.name for p in path.parent.iterdir()] == ["cal.json"]  # no temp file left


def test_save_replaces_an_existing_file(tmp_path):
    path = tmp_path / "cal.json"
    save_calibration(_calibration(rotation={3: 1.0}), path)
    save_calibration(_calibration(rotation={3: 2.0}), path)
    assert load_calibration(path).rotation == {3: 2.0}


def test_default_path_is_the_user_file(config_home):
    cal = _calibration(rotation={2: 0.5})
    assert save_calibration(cal) == config_home / "artemis" / "calibration.json"
    assert user_calibration_path() == config_home / "artemis" / "calibration.json"
    assert load_calibration() == cal


def test_without_a_user_file_the_shipped_default_loads(config_home):
    cal = load_calibration()
    assert (cal.log_n, cal.coeff_modulus_bits) == (14, (60, 40, 40, 40, 40, 60))
    assert all(set(getattr(cal, op)) == {1, 2, 3, 4} for op in LEVEL_FIELDS)
    for level in range(5):
        price = partial(cal.price, level=level)
        assert price("rotation") > price("pmult") > price("add") > 0  # key switching dominates
    for op in ("rotation", "pmult", "cmult", "add", "rescale"):  # fewer primes, less work
        assert [cal.price(op, level) for level in range(5)] == sorted(
            cal.price(op, level) for level in range(5))
    assert "2^14" in cal.note


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    (json.dumps({"log_n": 14}), "missing fields"),
])
def test_corrupt_files_give_one_line_errors(tmp_path, text, message):
    path = tmp_path / "cal.json"
    path.write_text(text)
    with pytest.raises(CalibrationError, match=message):
        load_calibration(path)


def test_a_file_that_is_not_text_is_a_one_line_error(tmp_path):
    path = tmp_path / "cal.json"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(CalibrationError, match="not valid JSON"):
        load_calibration(path)


def test_unknown_fields_are_named(tmp_path):
    path = tmp_path / "cal.json"
    path.write_text(json.dumps({**_calibration().to_dict(), "warp": 9}))
    with pytest.raises(CalibrationError, match="unknown fields \\['warp'\\]"):
        load_calibration(path)


def test_missing_file_is_an_artemis_error(tmp_path):
    with pytest.raises(ArtemisError, match="cannot read calibration"):
        load_calibration(tmp_path / "absent.json")


def test_an_unwritable_path_is_an_artemis_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ArtemisError, match="cannot write calibration"):
        save_calibration(_calibration(), blocker / "cal.json")  # its parent is a file


@pytest.mark.parametrize("changes, message", [
    ({"rotation": {1: -1.0}}, "'rotation': {1: -1.0}; expected non-negative seconds"),
    ({"pmult": {4: 1e-4}}, "'pmult': {4: 0.0001}; expected non-negative seconds at levels 0..3"),
    ({"add": {}}, "'add': no level"),
    ({"encrypt": -1.0}, "must be non-negative seconds"),
    ({"rescale": 1e-3}, "'rescale' is 0.001, not seconds per level.*artemis calibrate"),
])
def test_bad_latencies_are_named(changes, message):
    with pytest.raises(CalibrationError, match=message):
        _calibration(**changes)


def test_a_calibration_from_before_per_level_prices_is_refused_with_the_fix(tmp_path):
    old = {**_calibration().to_dict(), "rotation": 4.8e-3, "pmult": 3.3e-4}
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(old))
    with pytest.raises(CalibrationError, match=f"{path}: .*must be measured again"):
        load_calibration(path)


def test_prices_fit_the_measured_levels_and_extend_to_the_others():
    cal = _calibration()
    for level in (0, 1, 2, 3, 5):
        k = level + 1
        assert cal.price("rotation", level) == pytest.approx(1e-3 * k * k)  # quadratic
        assert cal.price("cmult", level) == pytest.approx(1.5e-3 * k * k)
        assert cal.price("pmult", level) == pytest.approx(1e-4 * k)  # linear
        assert cal.price("add", level) == pytest.approx(3e-5 * k)
    assert cal.price("encode", 7) == pytest.approx(1e-3)
    # fewer measured levels than the degree: the fit lowers its degree
    two = _calibration(rotation={1: 4e-3, 2: 9e-3})
    assert two.price("rotation", 3) == pytest.approx(14e-3)  # the line through both
    assert _calibration(add={3: 1e-4}).price("add", 0) == pytest.approx(1e-4)
    with pytest.raises(CalibrationError, match="op 'encrypt'; priced per level"):
        cal.price("encrypt", 1)


def test_estimate_prices_each_op_at_its_level_without_an_encode():
    cal = _calibration()
    ops = OpCount(input_rotations=8, output_rotations=15, other_rotations=1, pmult=144,
                  cmult=2, adds=150, rescales=1, rotation_steps=frozenset({1, 2}))

    def priced(level: int) -> float:
        k = level + 1
        return (24 * 1e-3 * k * k + 144 * 1e-4 * k + 2 * 1.5e-3 * k * k + 150 * 3e-5 * k
                + 1 * 3e-4 * k)

    assert COUNTING_LEVEL == 2  # the top of HEParams()'s [60, 40, 40, 60]
    assert estimate_seconds(ops, cal) == pytest.approx(priced(2))
    assert estimate_seconds(ops, cal, level=3) == pytest.approx(priced(3))
    assert estimate_seconds(ops, cal, level=1) == pytest.approx(priced(1))
    assert estimate_seconds({3: ops, 1: ops}, cal) == pytest.approx(priced(3) + priced(1))
    assert estimate_seconds(OpCount(), cal) == 0.0
    assert estimate_seconds(ops, cal) == estimate_seconds(
        ops, replace(cal, encode={1: 9.0, 3: 9.0}))  # weights are encoded once, offline


counts = st.builds(OpCount, input_rotations=st.integers(0, 500),
                   output_rotations=st.integers(0, 500), pmult=st.integers(0, 5000),
                   adds=st.integers(0, 5000), rescales=st.integers(0, 50))


@given(counts, counts, st.integers(0, 3), st.integers(0, 3))
def test_estimate_adds_up_over_layers_and_levels(a, b, level_a, level_b):
    cal = _calibration()
    assert estimate_seconds(a + b, cal) == pytest.approx(
        estimate_seconds(a, cal) + estimate_seconds(b, cal))
    assert estimate_seconds(add_levels({level_a: a}, {level_b: b}), cal) == pytest.approx(
        estimate_seconds(a, cal, level_a) + estimate_seconds(b, cal, level_b))


TERMS = {"transform": 0.02, "diagonal": 1e-4, "baby": 2e-3, "giant": 4e-3}


def test_transform_prices_round_trip_and_price_each_term(tmp_path):
    cal = _calibration(engine="orion", transform={1: TERMS, 2: TERMS, 3: TERMS})
    path = save_calibration(cal, tmp_path / "orion.json")
    loaded = load_calibration(path)
    assert loaded == cal and loaded.engine == "orion"
    # the same terms at every level: any level is priced with them
    assert loaded.price_transform(2, diagonals=10, baby=3, giant=4) == pytest.approx(
        0.02 + 10 * 1e-4 + 3 * 2e-3 + 4 * 4e-3)
    assert loaded.price_transform(5, 1, 0, 0) == pytest.approx(0.02 + 1e-4)


@pytest.mark.parametrize("table, message", [
    ({1: {"transform": 0.02}}, r"seconds for each of \['transform', 'diagonal'"),
    ({9: TERMS}, "levels 0..3"),
    ({1: {**TERMS, "giant": -1}}, "non-negative"),
])
def test_a_bad_transform_table_is_refused(table, message):
    with pytest.raises(CalibrationError, match=message):
        _calibration(transform=table)


def test_a_calibration_without_transform_prices_cannot_price_a_transform():
    with pytest.raises(CalibrationError, match="the artemis calibration has no transform"):
        _calibration().price_transform(1, 1, 0, 0)


def test_each_engine_reads_its_own_file_then_its_shipped_default(config_home):
    assert user_calibration_path("orion").name == "calibration-orion.json"
    shipped = load_calibration(engine="orion")
    assert shipped.engine == "orion" and shipped.transform
    assert load_calibration(engine="no-such-engine") == load_calibration()
    mine = _calibration(engine="orion", transform={1: TERMS})
    save_calibration(mine)  # to the orion engine's user file
    assert load_calibration(engine="orion") == mine
    assert load_calibration().engine == "artemis"

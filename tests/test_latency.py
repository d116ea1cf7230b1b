"""The latency model: calibration files and OpCount -> seconds."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from artemis_core.errors import ArtemisError, CalibrationError
from artemis_core.he.latency import (
    OP_FIELDS,
    Calibration,
    estimate_seconds,
    load_calibration,
    save_calibration,
    user_calibration_path,
)
from artemis_core.he.specs import OpCount


def _calibration(**changes) -> Calibration:
    base = Calibration(
        log_n=13, coeff_modulus_bits=(60, 40, 60), rotation=2e-3, pmult=1e-4, cmult=3e-3,
        add=5e-5, rescale=6e-4, encode=4e-4, encrypt=3e-3, decrypt=1e-3,
        rotation_key_bytes=1_600_000, machine="test box", measured_at="2026-01-01T00:00:00",
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
    save_calibration(_calibration(rotation=1.0), path)
    save_calibration(_calibration(rotation=2.0), path)
    assert load_calibration(path).rotation == 2.0


def test_default_path_is_the_user_file(config_home):
    cal = _calibration(rotation=0.5)
    assert save_calibration(cal) == config_home / "artemis" / "calibration.json"
    assert user_calibration_path() == config_home / "artemis" / "calibration.json"
    assert load_calibration() == cal


def test_without_a_user_file_the_shipped_default_loads(config_home):
    cal = load_calibration()
    assert (cal.log_n, cal.coeff_modulus_bits) == (14, (60, 40, 40, 60))
    assert all(getattr(cal, op) > 0 for op in OP_FIELDS)
    assert cal.rotation > cal.pmult > cal.add  # key switching dominates
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


def test_negative_latency_is_refused():
    with pytest.raises(CalibrationError, match="rotation"):
        _calibration(rotation=-1.0)


def test_estimate_is_ops_times_latencies():
    cal = _calibration()
    ops = OpCount(input_rotations=8, output_rotations=15, other_rotations=1, pmult=144,
                  cmult=2, adds=150, rescales=1, rotation_steps=frozenset({1, 2}))
    expected = (24 * cal.rotation + 144 * (cal.pmult + cal.encode) + 2 * cal.cmult
                + 150 * cal.add + 1 * cal.rescale)
    assert estimate_seconds(ops, cal) == pytest.approx(expected)
    assert estimate_seconds(OpCount(), cal) == 0.0


counts = st.builds(OpCount, input_rotations=st.integers(0, 500),
                   output_rotations=st.integers(0, 500), pmult=st.integers(0, 5000),
                   adds=st.integers(0, 5000), rescales=st.integers(0, 50))


@given(counts, counts)
def test_estimate_adds_up_over_layers(a, b):
    cal = _calibration()
    assert estimate_seconds(a + b, cal) == pytest.approx(
        estimate_seconds(a, cal) + estimate_seconds(b, cal))

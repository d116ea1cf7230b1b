"""``artemis calibrate``: real per-op latencies stored for the latency model."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from artemis_core.cli import main
from artemis_core.he.calibrate import measure_calibration
from artemis_core.he.latency import OP_FIELDS, load_calibration
from artemis_core.he.params import HEParams

FAST = ["--log-n", "13", "--depth", "1", "--repeats", "2"]


def test_measured_calibration_is_plausible():
    params = HEParams.with_depth(13, 1)
    seen = []
    cal = measure_calibration(params, repeats=2, progress=seen.append)
    assert seen == list(OP_FIELDS)
    assert (cal.log_n, cal.coeff_modulus_bits) == (13, (60, 40, 60))
    assert all(getattr(cal, op) > 0 for op in OP_FIELDS)
    # A key switch costs far more than a slot-wise product or an addition.
    assert cal.rotation > 3 * cal.pmult and cal.rotation > 3 * cal.add
    assert cal.rotation_key_bytes == pytest.approx(params.rotation_key_bytes, rel=0.1)
    assert "Pyfhel 3.5.0" in cal.machine and cal.measured_at


def test_cli_writes_the_file_the_latency_model_reads(tmp_path):
    out = tmp_path / "cal.json"
    result = CliRunner().invoke(main, ["calibrate", *FAST, "--output", str(out),
                                       "--format", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    cal = load_calibration(out)
    assert payload["path"] == str(out)
    assert payload["rotation"] == cal.rotation and cal.log_n == 13


def test_cli_defaults_to_the_user_file(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["calibrate", *FAST])
    assert result.exit_code == 0, result.output
    assert all(op in result.stdout for op in OP_FIELDS)
    assert load_calibration().coeff_modulus_bits == (60, 40, 60)


def test_insecure_chain_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["calibrate", "--log-n", "13", "--depth", "5",
                                       "--output", str(tmp_path / "c.json")])
    assert result.exit_code == 1
    assert "not 128-bit secure" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "c.json").exists()


def test_a_chain_without_a_rescale_is_refused_before_measuring(tmp_path):
    result = CliRunner().invoke(main, ["calibrate", "--log-n", "13", "--depth", "0",
                                       "--output", str(tmp_path / "c.json")])
    assert result.exit_code == 2
    assert "'--depth': 0 is not in the range x>=1" in result.output
    assert not (tmp_path / "c.json").exists()

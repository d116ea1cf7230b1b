"""The result store: versioned JSON files, atomic writes, clear errors for bad files."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from fake_pipeline import fake_record

from artemis_core import ArtemisError
from artemis_core.experiments.results import (
    SCHEMA_VERSION,
    ResultError,
    ResultStore,
    RunKey,
    canonical_target,
    read_record,
    target_sort_key,
)
from artemis_core.io import write_json_atomic


@pytest.mark.parametrize(("text", "canonical"), [
    ("2x", "2x"), ("2.0x", "2x"), ("1.5X", "1.5x"), (" 4 x", "4x"), ("6×", "6x"),
    ("120", "120"), ("0120", "120"),
])
def test_targets_have_one_canonical_spelling(text, canonical):
    assert canonical_target(text) == canonical


@pytest.mark.parametrize("text", ["0.5x", "abc", "", "-2x", "2xx", "1.5"])
def test_bad_targets_are_refused_with_the_value_named(text):
    with pytest.raises(ArtemisError, match=f"target {re.escape(repr(text))}"):
        canonical_target(text)


def test_targets_sort_from_least_to_most_pruning():
    targets = ["100", "10x", "1.5x", "2x", "200"]
    assert sorted(targets, key=target_sort_key) == ["1.5x", "2x", "10x", "200", "100"]


def test_a_record_round_trips_through_its_file(tmp_path):
    store = ResultStore(tmp_path)
    record = fake_record("diagonal", "2x", 1)
    path = store.save(record)
    assert path.parent == tmp_path and path.suffix == ".json"
    assert store.get(record.key) == record
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == SCHEMA_VERSION and doc["key"]["strategy"] == "diagonal"


def test_stored_op_counts_rebuild_the_op_count(tmp_path):
    record = fake_record("diagonal", "4x", 0)
    ResultStore(tmp_path).save(record)
    loaded = ResultStore(tmp_path).get(record.key)
    assert loaded.op_count().as_dict() == record.metrics["ops"]


def test_file_names_are_distinct_and_safe_for_odd_names():
    keys = [RunKey("m/x", "d", "s:1", "2x", 0), RunKey("m", "d", "s", "1.5x", 0),
            RunKey("m", "d", "s", "1.5x", 1), RunKey("m", "d", "s", "2x", 0)]
    names = [k.file_name for k in keys]
    assert len(set(names)) == len(names)
    assert all("/" not in n and ":" not in n for n in names)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "r.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left


def test_numpy_and_torch_values_are_stored_as_plain_json(tmp_path):
    path = tmp_path / "r.json"
    write_json_atomic(path, {"a": np.float32(0.5), "b": torch.tensor([1, 2]), "c": {3, 1}})
    assert json.loads(path.read_text()) == {"a": 0.5, "b": [1, 2], "c": [1, 3]}


@pytest.mark.parametrize(("content", "message"), [
    ('{"schema": "artemis.result", "schema_ver', "corrupt JSON"),
    ('{"name": "something else"}', "not an Artemis result file"),
    ("[1, 2, 3]", "not an Artemis result file"),
    ('{"schema": "artemis.result", "schema_version": 99}', "schema version 99"),
    ('{"schema": "artemis.result", "schema_version": 1, "key": {"model": "m"}}', "malformed"),
])
def test_bad_files_raise_an_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ResultError, match=message) as info:
        read_record(path)
    assert str(path) in str(info.value)


def test_missing_metrics_are_named(tmp_path):
    record = fake_record("diagonal", "2x", 0)
    doc = record.to_json()
    del doc["metrics"]["accuracy"]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ResultError, match="accuracy"):
        read_record(path)


def test_load_reports_bad_files_and_still_loads_the_rest(tmp_path):
    store = ResultStore(tmp_path)
    good = [fake_record("diagonal", t, 0) for t in ("2x", "4x")]
    for record in good:
        store.save(record)
    (tmp_path / "corrupt.json").write_text("{not json")
    (tmp_path / "foreign.json").write_text('{"hello": "world"}')
    (tmp_path / ".leftover.json.123.tmp").write_text("{")  # a killed writer's temp file
    loaded = store.load()
    assert sorted(r.key for r in loaded.records) == sorted(r.key for r in good)
    assert len(loaded.problems) == 2
    assert any("corrupt.json" in p for p in loaded.problems)
    assert any("foreign.json" in p for p in loaded.problems)


def test_a_copied_run_file_is_reported_once_not_counted_twice(tmp_path):
    store = ResultStore(tmp_path)
    path = store.save(fake_record("diagonal", "2x", 0))
    (tmp_path / "copy.json").write_text(path.read_text())
    loaded = store.load()
    assert len(loaded.records) == 1
    assert len(loaded.problems) == 1 and "same run" in loaded.problems[0]


def test_loading_a_missing_directory_names_it(tmp_path):
    with pytest.raises(ArtemisError, match="does not exist"):
        ResultStore(tmp_path / "nope").load()


def test_a_file_that_is_not_utf8_is_reported_as_corrupt(tmp_path):
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ResultError, match="corrupt JSON") as info:
        read_record(path)
    assert str(path) in str(info.value)

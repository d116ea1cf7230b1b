"""Report tables: aggregation over seeds, Pareto marks, sorting, every export format, plot."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest
from fake_pipeline import fake_metrics, fake_record
from hypothesis import given
from hypothesis import strategies as st

from artemis_core import ArtemisError
from artemis_core.output import formats
from artemis_core.pareto import pareto_by_group, pareto_mask
from artemis_core.plot import plot_comparison
from artemis_core.report import build_table, render_table
from artemis_core.results import STATUS_FAILED, RunRecord

STRATEGIES = ("diagonal", "positional")
TARGETS = ("1.5x", "2x", "4x")


def _records(seeds=(0, 1)):
    return [fake_record(s, t, seed) for s in STRATEGIES for t in TARGETS for seed in seeds]


def _latency(ops):
    return 1e-3 * ops.rotations + 1e-4 * ops.pmult


# --- Pareto -----------------------------------------------------------------------------

def test_pareto_keeps_points_nobody_dominates():
    acc = [0.9, 0.8, 0.85, 0.7, 0.9]
    red = [1.0, 3.0, 2.0, 2.0, 0.5]
    assert pareto_mask(acc, red).tolist() == [True, True, True, False, False]


def test_equal_points_are_both_pareto_optimal():
    assert pareto_mask([0.9, 0.9], [2.0, 2.0]).tolist() == [True, True]


def test_pareto_is_computed_within_each_group():
    mask = pareto_by_group(["a", "b"], [0.9, 0.5], [2.0, 1.0])
    assert mask.tolist() == [True, True]  # b's point is worse, but not comparable to a's


points = st.lists(st.tuples(st.floats(0, 1), st.floats(1, 10)), min_size=1, max_size=30)


@given(points)
def test_pareto_front_is_undominated_and_dominates_the_rest(pts):
    acc, red = zip(*pts, strict=True)
    mask = pareto_mask(acc, red)

    def dominates(j, i):
        return (acc[j] >= acc[i] and red[j] >= red[i]
                and (acc[j] > acc[i] or red[j] > red[i]))

    for i in range(len(pts)):
        assert mask[i] == (not any(dominates(j, i) for j in range(len(pts))))


# --- tables ------------------------------------------------------------------------------

def test_default_table_is_the_mean_over_seeds():
    table = build_table(_records(), latency=_latency)
    assert len(table.rows) == len(STRATEGIES) * len(TARGETS)
    row = next(r for r in table.rows if (r["strategy"], r["target"]) == ("positional", "4x"))
    a0 = fake_metrics("positional", "4x", 0)["accuracy"]
    a1 = fake_metrics("positional", "4x", 1)["accuracy"]
    assert row["runs"] == 2
    assert row["accuracy"] == pytest.approx((a0 + a1) / 2)
    assert row["accuracy_std"] == pytest.approx(abs(a0 - a1) / 2**0.5)
    assert row["delta_accuracy"] == pytest.approx((a0 + a1) / 2 - 0.95)
    assert row["key_memory_bytes"] == fake_metrics("positional", "4x", 0)["key_bytes"]


def test_latency_column_is_the_calibrated_estimate_of_the_stored_ops():
    record = fake_record("diagonal", "2x", 0)
    table = build_table([record], latency=_latency)
    assert table.rows[0]["latency_s"] == pytest.approx(_latency(record.op_count()))
    assert "latency_s" not in build_table([record]).columns


def test_grouping_by_seed_gives_one_row_per_run_without_spreads():
    table = build_table(_records(), group_by=["strategy", "target", "seed"])
    assert len(table.rows) == len(_records())
    assert not table.aggregated
    exported = table.export_rows()[0]
    assert "seed" in exported and "runs" not in exported
    assert not any(k.endswith("_std") for k in exported)


def test_pareto_marks_the_best_trade_offs():
    table = build_table(_records(seeds=(0,)))
    marked = {(r["strategy"], r["target"]) for r in table.rows if r["pareto"]}
    # The fake diagonal loses least accuracy at every target, so it alone is on the front.
    assert marked == {("diagonal", t) for t in TARGETS}


def test_pareto_is_separate_per_dataset():
    records = [fake_record("positional", "2x", 0, dataset="a"),
               fake_record("diagonal", "2x", 0, dataset="b")]
    assert all(r["pareto"] for r in build_table(records).rows)


def test_failed_runs_are_not_rows():
    failed = RunRecord(fake_record("hybrid", "6x", 0).key, {}, status=STATUS_FAILED,
                       error="BudgetError: cannot reach 6x")
    table = build_table([*_records(), failed])
    assert "hybrid" not in {r["strategy"] for r in table.rows}


def test_sort_descending_and_by_several_columns():
    table = build_table(_records(), sort="rotation_reduction:desc,strategy")
    keys = [(r["rotation_reduction"], r["strategy"]) for r in table.rows]
    assert keys == sorted(keys, key=lambda k: (-k[0], k[1]))


def test_targets_sort_by_value_not_text():
    records = [fake_record("diagonal", t, 0) for t in ("10x", "2x", "1.5x")]
    assert [r["target"] for r in build_table(records).rows] == ["1.5x", "2x", "10x"]


def test_columns_choose_and_order_what_is_shown():
    table = build_table(_records(), columns=["target", "strategy", "accuracy"])
    assert list(table.export_rows()[0]) == ["target", "strategy", "accuracy", "accuracy_std"]


@pytest.mark.parametrize(("option", "value"), [
    ("columns", ["nope"]), ("sort", "nope"), ("sort", "accuracy:up"), ("group_by", ["accuracy"]),
])
def test_unknown_names_are_refused_listing_the_allowed_ones(option, value):
    with pytest.raises(ArtemisError, match="allowed"):
        build_table(_records(), **{option: value})


# --- formats -----------------------------------------------------------------------------

def test_json_export_round_trips_with_snake_case_keys():
    table = build_table(_records(), latency=_latency)
    rows = json.loads(render_table(table, "json"))
    assert rows == table.export_rows()
    for key in ("strategy", "target", "accuracy", "rotation_reduction", "pareto", "latency_s"):
        assert key in rows[0]


def test_csv_export_round_trips():
    table = build_table(_records(), latency=_latency)
    read = list(csv.DictReader(io.StringIO(render_table(table, "csv"))))
    assert len(read) == len(table.rows)
    for got, want in zip(read, table.export_rows(), strict=True):
        assert list(got) == list(want)
        for key, value in want.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                assert got[key] == str(value)
            else:
                assert float(got[key]) == pytest.approx(value)


def test_latex_export_is_a_tabular_with_readable_cells():
    text = render_table(build_table(_records()), "latex")
    assert "\\begin{tabular}" in text and "\\end{tabular}" in text
    assert "±" in text  # mean ± std over the two seeds


def test_text_cells_keep_their_formatting():
    table = build_table(_records(seeds=(0,)), columns=["strategy", "target", "rotation_reduction"])
    text = render_table(table, "plain")
    assert "1.50" in text and "2.00" in text  # not re-parsed by tabulate into 1.5 and 2


@pytest.mark.parametrize("fmt", formats())
def test_every_format_renders_every_row(fmt):
    table = build_table(_records(), latency=_latency)
    text = render_table(table, fmt)
    assert text.count("positional") == len(TARGETS)


# --- plot --------------------------------------------------------------------------------

def test_plot_writes_a_png(tmp_path):
    path = plot_comparison(_records(), tmp_path / "front.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_writes_an_svg_with_one_series_per_strategy(tmp_path):
    path = plot_comparison(_records(), tmp_path / "front.svg")
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    text = path.read_text()
    for strategy in STRATEGIES:
        assert strategy in text
    assert "Pareto front" in text


def test_plot_refuses_unknown_file_types(tmp_path):
    with pytest.raises(ArtemisError, match=r"\.png"):
        plot_comparison(_records(), tmp_path / "front.bmp")

"""Report tables: aggregation over seeds, Pareto marks, sorting, every export format, plot."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner
from fake_pipeline import fake_metrics, fake_record
from hypothesis import given
from hypothesis import strategies as st

from artemis_core import ArtemisError
from artemis_core.cli import main
from artemis_core.experiments.pareto import pareto_by_group, pareto_mask
from artemis_core.experiments.plot import plot_comparison
from artemis_core.experiments.report import build_table, render_table
from artemis_core.experiments.results import STATUS_FAILED, ResultStore, RunRecord
from artemis_core.io import formats

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


def test_pareto_is_separate_per_cost_model():
    # Reductions counted under two cost models are not comparable: in one directory the
    # gazelle run (better on both axes) must not push the bsgs run off its own front.
    weak, strong = fake_record("positional", "2x", 0), fake_record("diagonal", "2x", 0)
    records = [RunRecord(weak.key, {"cost_model": "bsgs"}, weak.metrics),
               RunRecord(strong.key, {"cost_model": "gazelle"}, strong.metrics)]
    rows = build_table(records).rows
    assert {r["cost_model"] for r in rows} == {"bsgs", "gazelle"}
    assert all(r["pareto"] for r in rows)
    assert build_table(records[1:] + [RunRecord(weak.key, {"cost_model": "gazelle"},
                                                weak.metrics)]).rows[1]["pareto"] is False


def _failed(strategy="hybrid", target="6x", seed=0):
    return RunRecord(fake_record(strategy, target, seed).key, {}, status=STATUS_FAILED,
                     error=f"BudgetError: cannot reach {target}")


def test_a_failed_run_is_a_row_without_metrics_that_says_why():
    table = build_table([*_records(), _failed()])
    row = next(r for r in table.rows if r["strategy"] == "hybrid")
    assert row["runs"] == 0 and row["accuracy"] is None and not row["pareto"]
    assert row["note"] == "BudgetError: cannot reach 6x"
    assert table.columns[-1] == "note"
    assert "-" in render_table(table, "plain").splitlines()[-1]


def test_a_row_with_some_failed_seeds_averages_the_others_and_counts_the_failures():
    table = build_table([fake_record("diagonal", "6x", 0), _failed("diagonal", "6x", 1)])
    (row,) = table.rows
    assert row["runs"] == 1
    assert row["accuracy"] == fake_record("diagonal", "6x", 0).metrics["accuracy"]
    assert row["note"] == "1 of 2 runs failed, e.g. BudgetError: cannot reach 6x"


def test_the_note_column_is_only_shown_when_a_row_has_one():
    assert "note" not in build_table(_records()).columns


def test_failed_rows_export_as_empty_values():
    table = build_table([*_records(), _failed()], latency=_latency)
    exported = json.loads(render_table(table, "json"))
    assert next(r for r in exported if r["strategy"] == "hybrid")["accuracy"] is None
    read = list(csv.DictReader(io.StringIO(render_table(table, "csv"))))
    assert next(r for r in read if r["strategy"] == "hybrid")["accuracy"] == ""


def test_sort_descending_and_by_several_columns():
    table = build_table(_records(), sort="rotation_reduction:desc,strategy")
    keys = [(r["rotation_reduction"], r["strategy"]) for r in table.rows]
    assert keys == sorted(keys, key=lambda k: (-k[0], k[1]))


def test_sort_spec_is_a_comma_list_like_every_other_option():
    spaced = build_table(_records(), sort=" rotation_reduction:desc , ,strategy ")
    assert spaced == build_table(_records(), sort="rotation_reduction:desc,strategy")


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
    named = sum(row["overlaps"] == "positional" for row in table.rows)  # diagonal's rival
    assert text.count("positional") == len(TARGETS) + named


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


def test_plot_names_strategies_that_reached_no_target(tmp_path):
    path = plot_comparison([*_records(), _failed()], tmp_path / "front.svg")
    assert "reached no target: hybrid" in path.read_text()


def test_plot_refuses_unknown_file_types(tmp_path):
    with pytest.raises(ArtemisError, match=r"\.png"):
        plot_comparison(_records(), tmp_path / "front.bmp")


# --- artemis report ------------------------------------------------------------------------

@pytest.fixture
def result_dir(tmp_path, monkeypatch):
    """A result directory with two seeds of every run, and no user calibration file."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    store = ResultStore(tmp_path / "runs")
    for record in _records():
        store.save(record)
    return store.root


def _report(*args):
    return CliRunner().invoke(main, ["report", *map(str, args)])


def test_report_tabulates_the_stored_runs(result_dir):
    result = _report(result_dir, "--format", "github")
    assert result.exit_code == 0, result.output
    strategies = [line.split("|")[3].strip() for line in result.stdout.splitlines()[2:]]
    assert strategies.count("positional") == len(TARGETS)
    assert "est. latency (s)" in result.stdout and not result.stderr


def test_report_warns_about_bad_files_by_name_and_reports_the_rest(result_dir):
    (result_dir / "corrupt.json").write_text('{"schema": "artemis.res')
    (result_dir / "foreign.json").write_text('{"accuracy": 0.9}')
    result = _report(result_dir, "--format", "json")
    assert result.exit_code == 0, result.output
    warnings = result.stderr.splitlines()
    assert len(warnings) == 2
    assert "corrupt.json" in warnings[0] and "foreign.json" in warnings[1]
    assert len(json.loads(result.stdout)) == len(STRATEGIES) * len(TARGETS)


def test_report_shows_stored_failures_and_says_how_to_retry_them(result_dir):
    ResultStore(result_dir).save(_failed())
    result = _report(result_dir)
    assert result.exit_code == 0
    assert "cannot reach 6x" in result.stdout
    assert "1 of 13 runs failed" in result.stderr and "delete their files" in result.stderr


def test_report_writes_csv_and_a_plot_to_files(result_dir, tmp_path):
    out, plot = tmp_path / "t.csv", tmp_path / "p.svg"
    result = _report(result_dir, "--format", "csv", "--output", out, "--plot", plot,
                     "--group-by", "strategy,target,seed", "--columns", "strategy,seed,accuracy")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(_records()) and list(rows[0]) == ["strategy", "seed", "accuracy"]
    assert ET.parse(plot).getroot().tag.endswith("svg")


def test_report_on_a_directory_without_results_is_a_one_line_error(tmp_path):
    (tmp_path / "junk.json").write_text("[]")
    result = _report(tmp_path)
    assert result.exit_code == 1
    assert "no results to report" in result.stderr and "Traceback" not in result.output
    assert "junk.json" in result.stderr


def test_report_refuses_unknown_columns(result_dir):
    result = _report(result_dir, "--columns", "strategy,bogus")
    assert result.exit_code == 1 and "unknown column 'bogus'" in result.stderr


def test_an_unwritable_output_is_a_one_line_error_naming_it(result_dir, tmp_path):
    (tmp_path / "afile").write_text("")
    result = _report(result_dir, "--output", tmp_path / "afile" / "t.csv")
    assert result.exit_code == 1
    assert "afile" in result.stderr and "Traceback" not in result.output


def test_counts_under_other_cost_models_sit_side_by_side():
    records = _records(seeds=(0,))
    bsgs = [RunRecord(r.key, {**r.config, "cost_model": "bsgs"},
                      {**r.metrics, "by_cost_model": {"gazelle": {
                          "rotations": 7, "rotation_reduction": 3.0, "pmult": 1, "keys": 2}}},
                      r.wall_seconds) for r in records]
    table = build_table(bsgs, cost_models=["gazelle"])
    assert {"cost_model", "rotations[gazelle]", "rotation_reduction[gazelle]"} <= set(
        table.columns)
    assert {row["cost_model"] for row in table.rows} == {"bsgs"}
    assert {row["rotations[gazelle]"] for row in table.rows} == {7}
    text = render_table(table, "simple")
    assert "rotations [gazelle]" in text
    # runs that did not record the other model's counts show "-"
    plain = render_table(build_table(records, cost_models=["bsgs"]), "simple")
    assert "cost_model" not in plain and "rot. reduction × [bsgs]" in plain

"""Bad census input never produces a pushed or registered model (README "Reliability"): each row of
the policy table is one real `mlops run census` on tiny synthetic data that must stop at the
component the policy names (ExampleGen or ExampleValidator) with a message naming the file/line or
the column and the anomaly; nothing after it runs, nothing is pushed or registered."""
from __future__ import annotations

from pathlib import Path

import pytest

from models.census import features as F
from pipelines import cli, lineage, nodes
from tests.conftest import CENSUS_BUDGET, synthetic_census_rows
from tests.csv_data import COLUMNS, _csv_lines, _write_lines
from tests.records import latest_run


def _latest(home: Path) -> lineage.RunRecord:
    return latest_run(home, nodes.pipeline_name("census"))


# ---- the census rows of the policy table: (how to break 200 good rows, stopping node, message parts)


def _unseen_flood(rows, path):
    for row in rows[:20]:  # 10 % of the rows: far over the schema's 1 % allowance
        row["workclass"] = "Space-Force"
    _write_lines(path, _csv_lines(rows))


def _missing_column(rows, path):
    _write_lines(path, _csv_lines(rows, [c for c in COLUMNS if c != "occupation"]))


def _string_in_numeric(rows, path):
    rows[6]["age"] = "forty"  # data line 7 = file line 8
    _write_lines(path, _csv_lines(rows))


def _empty_file(rows, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def _header_only(rows, path):
    _write_lines(path, _csv_lines([]))


def _label_missing(rows, path):
    _write_lines(path, _csv_lines(rows, [c for c in COLUMNS if c != F.LABEL_KEY]))


def _label_unknown(rows, path):
    rows[3][F.LABEL_KEY] = "maybe"  # one row is enough: the label domain allows no other value
    _write_lines(path, _csv_lines(rows))


def _truncated_row(rows, path):
    lines = _csv_lines(rows)
    lines[-1] = lines[-1][:12]  # the last row cut off mid-way (an interrupted copy)
    _write_lines(path, lines)


def _extra_field(rows, path):
    lines = _csv_lines(rows)
    lines[50] += b",surplus"
    _write_lines(path, lines)


def _unbalanced_quote(rows, path):
    lines = _csv_lines(rows)
    lines[100] = lines[100].replace(b",", b',"', 1)
    _write_lines(path, lines)


STOP_CASES = {
    # name: (break the data, node that stops the run, parts of the message)
    "unseen_categorical_flood": (_unseen_flood, nodes.EXAMPLE_VALIDATOR,
                                 ["column 'workclass'", "Unexpected string values", "Space-Force"]),
    "missing_required_column": (_missing_column, nodes.EXAMPLE_VALIDATOR, ["column 'occupation'", "Column dropped"]),
    "string_in_numeric_column": (_string_in_numeric, nodes.EXAMPLE_VALIDATOR,
                                 ["column 'age'", "Expected data of type: INT but got STRING", "forty",
                                  "adult.csv:8 ('forty')"]),
    "empty_file": (_empty_file, nodes.EXAMPLE_GEN, ["CsvInputError", "adult.csv is empty (no header row)"]),
    "header_only_file": (_header_only, nodes.EXAMPLE_GEN, ["CsvInputError", "adult.csv has a header but no data rows"]),
    "label_column_missing": (_label_missing, nodes.EXAMPLE_VALIDATOR, ["column 'income_bracket'", "Column dropped"]),
    "label_unknown_class": (_label_unknown, nodes.EXAMPLE_VALIDATOR,
                            ["column 'income_bracket'", "Unexpected string values", "maybe"]),
    "truncated_row": (_truncated_row, nodes.EXAMPLE_GEN,
                      ["CsvInputError", "adult.csv:201: expected 15 fields", "truncated or malformed row"]),
    "extra_field": (_extra_field, nodes.EXAMPLE_GEN, ["CsvInputError", "adult.csv:51: expected 15 fields", "found 16"]),
    "unbalanced_quote": (_unbalanced_quote, nodes.EXAMPLE_GEN,
                         ["CsvInputError", "adult.csv:101-201: expected 15 fields", "unbalanced quote"]),
}
AFTER_EXAMPLE_GEN = [nodes.STATISTICS_GEN, nodes.EXAMPLE_VALIDATOR, nodes.TRANSFORM, nodes.TUNER,
                     nodes.TRAINER, nodes.EVALUATOR, nodes.PUSHER, nodes.REGISTRAR]


@pytest.mark.e2e
@pytest.mark.parametrize("case", sorted(STOP_CASES))
def test_bad_census_data_stops_the_run_before_training(case, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    breaker, stop_node, parts = STOP_CASES[case]
    data_root = tmp_path / "data"
    breaker(synthetic_census_rows(200, seed=5), data_root / "census" / "adult.csv")
    home = tmp_path / "home"

    status = cli.main(["run", "census", "--home", str(home), "--data-root", str(data_root)] + CENSUS_BUDGET)
    out = capsys.readouterr().out

    assert status == 1
    flat = " ".join(out.split())
    for part in parts:
        assert part in flat, f"{part!r} not in:\n{out}"
    assert f"the run stopped at {stop_node}" in out
    record = _latest(home)
    assert record.nodes[stop_node].state == "failed"
    downstream = AFTER_EXAMPLE_GEN[AFTER_EXAMPLE_GEN.index(stop_node) + 1:] if stop_node in AFTER_EXAMPLE_GEN \
        else AFTER_EXAMPLE_GEN
    for node in downstream:
        assert node not in record.nodes, node
    # Nothing pushed, nothing registered (the Registrar never ran, so the registry was not even created).
    assert not (home / "serving").exists()
    assert not (home / "mlflow.db").exists()
    if stop_node == nodes.EXAMPLE_VALIDATOR:  # ExampleGen recorded the (untracked) data it read
        assert record.nodes[nodes.EXAMPLE_GEN].output("examples").get("dvc_data_md5") == "untracked"

"""Bad census input never produces a pushed or registered model (README "Reliability"): each row of
the policy table is one real `mlops run census` on tiny synthetic data that must stop at the
component the policy names (ExampleGen or ExampleValidator) with a message naming the file/line or
the column and the anomaly; nothing after it runs, nothing is pushed or registered."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.census import features as F
from pipelines import cli, lineage, nodes
from pipelines.outcome import data_notes
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


# ---- labels, text, BOM and duplicates (README "Reliability" rows 10-14), on the real components


def _reviews_lines(n: int, label=lambda i: i % 2, text=lambda i: b"a great film" if i % 2 else b"a dull film"):
    lines = [b"id,rating,label,text"]
    for i in range(n):
        lines.append(b"%d,%d,%s,%s" % (i, 8 if i % 2 else 2, str(label(i)).encode(), text(i)))
    return lines


@pytest.mark.e2e
def test_a_review_label_outside_its_domain_stops_at_the_validator(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    data_root = tmp_path / "data"
    _write_lines(data_root / "reviews" / "reviews.csv", _reviews_lines(60, label=lambda i: 2 if i == 7 else i % 2))
    status = cli.main(["run", "reviews", "--home", str(tmp_path / "home"), "--data-root", str(data_root)])
    out = " ".join(capsys.readouterr().out.split())
    assert status == 1
    assert "the run stopped at ExampleValidator" in out and "column 'label'" in out
    assert not (tmp_path / "home" / "serving").exists()


@pytest.mark.e2e
def test_blank_review_texts_are_counted_within_the_policy_and_stop_the_run_beyond_it(tmp_path):
    from pipelines.tasks import load_task
    from tests.csv_data import run_until

    data_root = tmp_path / "data"
    # 1 blank text in 3,000 rows: within the schema's 0.1 % allowance, counted and reported.
    _write_lines(data_root / "reviews" / "reviews.csv", _reviews_lines(3000, text=lambda i: b"" if i == 5 else b"ok film"))
    record = run_until(load_task("reviews"), tmp_path / "home", data_root, nodes.EXAMPLE_VALIDATOR)
    assert record.nodes[nodes.EXAMPLE_VALIDATOR].state == "complete"
    examples = record.nodes[nodes.EXAMPLE_GEN].output("examples")
    assert json.loads(examples.get("empty_values")) == {"text": 1}
    assert "empty values (missing): text 1" in data_notes(examples)

    # 10 blank texts in 60 rows: far beyond it, the validator stops the run.
    other = tmp_path / "data2"
    _write_lines(other / "reviews" / "reviews.csv", _reviews_lines(60, text=lambda i: b"" if i < 10 else b"ok film"))
    with pytest.raises(Exception, match="column 'text'"):
        run_until(load_task("reviews"), tmp_path / "home2", other, nodes.EXAMPLE_VALIDATOR)


@pytest.mark.e2e
def test_a_one_class_label_column_stops_at_the_validator(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    rows = synthetic_census_rows(200, seed=5)
    for row in rows:
        row[F.LABEL_KEY] = F.CLASS_NAMES[0]
    data_root = tmp_path / "data"
    _write_lines(data_root / "census" / "adult.csv", _csv_lines(rows))
    status = cli.main(["run", "census", "--home", str(tmp_path / "home"), "--data-root", str(data_root)] + CENSUS_BUDGET)
    out = " ".join(capsys.readouterr().out.split())
    assert status == 1 and "the run stopped at ExampleValidator" in out
    assert "column 'income_bracket'" in out and "only 1 of the 2 label classes present" in out


@pytest.mark.e2e
def test_a_bom_in_the_header_is_not_part_of_the_first_column_and_duplicates_are_counted(tmp_path):
    from pipelines.tasks import load_task
    from tests.csv_data import run_until

    rows = synthetic_census_rows(200, seed=6)
    lines = _csv_lines(rows + rows[:20])  # 20 exact copies: 20 of 220 rows (9.1 %)
    lines[0] = b"\xef\xbb\xbf" + lines[0]  # a UTF-8 byte-order mark, as Excel writes it
    data_root = tmp_path / "data"
    _write_lines(data_root / "census" / "adult.csv", lines)
    record = run_until(load_task("census"), tmp_path / "home", data_root, nodes.EXAMPLE_VALIDATOR)
    assert record.nodes[nodes.EXAMPLE_VALIDATOR].state == "complete"  # 'age' is 'age', not '\ufeffage'
    examples = record.nodes[nodes.EXAMPLE_GEN].output("examples")
    assert examples.get("duplicate_rows") == 20 and examples.get("row_count") == 220
    assert "20 duplicated row(s) (9.1 % of 220 rows): copies of an earlier row, kept" in data_notes(examples)

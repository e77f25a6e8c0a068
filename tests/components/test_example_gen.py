"""The CSV ExampleGen: readable errors, repaired bytes counted, CsvExampleGen's typing."""
from __future__ import annotations

import pytest

from models.common.contract import SPLITS, TRAIN_SPLIT, VALIDATION_SPLIT
from pipelines import nodes
from pipelines.outcome import data_notes
from tests.csv_data import _write_lines, records as _records, run_until as _run_until


@pytest.mark.e2e
def test_invalid_utf8_in_review_text_is_replaced_counted_and_kept(tmp_path):
    from models.reviews import features as RF
    from pipelines.tasks import load_task

    lines = [b"id,rating,label,text"]
    for i in range(60):
        text = b"a great film" if i % 2 else b"a dull film"
        if i in (7, 30):
            text = b"caf\xe9 \xff\xfe " + text  # Latin-1 / stray bytes: not UTF-8
        lines.append(b"%d,%d,%d,%s" % (i, 8 if i % 2 else 2, i % 2, text))
    data_root = tmp_path / "data"
    _write_lines(data_root / "reviews" / "reviews.csv", lines)

    record = _run_until(load_task("reviews"), tmp_path / "home", data_root, nodes.TRANSFORM)

    assert record.nodes[nodes.EXAMPLE_VALIDATOR].state == "complete"
    assert record.nodes[nodes.TRANSFORM].state == "complete"
    examples = record.nodes[nodes.EXAMPLE_GEN].output("examples")
    assert examples.get("invalid_utf8_rows") == 2
    assert examples.get("invalid_utf8_where") == "reviews.csv:9, reviews.csv:32"
    assert data_notes(examples) == [
        "2 row(s) had invalid UTF-8, replaced by U+FFFD (reviews.csv:9, reviews.csv:32)"
    ]
    # Every review reaches a split (none dropped), and Transform gets every train and validation
    # one (test is the Evaluator's alone); the repaired ones carry U+FFFD, valid UTF-8.
    raw = {split: _records(examples.uri, split) for split in SPLITS}
    assert sum(len(rows) for rows in raw.values()) == 60
    transformed = record.nodes[nodes.TRANSFORM].output("transformed_examples").uri
    texts = [t for split in (TRAIN_SPLIT, VALIDATION_SPLIT) for e in _records(transformed, split)
             for t in e.features.feature[RF.TEXT_XF].bytes_list.value]
    assert len(texts) == len(raw[TRAIN_SPLIT]) + len(raw[VALIDATION_SPLIT])
    repaired = [t.decode("utf-8") for rows in raw.values() for e in rows
                for t in e.features.feature[RF.TEXT_KEY].bytes_list.value if "\ufffd".encode() in t]
    assert sorted(repaired) == ["caf\ufffd \ufffd\ufffd a dull film", "caf\ufffd \ufffd\ufffd a great film"]


def test_reviews_csv_is_read_like_before(tmp_path):
    """Parity guard for the CSV reader: quoted commas, quotes and multi-line quoted text."""
    from components.example_gen import _ReadCsvRecords, value_kind

    path = tmp_path / "r.csv"
    path.write_bytes(b'id,text\n1,"a, b"\n\n2,"he said ""hi"""\n3,"two\nlines"\n')
    records = list(_ReadCsvRecords(["id", "text"]).process(str(path)))
    assert records == [("r.csv:2", ["1", "a, b"]), ("r.csv:4", ["2", 'he said "hi"']), ("r.csv:5", ["3", "two\nlines"])]
    assert [value_kind(v) for v in ("", "12", "-3", "1.5", "1e3", "x", str(2**63))] == [0, 1, 1, 2, 2, 3, 3]


def test_only_columns_numeric_but_for_a_few_values_are_reported_as_mixed():
    from components.example_gen import STRING, mixed_type_columns

    kinds = {
        "age": [STRING, 199, 1, (("adult.csv", 8), "adult.csv:8", "forty"), 0],
        # A real string column with many numeric-looking values (STS's `year`: "2012test", "2015").
        "year": [STRING, 3749, 2000, (("sts-train.csv", 2), "sts-train.csv:2", "2012test"), 0],
    }
    assert mixed_type_columns(kinds) == ["age: 1 non-numeric value(s) among 200, first at adult.csv:8 ('forty')"]

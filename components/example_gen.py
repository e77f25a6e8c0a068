"""ExampleGen for CSV input that also records the DVC data version on its output.

The CSV files (one header row each, `,`-separated, RFC 4180 quoting) become tf.Examples the way
TFX's CsvExampleGen makes them: a column whose values all parse as int64 becomes an int64 feature,
else float if they all parse as float, else bytes; an empty cell is a missing value. The reading is
this module's own so that bad input gets a readable outcome instead of a Beam stack trace:

- an input file that is empty (no header) or has no data rows, files with different headers, or a
  record with too few / too many fields (a truncated or malformed row, an unclosed quote) stop the
  ExampleGen with a CsvInputError naming the file and line;
- invalid UTF-8 bytes are replaced by U+FFFD and the row is kept; the Examples artifact records how
  many rows were repaired and where (`invalid_utf8_rows`, `invalid_utf8_where`);
- a column that is numeric except for a few values (e.g. `forty` in `age`) is read as a string
  column, as CsvExampleGen does, so the ExampleValidator stops the run on the type mismatch; the
  Examples artifact names the offending values' file and line (`mixed_type_columns`).
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import apache_beam as beam
import tensorflow as tf
from absl import logging
from tfx.components import FileBasedExampleGen
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs

from components import data_version as dv
from models.common.contract import SPLITS

# Custom properties on the Examples artifact.
PROP_INVALID_UTF8_ROWS = "invalid_utf8_rows"
PROP_INVALID_UTF8_WHERE = "invalid_utf8_where"
PROP_MIXED_TYPE_COLUMNS = "mixed_type_columns"
PROP_ROWS = "row_count"
PROP_DUPLICATE_ROWS = "duplicate_rows"
# JSON {column: number of empty cells} (missing values), for columns with any.
PROP_EMPTY_VALUES = "empty_values"

REPORT_PREFIX = "csv_ingest_report-"
# Execution property (set by the executor for its own PTransform) naming the report directory.
_REPORT_DIR_KEY = "_csv_ingest_report_dir"
# Locations named in messages and properties.
MAX_LOCATIONS = 5

# Column kinds, in the order a column is widened: int64 -> float -> bytes.
EMPTY, INT, FLOAT, STRING = 0, 1, 2, 3
_KIND_NAMES = {EMPTY: "empty", INT: "int", FLOAT: "float", STRING: "string"}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

ERROR_PREFIX = "invalid CSV input: "


class CsvInputError(ValueError):
    """The CSV input cannot be read as a table; the message names the file and line."""

    def __init__(self, message: str):
        super().__init__(message if message.startswith(ERROR_PREFIX) else ERROR_PREFIX + message)


def value_kind(cell: str) -> int:
    if not cell:
        return EMPTY
    try:
        return INT if _INT64_MIN <= int(cell) <= _INT64_MAX else STRING
    except ValueError:
        pass
    try:
        float(cell)
    except ValueError:
        return STRING
    return FLOAT


def read_header(path: str) -> List[str]:
    """The column names of a CSV file; CsvInputError when it is empty or has no data row."""
    with fileio.open(path, "rb") as f:
        first = f.readline()
        if not first.strip():
            raise CsvInputError(f"{path} is empty (no header row); an input file needs a header and data rows")
        # utf-8-sig: a byte-order mark (Excel writes one) is not part of the first column's name.
        header = next(csv.reader([first.decode("utf-8-sig", "replace")]))
        for line in f:
            if line.strip():
                return header
    raise CsvInputError(f"{path} has a header but no data rows")


def _decoded_lines(path: str, repaired: List[int]) -> Iterable[str]:
    """The file's lines after the header as text; lines with invalid UTF-8 are decoded with
    U+FFFD replacements and their numbers appended to `repaired`."""
    with fileio.open(path, "rb") as f:
        f.readline()
        for number, raw in enumerate(f, start=2):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                repaired.append(number)
                yield raw.decode("utf-8", "replace")


class _ReadCsvRecords(beam.DoFn):
    """path -> (location 'file:line', [cell, ...]) per record; tagged 'repaired' outputs for rows
    with invalid UTF-8. Raises CsvInputError for a record with the wrong number of fields."""

    REPAIRED = "repaired"

    def __init__(self, columns: List[str]):
        self._columns = columns

    def process(self, path: str):
        repaired: List[int] = []
        reader = csv.reader(_decoded_lines(path, repaired))
        name = os.path.basename(path)
        while True:
            start = reader.line_num + 2  # +1 for the header, +1 for the next line
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise CsvInputError(f"{path}:{start}: malformed record ({exc})") from None
            while repaired:
                yield beam.pvalue.TaggedOutput(self.REPAIRED, f"{name}:{repaired.pop(0)}")
            if not cells:
                continue  # a blank line
            if len(cells) != len(self._columns):
                end = reader.line_num + 1
                lines = f"{start}" if end == start else f"{start}-{end}"
                raise CsvInputError(
                    f"{path}:{lines}: expected {len(self._columns)} fields as in the header, found "
                    f"{len(cells)} (a truncated or malformed row{', or an unbalanced quote' if end != start else ''})"
                )
            yield f"{name}:{start}", cells
        for number in repaired:
            yield beam.pvalue.TaggedOutput(self.REPAIRED, f"{name}:{number}")


class _ColumnKinds(beam.CombineFn):
    """Per column: the widest value kind, and numeric/non-numeric counts with the first non-numeric
    value's location (to name stray strings in an otherwise numeric column)."""

    def __init__(self, columns: List[str]):
        self._columns = columns

    def create_accumulator(self):
        return {}

    def add_input(self, acc, record):
        location, cells = record
        for column, cell in zip(self._columns, cells):
            kind = value_kind(cell)
            entry = acc.setdefault(column, [EMPTY, 0, 0, None, 0])
            entry[0] = max(entry[0], kind)
            if kind == EMPTY:
                entry[4] += 1
            elif kind in (INT, FLOAT):
                entry[1] += 1
            elif kind == STRING:
                entry[2] += 1
                first = (_location_key(location), location, cell[:40])
                if entry[3] is None or first[0] < entry[3][0]:
                    entry[3] = first
        return acc

    def merge_accumulators(self, accumulators):
        merged = {}
        for acc in accumulators:
            for column, (kind, numeric, other, first, empty) in acc.items():
                entry = merged.setdefault(column, [EMPTY, 0, 0, None, 0])
                entry[0] = max(entry[0], kind)
                entry[1] += numeric
                entry[2] += other
                entry[4] += empty
                if first is not None and (entry[3] is None or first[0] < entry[3][0]):
                    entry[3] = first
        return merged

    def extract_output(self, acc):
        return acc


def _location_key(location: str) -> Tuple[str, int]:
    name, _, line = location.rpartition(":")
    return name, int(line) if line.isdigit() else 0


def _to_example(record, kinds: Dict[str, list], columns: List[str]) -> tf.train.Example:
    """One row as a tf.Example; an empty cell leaves its feature out, so TFDV counts it as missing
    (the schema's presence policy applies) and parsing sees what it sees for a missing value."""
    _, cells = record
    feature = {}
    for column, cell in zip(columns, cells):
        kind = kinds.get(column, [EMPTY])[0]
        if not cell:
            continue
        if kind == INT:
            feature[column] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(cell)]))
        elif kind == FLOAT:
            feature[column] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(cell)]))
        elif kind == STRING:
            feature[column] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[cell.encode("utf-8")]))
    return tf.train.Example(features=tf.train.Features(feature=feature))


# A string column is reported as "numeric but for a few values" when at most this share of its
# values is not a number (a column such as STS's `year`, "2012test" in a third of its rows, is not).
MIXED_MAX_SHARE = 0.05


def mixed_type_columns(kinds: Mapping[str, list]) -> List[str]:
    """'column: N non-numeric value(s), first at file:line ('value')' for columns that are numeric
    but for a few values, and so were read as strings."""
    notes = []
    for column, (kind, numeric, other, first, _) in sorted(kinds.items()):
        if kind == STRING and numeric and first is not None and other <= MIXED_MAX_SHARE * (numeric + other):
            notes.append(f"{column}: {other} non-numeric value(s) among {numeric + other}, first at {first[1]} ({first[2]!r})")
    return notes


def empty_values(kinds: Mapping[str, list]) -> Dict[str, int]:
    """column -> number of empty cells (missing values), for columns that have any."""
    return {column: entry[4] for column, entry in sorted(kinds.items()) if entry[4]}


def _write_report(_, path: str, kinds, repaired_count: int, repaired_first: List[str], rows: int,
                  duplicates: int) -> None:
    report = {
        "column_kinds": {c: _KIND_NAMES[k[0]] for c, k in sorted(kinds.items())},
        "mixed_type_columns": mixed_type_columns(kinds),
        "invalid_utf8_rows": repaired_count,
        "invalid_utf8_where": sorted(repaired_first, key=_location_key),
        "rows": rows,
        "duplicate_rows": duplicates,
        "empty_values": empty_values(kinds),
    }
    with fileio.open(path, "w") as f:
        f.write(json.dumps(report, indent=1))


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _CsvToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any], split_pattern: str):
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    pattern = os.path.join(input_base, split_pattern)
    files = sorted(f for f in fileio.glob(pattern) if not fileio.isdir(f))
    if not files:
        raise CsvInputError(f"no input files match {pattern}")
    columns = read_header(files[0])
    for other in files[1:]:
        if read_header(other) != columns:
            raise CsvInputError(f"{other} has a different header from {files[0]}; files of one split must share it")
    logging.info("ExampleGen: %d file(s) match %s, columns %s", len(files), pattern, columns)

    records = (
        pipeline
        | "ListFiles" >> beam.Create(files)
        | "ReadRecords" >> beam.ParDo(_ReadCsvRecords(columns)).with_outputs(_ReadCsvRecords.REPAIRED, main="records")
    )
    kinds = beam.pvalue.AsSingleton(records["records"] | "ColumnKinds" >> beam.CombineGlobally(_ColumnKinds(columns)))
    report_dir = exec_properties.get(_REPORT_DIR_KEY)
    if report_dir:
        digest = hashlib.sha256(split_pattern.encode("utf-8")).hexdigest()[:8]
        repaired = records[_ReadCsvRecords.REPAIRED]
        count = repaired | "CountRepaired" >> beam.combiners.Count.Globally()
        first = repaired | "FirstRepaired" >> beam.combiners.Top.Of(MAX_LOCATIONS, key=_location_key, reverse=True)
        rows = records["records"] | "CountRows" >> beam.combiners.Count.Globally()
        # A row whose cells equal an earlier row's: each copy beyond the first counts once.
        duplicates = (
            records["records"]
            | "RowContent" >> beam.Map(lambda record: ("\x1f".join(record[1]), 1))
            | "CopiesPerRow" >> beam.CombinePerKey(sum)
            | "ExtraCopies" >> beam.Map(lambda kv: kv[1] - 1)
            | "CountDuplicates" >> beam.CombineGlobally(sum)
        )
        _ = (
            pipeline
            | "ReportTrigger" >> beam.Create([None])
            | "WriteReport" >> beam.Map(
                _write_report, os.path.join(report_dir, f"{REPORT_PREFIX}{digest}.json"), kinds,
                beam.pvalue.AsSingleton(count), beam.pvalue.AsSingleton(first), beam.pvalue.AsSingleton(rows),
                beam.pvalue.AsSingleton(duplicates),
            )
        )
    return records["records"] | "ToTFExample" >> beam.Map(_to_example, kinds, columns)


def read_reports(report_dir: str) -> Dict[str, Any]:
    """The merged ingest reports of the splits in report_dir."""
    merged: Dict[str, Any] = {"mixed_type_columns": [], "invalid_utf8_rows": 0, "invalid_utf8_where": [],
                              "rows": 0, "duplicate_rows": 0, "empty_values": {}}
    for path in sorted(fileio.glob(os.path.join(report_dir, REPORT_PREFIX + "*.json"))):
        with fileio.open(path, "r") as f:
            report = json.loads(f.read())
        merged["mixed_type_columns"] += report.get("mixed_type_columns", [])
        merged["invalid_utf8_rows"] += int(report.get("invalid_utf8_rows", 0))
        merged["invalid_utf8_where"] += report.get("invalid_utf8_where", [])
        merged["rows"] += int(report.get("rows", 0))
        merged["duplicate_rows"] += int(report.get("duplicate_rows", 0))
        for column, count in report.get("empty_values", {}).items():
            merged["empty_values"][column] = merged["empty_values"].get(column, 0) + int(count)
    return merged


def _csv_error_in(exc: BaseException) -> Optional[str]:
    """The CsvInputError message inside an exception Beam re-raised (it wraps and prefixes it)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = str(exc)
        if ERROR_PREFIX in text:
            message = text[text.index(ERROR_PREFIX):]
            return message.split(" [while running")[0].splitlines()[0].strip()
        exc = exc.__cause__ or exc.__context__
    return None


class VersionedCsvExecutor(BaseExampleGenExecutor):
    """CSV -> tf.Examples with readable input errors, plus the data version (and repaired rows,
    mixed-type columns) stamped on the Examples artifact."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _CsvToExample

    def Do(self, input_dict, output_dict, exec_properties):
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        fileio.makedirs(examples.uri)
        try:
            super().Do(input_dict, output_dict, {**exec_properties, _REPORT_DIR_KEY: examples.uri})
        except Exception as exc:  # Beam re-raises a DoFn's error with the step name appended
            message = _csv_error_in(exc)
            if message is None:
                raise
            raise CsvInputError(message) from None
        report = read_reports(examples.uri)
        for note in report["mixed_type_columns"]:
            logging.warning("ExampleGen: mostly numeric column read as strings: %s", note)
        if report["invalid_utf8_rows"]:
            logging.warning("ExampleGen: %d row(s) had invalid UTF-8 (replaced by U+FFFD), e.g. %s",
                            report["invalid_utf8_rows"], ", ".join(report["invalid_utf8_where"]))
        version = dv.from_exec_properties(exec_properties)
        for artifact in output_dict[standard_component_specs.EXAMPLES_KEY]:
            dv.stamp(artifact, version)
            artifact.set_int_custom_property(PROP_INVALID_UTF8_ROWS, report["invalid_utf8_rows"])
            artifact.set_string_custom_property(PROP_INVALID_UTF8_WHERE, ", ".join(report["invalid_utf8_where"]))
            artifact.set_string_custom_property(PROP_MIXED_TYPE_COLUMNS, "; ".join(report["mixed_type_columns"]))
            artifact.set_int_custom_property(PROP_ROWS, report["rows"])
            artifact.set_int_custom_property(PROP_DUPLICATE_ROWS, report["duplicate_rows"])
            artifact.set_string_custom_property(PROP_EMPTY_VALUES, json.dumps(report["empty_values"], sort_keys=True))


def split_output_config(split_ratio, partition_feature_name: Optional[str] = None) -> example_gen_pb2.Output:
    """Hash buckets train:validation:test (models.common.contract.SPLITS, in that order), on the
    whole record or on `partition_feature_name`: a record's split depends on its content only."""
    ratio = [int(n) for n in split_ratio]
    if len(ratio) != len(SPLITS) or min(ratio) < 1:
        raise ValueError(f"split_ratio {tuple(split_ratio)} must give {len(SPLITS)} positive bucket counts "
                         f"({':'.join(SPLITS)})")
    config = example_gen_pb2.SplitConfig(
        splits=[example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=n) for name, n in zip(SPLITS, ratio)])
    if partition_feature_name:  # a oneof: set, even to "", it names the feature to hash
        config.partition_feature_name = partition_feature_name
    return example_gen_pb2.Output(split_config=config)


def csv_example_gen(
    input_base: str,
    data_version: Mapping[str, Any],
    split_ratio,
    component_id: str = "ExampleGen",
    output_config: Optional[example_gen_pb2.Output] = None,
):
    """A CSV ExampleGen with a deterministic hash-based train/validation/test split."""
    if output_config is None:
        output_config = split_output_config(split_ratio)
    return FileBasedExampleGen(
        input_base=input_base,
        output_config=output_config,
        custom_config=dv.to_custom_config(data_version),
        custom_executor_spec=executor_spec.BeamExecutorSpec(VersionedCsvExecutor),
    ).with_id(component_id)


def presplit_csv_example_gen(
    input_base: str,
    data_version: Mapping[str, Any],
    splits: Mapping[str, str],
    split_ratio=None,
    component_id: str = "ExampleGen",
):
    """A CSV ExampleGen for data that comes already split (e.g. a benchmark's train/dev/test):
    `splits` maps an output split name to a file pattern under input_base, e.g.
    {"train": "train/*", "validation": "dev/*", "test": "test/*"}. The output keeps exactly those splits (an empty output
    config: no re-splitting), so split_ratio does not apply."""
    input_config = example_gen_pb2.Input(
        splits=[example_gen_pb2.Input.Split(name=name, pattern=pattern) for name, pattern in splits.items()]
    )
    return FileBasedExampleGen(
        input_base=input_base,
        input_config=input_config,
        output_config=example_gen_pb2.Output(),
        custom_config=dv.to_custom_config(data_version),
        custom_executor_spec=executor_spec.BeamExecutorSpec(VersionedCsvExecutor),
    ).with_id(component_id)

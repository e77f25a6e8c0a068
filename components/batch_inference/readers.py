"""Raw input -> serialized tf.Examples for batch inference, one reader per raw form:

- "csv": CSV files with a header row (a file, a directory of *.csv files, or a glob; the files must
  share their header). Each record becomes an example of the task's serving features; the other
  columns (an id, the label, …) are carried to the output. Read like ExampleGen reads training
  data (RFC 4180 quoting), except that a record with invalid UTF-8 in a feature the model reads is
  rejected (ExampleGen repairs and counts it; a prediction on replaced bytes would be a guess);
- "image_folder": a folder of image files, directly or in class sub-folders (`<class>/<file>`, as
  ImageExampleGen reads training photos). Each file becomes an example whose only feature is the
  encoded image; the carried columns are `filename` (relative to the folder) and, when there are
  class sub-folders, `label` (the folder name).

A row that cannot become an example (too few or too many fields, a missing required value, a
non-numeric value in a numeric column, a file that is not a decodable JPEG/PNG) is a Reject
naming where it is (`file:line`, or the file name) and why; it never stops the batch.
Every element carries a sort key (file number, line), so the output can keep the input order.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Sequence, Tuple

import apache_beam as beam
import tensorflow as tf

from components.batch_inference.schema import EncodeError, ServingSchema, carried_columns

CSV, IMAGE_FOLDER = "csv", "image_folder"
INPUT_FORMS = (CSV, IMAGE_FOLDER)
FILENAME_COLUMN = "filename"
LABEL_COLUMN = "label"
REJECTED = "rejected"


class InputError(ValueError):
    """The input as a whole cannot be read (no such file, no header, a required column missing)."""


class Row(NamedTuple):
    """What travels with an example through the model: where it came from, and its raw cells
    (csv: every column of the record; images: the carried values)."""

    order: Tuple[int, int]
    location: str
    cells: Tuple[str, ...]


class Reject(NamedTuple):
    order: Tuple[int, int]
    location: str
    reason: str
    cells: Tuple[str, ...] = ()


@dataclass(frozen=True)
class InputPlan:
    """The files of one input and what the output carries from them."""

    form: str
    files: Tuple[str, ...]
    columns: Tuple[str, ...]  # the input's header (csv); () for images
    carried: Tuple[str, ...]
    root: str = ""

    @property
    def carried_index(self) -> Tuple[int, ...]:
        """Where each carried column is in a Row's cells."""
        if self.form == CSV:
            return tuple(self.columns.index(c) for c in self.carried)
        return tuple(range(len(self.carried)))


# --------------------------------------------------------------------------------------- csv


def csv_files(path: str) -> List[str]:
    if any(ch in path for ch in "*?["):
        files = sorted(f for f in tf.io.gfile.glob(path) if not tf.io.gfile.isdir(f))
    elif tf.io.gfile.isdir(path):
        files = sorted(os.path.join(path, f) for f in tf.io.gfile.listdir(path) if f.lower().endswith(".csv"))
    elif tf.io.gfile.exists(path):
        files = [path]
    else:
        raise InputError(f"input {path} does not exist (give a CSV file, a folder of *.csv files or a glob)")
    if not files:
        raise InputError(f"no CSV files in {path}")
    return files


def read_header(path: str) -> List[str]:
    with tf.io.gfile.GFile(path, "rb") as f:
        first = f.readline()
    if not first.strip():
        raise InputError(f"{path} is empty (no header row); the first line must name the columns")
    return next(csv.reader([first.decode("utf-8", "replace")]))


def plan_csv(path: str, schema: ServingSchema) -> InputPlan:
    files = csv_files(path)
    header = read_header(files[0])
    for other in files[1:]:
        if read_header(other) != header:
            raise InputError(f"{other} has a different header from {files[0]}; the input files must share it")
    required = [name for name in schema.features if name in schema.required and name not in header]
    if required:
        raise InputError(
            f"{files[0]} has no column {', '.join(map(repr, required))} (the model needs "
            f"{', '.join(schema.features)}; header: {', '.join(header)})"
        )
    return InputPlan(CSV, tuple(files), tuple(header), tuple(carried_columns(schema, header)))


class _DecodedLines:
    """A file's lines as text; bytes that are not UTF-8 become U+FFFD, and the numbers of the lines
    that had any are kept, so the record they belong to can be rejected rather than predicted."""

    def __init__(self, f):
        self._f = f
        self.number = 1  # the header
        self.invalid: set = set()

    def __iter__(self):
        for raw in self._f:
            self.number += 1
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                self.invalid.add(self.number)
                yield raw.decode("utf-8", "replace")


def _invalid_utf8(cells: Sequence[str], columns: Sequence[str], features) -> Optional[str]:
    """Why a record whose bytes were not all UTF-8 cannot be predicted (a feature the model reads
    holds replaced bytes, which it would score as an unknown value), None when only carried cells do."""
    bad = [c for c, v in zip(columns, cells) if c in features and "\ufffd" in v]
    if not bad:
        return None
    return f"column {bad[0]!r}: invalid UTF-8 (the model would read the replaced bytes as an unknown value)"


class ReadCsv(beam.DoFn):
    """(file number, path) -> chunks of up to chunk_size [(Row, serialized example)], in file
    order, and a tagged Reject per record that cannot become an example."""

    def __init__(self, plan: InputPlan, schema: ServingSchema, chunk_size: int = 256):
        self._plan = plan
        self._schema = schema
        self._chunk_size = max(1, int(chunk_size))

    def process(self, element: Tuple[int, str]):
        number, path = element
        columns = self._plan.columns
        name = os.path.basename(path)
        chunk: List[Tuple[Row, bytes]] = []
        with tf.io.gfile.GFile(path, "rb") as f:
            f.readline()
            lines = _DecodedLines(f)
            reader = csv.reader(lines)
            while True:
                line = reader.line_num + 2  # +1 for the header, +1 for the next line
                try:
                    cells = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    yield beam.pvalue.TaggedOutput(REJECTED, Reject((number, line), f"{name}:{line}", f"malformed record ({exc})"))
                    continue
                if not cells or (len(cells) == 1 and not cells[0].strip()):
                    continue  # a blank line
                location = f"{name}:{line}"
                if len(cells) != len(columns):
                    reason = f"expected {len(columns)} fields as in the header, found {len(cells)}"
                    yield beam.pvalue.TaggedOutput(REJECTED, Reject((number, line), location, reason, tuple(cells)))
                    continue
                why = None
                if lines.invalid and any(n in lines.invalid for n in range(line, reader.line_num + 2)):
                    why = _invalid_utf8(cells, columns, self._schema.features)
                if why:
                    yield beam.pvalue.TaggedOutput(REJECTED, Reject((number, line), location, why, tuple(cells)))
                    continue
                try:
                    example = self._schema.encode(dict(zip(columns, cells)))
                except EncodeError as exc:
                    yield beam.pvalue.TaggedOutput(REJECTED, Reject((number, line), location, str(exc), tuple(cells)))
                    continue
                chunk.append((Row((number, line), location, tuple(cells)), example))
                if len(chunk) >= self._chunk_size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk


def count_csv_records(files: Sequence[str]) -> int:
    """About as many records as the files hold, for the progress bar: their lines after the header
    (a quoted newline inside a cell counts one too many; the outcome's counts are exact)."""
    total = 0
    for path in files:
        with tf.io.gfile.GFile(path, "rb") as f:
            lines, last = 0, b"\n"
            while True:
                block = f.read(1 << 22)
                if not block:
                    break
                lines += block.count(b"\n")
                last = block[-1:]
            total += lines + (last != b"\n") - 1
    return max(total, 0)


# ------------------------------------------------------------------------------ image folder


def image_files(root: str) -> List[str]:
    """Files directly in root or one class folder below it (names relative to root), sorted;
    hidden files are left out."""
    if not tf.io.gfile.isdir(root):
        if tf.io.gfile.exists(root):
            raise InputError(f"input {root} is a file; this task reads a folder of images (optionally in class sub-folders)")
        raise InputError(f"input folder {root} does not exist")
    found = []
    for entry in sorted(tf.io.gfile.listdir(root)):
        name = entry.rstrip("/")
        if name.startswith("."):
            continue
        full = os.path.join(root, name)
        if tf.io.gfile.isdir(full):
            for inner in sorted(tf.io.gfile.listdir(full)):
                inner = inner.rstrip("/")
                if not inner.startswith(".") and not tf.io.gfile.isdir(os.path.join(full, inner)):
                    found.append(f"{name}/{inner}")
        else:
            found.append(name)
    if not found:
        raise InputError(f"no files in {root} (expected images, directly or in class sub-folders)")
    return found


def plan_images(root: str, schema: ServingSchema) -> InputPlan:
    files = image_files(root)
    byte_features = [n for n, kind in schema.features.items() if kind == "BYTES"]
    if len(schema.features) != 1 or len(byte_features) != 1:
        raise InputError(f"an image folder feeds one bytes feature; the model needs {', '.join(schema.features)}")
    nested = any("/" in f for f in files)
    carried = (FILENAME_COLUMN, LABEL_COLUMN) if nested else (FILENAME_COLUMN,)
    return InputPlan(IMAGE_FOLDER, tuple(files), (), carried, root=root)


class ReadImage(beam.DoFn):
    """(file number, relative name) -> (Row, serialized example), or a tagged Reject for a file
    that is not a decodable JPEG/PNG."""

    def __init__(self, plan: InputPlan, schema: ServingSchema):
        self._plan = plan
        self._schema = schema
        self._feature = next(iter(schema.features))

    def process(self, element: Tuple[int, str]):
        from components.image_example_gen import why_unusable

        number, name = element
        try:
            with tf.io.gfile.GFile(os.path.join(self._plan.root, name), "rb") as f:
                data = f.read()
        except (OSError, tf.errors.OpError) as exc:
            reason: Optional[str] = f"unreadable: {exc}"
        else:
            reason = why_unusable(data)
        carried: Tuple[str, ...] = (name,)
        if len(self._plan.carried) == 2:
            carried = (name, name.split("/", 1)[0] if "/" in name else "")
        if reason:
            yield beam.pvalue.TaggedOutput(REJECTED, Reject((number, 0), name, reason, carried))
            return
        yield Row((number, 0), name, carried), self._schema.encode({self._feature: data})


# ------------------------------------------------------------------------------------ common


def plan_input(form: str, path: str, schema: ServingSchema) -> InputPlan:
    if form == CSV:
        return plan_csv(path, schema)
    if form == IMAGE_FOLDER:
        return plan_images(path, schema)
    raise InputError(f"unknown input form {form!r}; expected one of {', '.join(INPUT_FORMS)}")


def read_transform(plan: InputPlan, schema: ServingSchema, chunk_size: int = 256) -> beam.DoFn:
    """CSV: a DoFn yielding chunks; images: one yielding single (Row, example) pairs (batched
    into chunks by BatchElements after it)."""
    return ReadCsv(plan, schema, chunk_size) if plan.form == CSV else ReadImage(plan, schema)


def count_rows(plan: InputPlan) -> int:
    return count_csv_records(plan.files) if plan.form == CSV else len(plan.files)

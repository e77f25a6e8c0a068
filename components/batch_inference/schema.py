"""Which raw features a serving request carries, and how a raw value becomes one.

The serving features of a task are those of its curated TFDV schema that are in the SERVING
environment, less the label. A feature whose presence is `min_fraction: 1.0` is required: an empty
cell cannot become an example the model parses. A task without a curated schema gets the typing
ExampleGen gives its CSV (components.example_gen.value_kind: int64 if every value parses as one,
else float, else bytes), with every column but the label a feature and none required.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence

import tensorflow as tf

INT, FLOAT, BYTES = "INT", "FLOAT", "BYTES"
SERVING_ENVIRONMENT = "SERVING"
# Rows read to type the columns of a task that has no curated schema.
INFER_ROWS = 2000


class EncodeError(ValueError):
    """A raw value that cannot become the feature the model expects (the message says which)."""


@dataclass(frozen=True)
class ServingSchema:
    """The raw features of a serving request: name -> INT | FLOAT | BYTES, and the required ones."""

    features: Dict[str, str]
    required: frozenset = field(default_factory=frozenset)
    source: str = ""

    def encode(self, values: Dict[str, str]) -> bytes:
        """A serialized tf.Example from raw string values (name -> cell); EncodeError when a
        required value is missing or a value does not parse as its feature's type."""
        feature = {}
        for name, kind in self.features.items():
            cell = values.get(name)
            if cell is None or cell == "":
                if name in self.required:
                    raise EncodeError(f"missing value in column {name!r}")
                feature[name] = tf.train.Feature()
                continue
            feature[name] = to_feature(name, kind, cell)
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def to_feature(name: str, kind: str, cell) -> tf.train.Feature:
    if kind == BYTES:
        data = cell if isinstance(cell, bytes) else str(cell).encode("utf-8")
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))
    text = str(cell).strip()
    if kind == INT:
        try:
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(text)]))
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isfinite(number) and number.is_integer() and abs(number) < 2**63:
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(number)]))
        raise EncodeError(f"column {name!r}: {_short(text)} is not an integer")
    try:
        number = float(text)
    except ValueError:
        raise EncodeError(f"column {name!r}: {_short(text)} is not a number") from None
    return tf.train.Feature(float_list=tf.train.FloatList(value=[number]))


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def from_schema_file(path: str, label_key: Optional[str] = None) -> ServingSchema:
    """The serving features of a TFDV schema (.pbtxt)."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    with tf.io.gfile.GFile(path, "r") as f:
        text_format.Parse(f.read(), schema)
    defaults = set(schema.default_environment)
    features: Dict[str, str] = {}
    required = set()
    for feature in schema.feature:
        if feature.name == label_key:
            continue
        if feature.in_environment:
            serving = SERVING_ENVIRONMENT in feature.in_environment
        else:
            serving = (not defaults or SERVING_ENVIRONMENT in defaults) and (
                SERVING_ENVIRONMENT not in feature.not_in_environment)
        if not serving:
            continue
        kind = schema_pb2.FeatureType.Name(feature.type)
        if kind not in (INT, FLOAT, BYTES):
            raise ValueError(f"{path}: feature {feature.name!r} has type {kind}; expected INT, FLOAT or BYTES")
        features[feature.name] = kind
        if feature.HasField("presence") and feature.presence.min_fraction >= 1.0:
            required.add(feature.name)
    if not features:
        raise ValueError(f"{path} has no feature in the SERVING environment")
    return ServingSchema(features, frozenset(required), source=path)


def infer_from_csv(path: str, label_key: Optional[str] = None, rows: int = INFER_ROWS) -> ServingSchema:
    """ExampleGen's typing of a CSV file's columns (from its first `rows` rows), every column but
    the label a feature, none required."""
    from components.example_gen import EMPTY, FLOAT as K_FLOAT, INT as K_INT, value_kind

    with tf.io.gfile.GFile(path, "r") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise ValueError(f"{path} is empty (no header row)")
        kinds = [EMPTY] * len(header)
        for number, cells in enumerate(reader):
            if number >= rows:
                break
            for i, cell in enumerate(cells[: len(header)]):
                kinds[i] = max(kinds[i], value_kind(cell))
    names = {K_INT: INT, K_FLOAT: FLOAT}
    features = {c: names.get(k, BYTES) for c, k in zip(header, kinds) if c != label_key}
    return ServingSchema(features, frozenset(), source=f"types inferred from {path}")


def missing_columns(schema: ServingSchema, header: Sequence[str]) -> List[str]:
    """Required serving features the header lacks (rows could never become examples)."""
    return [name for name in schema.features if name in schema.required and name not in set(header)]


def carried_columns(schema: ServingSchema, header: Iterable[str]) -> List[str]:
    """Input columns that are not serving features (an id, the label, …): copied to the output."""
    return [c for c in header if c not in schema.features]

"""Test helpers: write CSV files line by line (good, broken or not UTF-8) and read TFRecord splits."""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import tensorflow as tf

from models.census import features as F

COLUMNS = list(F.CSV_COLUMNS)


def _write_lines(path: Path, lines) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join(lines) + b"\n")


def _csv_lines(rows, columns=COLUMNS):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode().splitlines()


def records(uri: str, split: str):
    """The tf.Examples of one split of an Examples artifact."""
    files = tf.io.gfile.glob(os.path.join(uri, f"Split-{split}", "*"))
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def run_until(task, home: Path, data_root: Path, last_node: str):
    """The task's real pipeline, run with TFX's LocalDagRunner up to last_node only."""
    from pipelines.local_runner import run_until as run

    return run(task, home, data_root, last_node)


def _records(uri: str, split: str):
    files = tf.io.gfile.glob(os.path.join(uri, f"Split-{split}", "*"))
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def hash_splits(rows, ratio, columns=COLUMNS) -> list:
    """The split each dict row lands in when written as CSV and read by components.example_gen:
    its typing, then TFX's partition function (sha256 of the serialized example, mod the buckets)."""
    import bisect
    import hashlib
    import itertools

    from components import example_gen as eg
    from models.common.contract import SPLITS

    cells = list(csv.reader(line.decode() for line in _csv_lines(rows, columns)[1:]))
    kinds = {}
    for row in cells:
        for column, cell in zip(columns, row):
            kinds[column] = [max(kinds.get(column, [eg.EMPTY])[0], eg.value_kind(cell))]
    edges = list(itertools.accumulate(int(n) for n in ratio))
    keys = [eg._to_example((None, row), kinds, columns).SerializeToString(deterministic=True) for row in cells]
    return [SPLITS[bisect.bisect(edges, int(hashlib.sha256(key).hexdigest(), 16) % edges[-1])] for key in keys]

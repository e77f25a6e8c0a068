"""Test helpers: read runs back from a home's metadata store, and build serialized tf.Examples."""
from __future__ import annotations

import os

import tensorflow as tf

from components import metadata as mlmd
from pipelines import lineage


def metadata(home):
    """The SQLite metadata store of a local home directory."""
    return mlmd.open_store(os.path.join(str(home), "metadata.sqlite"))


def latest_run(home, pipeline: str) -> lineage.RunRecord:
    store = metadata(home)
    return lineage.load_run(store, pipeline, lineage.list_run_ids(store, pipeline)[0])


def _feature(value) -> tf.train.Feature:
    if isinstance(value, str):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
    if isinstance(value, float):
        return tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def serialized_examples(rows, drop=()) -> list:
    """Serialized tf.Examples of dict rows (str -> bytes, float -> float, int -> int64), minus `drop`."""
    return [
        tf.train.Example(features=tf.train.Features(feature={
            name: _feature(value) for name, value in row.items() if name not in drop
        })).SerializeToString()
        for row in rows
    ]

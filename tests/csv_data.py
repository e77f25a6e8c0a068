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
    from tfx.dsl.compiler import compiler
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner
    from tfx.proto.orchestration import pipeline_pb2

    from components import metadata
    from pipelines import factory, lineage, nodes

    home.mkdir(parents=True, exist_ok=True)
    pipeline = factory.create_pipeline(
        task, pipeline_root=str(home / "pipelines"), data_root=str(data_root), serving_root=str(home / "serving"),
        data_version={"md5": "untracked", "dirty": True},
        metadata_connection_config=metadata.sqlite_config(str(home / "metadata.sqlite")),
        registry_uri="sqlite:///" + str(home / "mlflow.db"),
    )
    options = pipeline_pb2.RunOptions()
    options.partial_run.to_nodes.append(last_node)
    options.partial_run.snapshot_settings.latest_pipeline_run_strategy.SetInParent()
    LocalDagRunner().run_with_ir(compiler.Compiler().compile(pipeline), run_options=options)
    store = metadata.open_store(str(home / "metadata.sqlite"))
    name = nodes.pipeline_name(task.name)
    return lineage.load_run(store, name, lineage.list_run_ids(store, name)[0])


def _records(uri: str, split: str):
    files = tf.io.gfile.glob(os.path.join(uri, f"Split-{split}", "*"))
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]

"""The census pipeline end to end on tiny synthetic data: real TFX components, real metadata store."""
import glob
import os

import numpy as np
import pytest
import tensorflow as tf
import yaml

from models.census import features as F
from pipelines import cli, nodes
from tests.conftest import synthetic_census_rows, write_census_csv
from tests.records import latest_run, serialized_examples
from tests.registry_helpers import first_run

pytestmark = pytest.mark.e2e

from tests.conftest import CENSUS_BUDGET as BUDGET


def test_census_run_trains_evaluates_blesses_and_pushes(census_run):
    root, home, status = census_run
    assert status == 0
    record = latest_run(home, "mlops-census")
    for node in (nodes.EXAMPLE_GEN, nodes.STATISTICS_GEN, nodes.SCHEMA_GEN, nodes.EXAMPLE_VALIDATOR,
                 nodes.TRANSFORM, nodes.TUNER, nodes.TRAINER, nodes.EVALUATOR, nodes.INFRA_VALIDATOR, nodes.PUSHER):
        assert record.nodes[node].state == "complete", node
    assert record.nodes[nodes.INFRA_VALIDATOR].output("blessing").get("blessed") == 1
    blessing = record.nodes[nodes.EVALUATOR].output("blessing")
    assert blessing.get("blessed") == 1
    pushed = record.nodes[nodes.PUSHER].output("pushed_model")
    assert pushed.get("pushed") == 1
    assert pushed.get("pushed_destination").startswith(os.path.join(home, "serving", "census"))


def test_examples_record_the_dvc_data_version(census_run):
    root, home, _ = census_run
    tracked = yaml.safe_load((root / "data.dvc").read_text())["outs"][0]["md5"]
    examples = latest_run(home, "mlops-census").nodes[nodes.EXAMPLE_GEN].output("examples")
    assert examples.get("dvc_data_md5") == tracked
    assert examples.get("dvc_data_dirty") == 0


def test_pushed_model_scores_raw_examples(census_run):
    _, home, _ = census_run
    versions = sorted(glob.glob(os.path.join(home, "serving", "census", "*")))
    assert versions, "nothing was pushed"
    model = tf.saved_model.load(versions[-1])
    assert set(model.signatures) >= {"serving_default", "transform_features"}
    rows = synthetic_census_rows(50, seed=99)
    probs = model.signatures["serving_default"](
        examples=tf.constant(serialized_examples(rows, drop={F.LABEL_KEY})))["probabilities"].numpy()
    assert probs.shape == (50, 2) and probs.dtype == np.float32
    assert np.all((probs >= 0) & (probs <= 1))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # The synthetic label is learnable: the model must beat chance on fresh rows.
    labels = np.array([r[F.LABEL_KEY] == F.CLASS_NAMES[1] for r in rows])
    assert (np.argmax(probs, axis=1) == labels).mean() > 0.6


def test_second_run_is_served_from_cache(census_run, capsys):
    root, home, _ = census_run
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert cli.main(["run", "census", "--home", home] + BUDGET) == 0
    finally:
        os.chdir(cwd)
    record = latest_run(home, "mlops-census")
    for node in (nodes.EXAMPLE_GEN, nodes.STATISTICS_GEN, nodes.SCHEMA_GEN, nodes.TRANSFORM, nodes.TUNER,
                 nodes.TRAINER):
        assert record.nodes[node].state == "cached", node
    # The Baseline asks the registry on every run: the first run's model is now the version to beat,
    # so the validator (drift against its training data) and the Evaluator run again.
    baseline = record.nodes[nodes.BASELINE]
    assert baseline.state == "complete" and baseline.output("model").get("baseline_version") == 1
    assert record.nodes[nodes.EXAMPLE_VALIDATOR].state == "complete"
    evaluator = record.nodes[nodes.EVALUATOR]
    assert evaluator.state == "complete"
    assert evaluator.output("blessing").get("blessed") == 1
    assert evaluator.output("blessing").get("baseline").startswith("census v1 ")
    # The model itself did not change: nothing new is pushed or registered, and the summary says so.
    assert "model unchanged: census v1" in capsys.readouterr().out
    pushed = record.nodes[nodes.PUSHER].output("pushed_model")
    assert pushed.get("pushed") == 1 and pushed.get("unchanged") == 1
    registered = record.nodes[nodes.REGISTRAR].output("registered_model")
    assert registered.get("unchanged") == 1 and registered.get("model_version") == "1"
    assert registered.get("reason") == "model unchanged: census v1"
    assert len([n for n in os.listdir(os.path.join(home, "serving", "census")) if n.isdigit()]) == 1


def test_schema_anomaly_stops_the_pipeline_before_training(tmp_path, capsys):
    rows = synthetic_census_rows(200, seed=5)
    for row in rows[:40]:
        row[F.LABEL_KEY] = "maybe"  # an unknown class in 20% of the rows
    data_root = tmp_path / "data"
    write_census_csv(data_root / "census" / "adult.csv", rows)
    home = tmp_path / "home"
    status = cli.main(["run", "census", "--home", str(home), "--data-root", str(data_root)] + BUDGET)
    out = capsys.readouterr().out
    assert status == 1
    assert "income_bracket" in out and "DataAnomalyError" in out
    record = latest_run(home, "mlops-census")
    assert record.nodes[nodes.EXAMPLE_VALIDATOR].state == "failed"
    for node in (nodes.TRANSFORM, nodes.TRAINER, nodes.PUSHER):
        assert node not in record.nodes, node
    assert not (home / "serving").exists()


def _handed(home, record, node):
    """({input key: [tfx Artifact]}, exec properties) of one node's execution in a finished run,
    as MLMD recorded them: what its executor was handed."""
    from ml_metadata.proto import metadata_store_pb2
    from tfx.types import artifact_utils as au

    from tests.records import metadata

    store = metadata(home)
    execution_id = record.nodes[node].execution_id
    [execution] = store.get_executions_by_id([execution_id])
    events = [e for e in store.get_events_by_execution_ids([execution_id]) if e.type == metadata_store_pb2.Event.INPUT]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    types = {t.id: t for t in store.get_artifact_types_by_id([a.type_id for a in artifacts.values()])}
    inputs = {}
    for event in events:
        artifact = artifacts[event.artifact_id]
        inputs.setdefault(event.path.steps[0].key, []).append(au.deserialize_artifact(types[artifact.type_id], artifact))
    properties = {}
    for name, value in execution.custom_properties.items():
        kind = value.WhichOneof("value")
        properties[name] = getattr(value, kind) if kind else None
    return inputs, properties


def test_neither_tuner_nor_trainer_is_handed_the_test_split(census_run):
    """The files TFX gives tuner_fn / run_fn (fn_args.train_files / eval_files), rebuilt by TFX's own
    fn_args_utils from what the run recorded: train and validation only, and the Examples artifact
    they were handed (Transform's output) holds no test split at all."""
    from tfx.components.trainer import fn_args_utils

    from models.common.contract import TRAIN_SPLIT, VALIDATION_SPLIT

    _, home, status = census_run
    assert status == 0
    record = first_run(home)  # the fixture's own run, where both trained (later runs reuse them from cache)
    transformed = record.nodes[nodes.TRANSFORM].output("transformed_examples")
    assert sorted(os.listdir(transformed.uri)) == sorted(f"Split-{s}" for s in (TRAIN_SPLIT, VALIDATION_SPLIT))
    for node in (nodes.TUNER, nodes.TRAINER):
        inputs, properties = _handed(home, record, node)
        [examples] = inputs["examples"]
        assert examples.uri == transformed.uri, node
        assert not any(a.type_name == "Examples" and a.uri != transformed.uri
                       for artifacts in inputs.values() for a in artifacts), node
        fn_args = fn_args_utils.get_common_fn_args(inputs, properties)
        for files, split in ((fn_args.train_files, TRAIN_SPLIT), (fn_args.eval_files, VALIDATION_SPLIT)):
            matched = [path for pattern in files for path in tf.io.gfile.glob(pattern)]
            assert matched, (node, split)
            assert {os.path.dirname(path) for path in matched} == {os.path.join(examples.uri, f"Split-{split}")}, node


def test_the_evaluator_reads_the_test_split_only(census_run):
    """TFMA's example count is the number of rows in ExampleGen's test split, and the Evaluator was
    told to read that split alone."""
    import json

    from components import evaluation
    from models.common.contract import TEST_SPLIT
    from tests.csv_data import records

    _, home, _ = census_run
    record = first_run(home)
    _, properties = _handed(home, record, nodes.EVALUATOR)
    assert json.loads(properties["example_splits"]) == [TEST_SPLIT]
    examples = record.nodes[nodes.EXAMPLE_GEN].output("examples")
    overall = evaluation.overall_metrics(record.nodes[nodes.EVALUATOR].output("evaluation").uri)
    assert overall["example_count"] == len(records(examples.uri, TEST_SPLIT)) > 0

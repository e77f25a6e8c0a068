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

"""The heart pipeline end to end on 300 synthetic rows: the fastest full-pipeline smoke test."""
import glob
import os

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata import metadata_store

from models.heart import features as F
from pipelines import cli, evaluation, factory, lineage
from tests.heart_data import synthetic_heart_rows, write_heart_csv

pytestmark = pytest.mark.e2e

BUDGET = ["--train-steps", "120", "--eval-steps", "2"]


@pytest.fixture(scope="module")
def heart_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("heart")
    write_heart_csv(root / "data" / "heart" / "heart.csv", synthetic_heart_rows(300, seed=4))
    home = root / "home"
    status = cli.main(["run", "heart", "--home", str(home), "--data-root", str(root / "data")] + BUDGET)
    store = metadata_store.MetadataStore(lineage.sqlite_config(str(home / "metadata.sqlite")))
    run_id = lineage.list_run_ids(store, "mlops-heart")[0]
    return home, status, lineage.load_run(store, "mlops-heart", run_id)


def _serialized(rows):
    out = []
    for row in rows:
        feature = {}
        for name, value in row.items():
            if name == F.LABEL_KEY:
                continue
            if isinstance(value, str):
                feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
            elif isinstance(value, float):
                feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
            else:
                feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        out.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return out


def test_heart_run_without_tuner_blesses_and_pushes(heart_run):
    _, status, record = heart_run
    assert status == 0
    assert factory.TUNER not in record.nodes
    for node in (factory.EXAMPLE_GEN, factory.SCHEMA_GEN, factory.EXAMPLE_VALIDATOR, factory.TRANSFORM,
                 factory.TRAINER, factory.EVALUATOR, factory.PUSHER):
        assert record.nodes[node].state == "complete", node
    assert record.nodes[factory.EVALUATOR].output("blessing").get("blessed") == 1
    assert record.nodes[factory.PUSHER].output("pushed_model").get("pushed") == 1


def test_evaluation_is_sliced_by_sex_and_chest_pain_type(heart_run):
    _, _, record = heart_run
    uri = record.nodes[factory.EVALUATOR].output("evaluation").uri
    by_slice = {m.slice: m.candidate for m in evaluation.load_slice_metrics(uri)}
    assert {"Overall", "sex=0", "sex=1"} <= set(by_slice)
    assert any(name.startswith("cp=") for name in by_slice)
    overall = by_slice["Overall"]
    assert overall["auc"] >= 0.8 and 0 < overall["example_count"] < 300


def test_pushed_model_scores_raw_rows_and_tolerates_an_unseen_category(heart_run):
    home, _, _ = heart_run
    versions = sorted(glob.glob(os.path.join(home, "serving", "heart", "*")))
    model = tf.saved_model.load(versions[-1])
    rows = synthetic_heart_rows(60, seed=99)
    rows[0]["thal"] = "1"  # a code the training data never had: the OOV bucket
    probs = model.signatures["serving_default"](examples=tf.constant(_serialized(rows)))["probabilities"].numpy()
    assert probs.shape == (60, 2) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    labels = np.array([r[F.LABEL_KEY] for r in rows])
    assert (np.argmax(probs, axis=1) == labels).mean() > 0.7

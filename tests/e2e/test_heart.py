"""The heart pipeline end to end on 300 synthetic rows: the fastest full-pipeline smoke test."""
import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from models.heart import features as F
from components import evaluation
from pipelines import nodes
from tests.heart_data import synthetic_heart_rows
from tests.records import serialized_examples

pytestmark = pytest.mark.e2e

def test_a_run_prints_no_library_noise_and_ends_cleanly(heart_run):
    """Quiet by default: no TensorFlow start-up lines, no warnings, no teardown tracebacks on the
    terminal or in the run's log; the log still has the whole run."""
    home, status, _, done = heart_run
    assert status == 0, done.stdout + done.stderr
    assert done.stderr == "", done.stderr
    for noise in ("oneDNN", "cuda", "TensorRT", "Exception ignored", "Warning", "Traceback"):
        assert noise not in done.stdout, noise
    assert "↺" not in done.stdout and "✓ Trainer" in done.stdout and "blessed" in done.stdout
    [log] = (home / "logs" / "heart").glob("*.log")
    text = log.read_text(errors="replace")
    assert "Component Trainer is running." in text and "Exception ignored" not in text


def test_heart_run_without_tuner_blesses_and_pushes(heart_run):
    _, status, record, _ = heart_run
    assert status == 0
    assert nodes.TUNER not in record.nodes
    for node in (nodes.EXAMPLE_GEN, nodes.SCHEMA_GEN, nodes.EXAMPLE_VALIDATOR, nodes.TRANSFORM,
                 nodes.TRAINER, nodes.EVALUATOR, nodes.PUSHER):
        assert record.nodes[node].state == "complete", node
    assert record.nodes[nodes.EVALUATOR].output("blessing").get("blessed") == 1
    assert record.nodes[nodes.PUSHER].output("pushed_model").get("pushed") == 1


def test_evaluation_is_sliced_by_sex_and_chest_pain_type(heart_run):
    _, _, record, _ = heart_run
    uri = record.nodes[nodes.EVALUATOR].output("evaluation").uri
    by_slice = {m.slice: m.candidate for m in evaluation.load_slice_metrics(uri)}
    assert {"Overall", "sex=0", "sex=1"} <= set(by_slice)
    assert any(name.startswith("cp=") for name in by_slice)
    overall = by_slice["Overall"]
    assert overall["auc"] >= 0.8 and 0 < overall["example_count"] < 300


def test_pushed_model_scores_raw_rows_and_tolerates_an_unseen_category(heart_run):
    home, _, _, _ = heart_run
    versions = sorted(glob.glob(os.path.join(home, "serving", "heart", "*")))
    model = tf.saved_model.load(versions[-1])
    rows = synthetic_heart_rows(60, seed=99)
    rows[0]["thal"] = "1"  # a code the training data never had: the OOV bucket
    probs = model.signatures["serving_default"](
        examples=tf.constant(serialized_examples(rows, drop={F.LABEL_KEY})))["probabilities"].numpy()
    assert probs.shape == (60, 2) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    labels = np.array([r[F.LABEL_KEY] for r in rows])
    assert (np.argmax(probs, axis=1) == labels).mean() > 0.7

"""The InfraValidator: a candidate SavedModel is served in a fresh process that imports only
TensorFlow (+ the declared custom-op modules) and checked against the serving contract before the
Pusher may push it. Real executors and real serving processes on tiny SavedModels."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from components import infra_checks, infra_validator
from models.common.contract import SPLITS, VALIDATION_SPLIT
from tests.records import serialized_examples

CLASSES = ["no", "yes"]
LABEL = "label"
ROWS = [{"x": float(i) / 10.0 - 1.0, "text": f"Ünïcödé row {i}", LABEL: i % 2} for i in range(20)]


# ---- tiny SavedModels ----------------------------------------------------------------------------


def _scores(examples):
    features = tf.io.parse_example(examples, {"x": tf.io.FixedLenFeature([], tf.float32),
                                              "text": tf.io.FixedLenFeature([], tf.string)})
    return features["x"], features["text"]


def _serving_fn(kind: str):
    def probabilities(x):
        return tf.nn.softmax(tf.stack([x, -x], axis=1))

    def serve(examples):
        x, text = _scores(examples)
        if kind == "good":
            return {"probabilities": probabilities(x)}
        if kind == "wrong_name":
            return {"probs": probabilities(x)}
        if kind == "wrong_shape":
            return {"probabilities": tf.nn.softmax(tf.stack([x, -x, 2 * x], axis=1))}
        if kind == "not_summing":
            return {"probabilities": tf.sigmoid(tf.stack([x, x + 1.0], axis=1))}
        if kind == "custom_op":
            import tensorflow_text as text_ops

            length = tf.cast(tf.strings.length(text_ops.normalize_utf8(text, "NFKC")), tf.float32)
            return {"probabilities": probabilities(x + 0.0 * length)}
        if kind == "scorer":
            return {"similarity": tf.tanh(x)}
        raise ValueError(kind)

    return serve


def export_model(root: Path, kind: str):
    """A Model artifact whose Format-Serving/ SavedModel's serving_default is of the given kind."""
    module = tf.Module()
    module.serve = tf.function(_serving_fn(kind), input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    model = standard_artifacts.Model()
    model.uri = str(root / "model")
    tf.saved_model.save(module, os.path.join(model.uri, "Format-Serving"),
                        signatures={"serving_default": module.serve.get_concrete_function()})
    return model


def raw_examples(root: Path):
    """ExampleGen-like Examples: gzipped TFRecords of raw examples (label included) per split."""
    examples = standard_artifacts.Examples()
    examples.uri = str(root / "examples")
    examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
    for split in SPLITS:
        folder = Path(examples.uri) / f"Split-{split}"
        folder.mkdir(parents=True)
        with tf.io.TFRecordWriter(str(folder / "data_tfrecord-00000-of-00001.gz"), options="GZIP") as writer:
            for record in serialized_examples(ROWS):
                writer.write(record)
    return examples


def model_blessing(root: Path, blessed: bool = True):
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(root / "model_blessing")
    blessing.set_int_custom_property("blessed", int(blessed))
    return blessing


def validate(root: Path, kind: str, *, blessed: bool = True, class_names=CLASSES, prediction_key=None,
             custom_op_modules=None):
    """Run the InfraValidator executor on a fresh tiny model; returns (InfraBlessing, report)."""
    root.mkdir(parents=True, exist_ok=True)
    output = standard_artifacts.InfraBlessing()
    output.uri = str(root / "infra_blessing")
    os.makedirs(output.uri)
    properties = {"label_key": LABEL, "class_names": json.dumps(list(class_names)), "prediction_key": prediction_key,
                  "custom_op_modules": json.dumps(custom_op_modules) if custom_op_modules else None,
                  "sample_size": 16, "latency_calls": 5}
    inputs = {"model": [export_model(root, kind)], "model_blessing": [model_blessing(root, blessed)],
              "examples": [raw_examples(root)]}
    infra_validator.Executor().Do(inputs, {"blessing": [output]}, properties)
    report = json.loads((Path(output.uri) / infra_validator.REPORT_FILE).read_text())
    return output, report


def _not_blessed(output, report, check: str):
    assert output.get_int_custom_property("blessed") == 0
    assert (Path(output.uri) / "INFRA_NOT_BLESSED").exists() and not (Path(output.uri) / "INFRA_BLESSED").exists()
    assert output.get_string_custom_property("failed_check") == check == report["failed_check"]
    reason = output.get_string_custom_property("reason")
    assert reason == report["reason"] and reason.startswith(f"{check}: ")
    assert report["blessed"] is False and report["checks"][-1] == {"check": check, "passed": False, "detail": reason}
    return reason


# ---- tests ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return validate(tmp_path_factory.mktemp("good"), "good")


def test_a_servable_model_is_blessed_with_its_latencies(good):
    output, report = good
    assert output.get_int_custom_property("blessed") == 1
    assert (Path(output.uri) / "INFRA_BLESSED").exists() and not (Path(output.uri) / "INFRA_NOT_BLESSED").exists()
    assert output.get_string_custom_property("failed_check") == "" and output.get_string_custom_property("reason") == ""
    latencies = infra_validator.latencies(output)
    assert set(latencies) == {"batch_1_p50", "batch_1_p99", "batch_64_p50", "batch_64_p99"}
    assert all(value > 0 for value in latencies.values())
    assert latencies["batch_1_p50"] <= latencies["batch_1_p99"]
    assert report["blessed"] is True and report["failed_check"] is None
    assert [c["check"] for c in report["checks"] if c["passed"]] == [
        "model_blessing", "serving_process", "load", "signature", "predict", "outputs", "dtype", "shape", "finite",
        "probabilities", "consistency", "latency"]
    assert report["latency_ms"]["64"]["calls"] == 5 and report["latency_ms"]["1"]["p50"] == latencies["batch_1_p50"]
    assert report["sample"] == {"split": VALIDATION_SPLIT, "examples": 16, "label_removed": LABEL,
                                "source": report["sample"]["source"]}
    assert report["max_abs_diff"] <= 1e-5
    served = report["serving_process"]
    assert served["exit_code"] == 0 and served["outputs"]["probabilities"] == {"dtype": "float32", "shape": [16, 2]}
    assert served["batch_outputs"]["64"]["probabilities"]["shape"] == [64, 2]
    # A fresh process with serving's imports only: no TFX, no project code, no undeclared custom ops.
    assert served["command"][1:3] == ["-m", "components.serving_check"]
    assert "tensorflow" in served["modules"]
    assert not {"tfx", "tensorflow_text", "tensorflow_transform", "models", "pipelines"} & set(served["modules"])
    assert (Path(output.uri) / infra_validator.SERVING_LOG_FILE).exists()


@pytest.mark.parametrize("kind, check, words", [
    ("wrong_name", "outputs", ["returns ['probs']", "'probabilities'"]),
    ("wrong_shape", "shape", ["[16, 3]", "[16, 2]", "len(class_names)"]),
    ("not_summing", "probabilities", ["do not sum to 1"]),
])
def test_a_broken_serving_output_is_not_blessed_naming_the_check(tmp_path, kind, check, words):
    output, report = validate(tmp_path, kind)
    reason = _not_blessed(output, report, check)
    for word in words:
        assert word in reason, reason
    assert infra_validator.latencies(output)  # measured before the contract was judged


def test_a_model_needing_an_undeclared_custom_op_fails_naming_the_op(tmp_path):
    output, report = validate(tmp_path / "undeclared", "custom_op")
    reason = _not_blessed(output, report, "load")
    assert "'NormalizeUTF8' is not registered" in reason and "custom_op_modules" in reason, reason
    assert not infra_validator.latencies(output)
    # Declared, the same model is served (the serving process imports tensorflow_text first).
    output, report = validate(tmp_path / "declared", "custom_op", custom_op_modules=["tensorflow_text"])
    assert output.get_int_custom_property("blessed") == 1, report["reason"]
    assert "tensorflow_text" in report["serving_process"]["modules"]


def test_a_scorer_returns_one_float_per_example(tmp_path):
    output, report = validate(tmp_path / "ok", "scorer", class_names=[], prediction_key="similarity")
    assert output.get_int_custom_property("blessed") == 1, report["reason"]
    assert report["contract"]["kind"] == "scorer" and report["contract"]["shape"] == ["batch"]
    assert "probabilities" not in [c["check"] for c in report["checks"]]
    # The same model judged as a classifier has no `probabilities`.
    output, report = validate(tmp_path / "as_classifier", "scorer")
    assert "returns ['similarity']" in _not_blessed(output, report, "outputs")


def test_an_evaluator_unblessed_model_is_not_validated(tmp_path, monkeypatch):
    def no_process(*args, **kwargs):
        raise AssertionError("no serving process may start for a model the Evaluator did not bless")

    monkeypatch.setattr(infra_validator.subprocess, "run", no_process)
    output, report = validate(tmp_path, "good", blessed=False)
    assert output.get_int_custom_property("blessed") == 0 and (Path(output.uri) / "INFRA_NOT_BLESSED").exists()
    assert output.get_string_custom_property("reason") == "not blessed by the Evaluator" == report["reason"]
    assert report["failed_check"] == "model_blessing" and "serving_process" not in report
    assert not infra_validator.latencies(output)


def test_value_checks_name_what_is_wrong():
    classifier = infra_checks.Contract.for_task(CLASSES, None)
    with pytest.raises(infra_checks.CheckFailed, match=r"^finite: 'probabilities' has 1 NaN"):
        infra_checks.check_values(np.array([[0.5, np.nan]], np.float32), classifier)
    with pytest.raises(infra_checks.CheckFailed, match=r"^probabilities: .* outside \[0, 1\]"):
        infra_checks.check_values(np.array([[1.5, -0.5]], np.float32), classifier)
    with pytest.raises(infra_checks.CheckFailed, match=r"^consistency: .* up to 0.01"):
        infra_checks.check_consistency(np.array([0.5, 0.5]), np.array([0.49, 0.51]), classifier)
    assert infra_checks.check_consistency(np.array([0.5]), np.array([0.5 + 1e-7]), classifier) < 1e-5


def _push(tmp_path: Path, infra_blessing):
    from tfx.proto import pusher_pb2
    from tfx.utils import proto_utils

    from components.atomic_pusher import AtomicPusherExecutor

    model = export_model(tmp_path, "good")
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed_model")
    base = tmp_path / "serving" / "census"
    destination = pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(base)))
    AtomicPusherExecutor().Do(
        {"model": [model], "model_blessing": [model_blessing(tmp_path)], "infra_blessing": [infra_blessing]},
        {"pushed_model": [pushed]}, {"push_destination": proto_utils.proto_to_json(destination)})
    return pushed, base


def test_the_pusher_does_not_push_an_infra_unblessed_model(tmp_path, good):
    refused, _ = validate(tmp_path / "broken", "wrong_name")
    pushed, base = _push(tmp_path / "refused", refused)
    assert pushed.get_int_custom_property("pushed") == 0 and not base.exists()
    # The Evaluator-blessed and infra-blessed model is pushed by the same executor.
    pushed, base = _push(tmp_path / "accepted", good[0])
    assert pushed.get_int_custom_property("pushed") == 1 and len([n for n in os.listdir(base) if n.isdigit()]) == 1

"""The Evaluator's additions to TFX's: undefined metrics on one-class slices read n/a, and slice
gates ignore failures on slices too small to gate on."""
from __future__ import annotations

import math
import os

import apache_beam as beam
import pytest
import tensorflow as tf
from tensorflow_model_analysis.proto import metrics_for_slice_pb2, validation_result_pb2
from tfx.types import standard_artifacts

from components import evaluation
from components.evaluator import ungate_small_slices
from pipelines import factory
from pipelines.tasks import load_task


def test_auc_and_recall_are_undefined_on_a_slice_without_positives():
    no_positive = evaluation.mark_undefined({"auc": 0.0, "recall": float("nan"), "precision": 0.0,
                                             "mean_label": 0.0, "example_count": 35.0})
    assert math.isnan(no_positive["auc"]) and math.isnan(no_positive["recall"])
    assert no_positive["precision"] == 0.0 and no_positive["example_count"] == 35.0
    no_negative = evaluation.mark_undefined({"auc": 0.0, "specificity": 0.0, "recall": 1.0, "mean_label": 1.0})
    assert math.isnan(no_negative["auc"]) and math.isnan(no_negative["specificity"]) and no_negative["recall"] == 1.0
    both = {"auc": 0.8, "recall": 0.5, "mean_label": 0.3}
    assert evaluation.mark_undefined(both) == both


def test_binary_tasks_compute_the_mean_label_and_census_gates_gender_and_race():
    config = factory.build_eval_config(load_task("census"))
    binarized = config.metrics_specs[1]
    assert "MeanLabel" in [m.class_name for m in binarized.metrics]
    auc = next(m for m in binarized.metrics if m.class_name == "AUC")
    gated = [list(t.slicing_specs[0].feature_keys) for t in auc.per_slice_thresholds]
    assert gated == [[], ["gender"], ["race"]]
    assert all(t.threshold.change_threshold.absolute.value == pytest.approx(-0.03)
               for t in auc.per_slice_thresholds[1:])
    sts = factory.build_eval_config(load_task("sts"))
    assert "MeanLabel" not in [m.class_name for spec in sts.metrics_specs for m in spec.metrics]


def _slice_key(column: str, value: str):
    key = metrics_for_slice_pb2.SliceKey()
    single = key.single_slice_keys.add()
    single.column, single.bytes_value = column, value.encode()
    return key


def _write_evaluation(uri, sizes, failing):
    """TFMA's metrics and validations files for slices race=<value> of the given sizes, with an AUC
    change-threshold failure on the `failing` ones."""
    os.makedirs(uri)
    with tf.io.TFRecordWriter(os.path.join(uri, "metrics")) as writer:
        for value, size in sizes.items():
            metrics = metrics_for_slice_pb2.MetricsForSlice(slice_key=_slice_key("race", value))
            entry = metrics.metric_keys_and_values.add()
            entry.key.name = "example_count"
            entry.value.double_value.value = size
            writer.write(metrics.SerializeToString())
    result = validation_result_pb2.ValidationResult(validation_ok=False)
    for value in failing:
        per_slice = result.metric_validations_per_slice.add()
        per_slice.slice_key.CopyFrom(_slice_key("race", value))
        failure = per_slice.failures.add()
        failure.metric_key.name, failure.metric_key.is_diff = "auc", True
        failure.metric_value.double_value.value = -0.08
    with tf.io.TFRecordWriter(os.path.join(uri, "validations")) as writer:
        writer.write(result.SerializeToString())


def _blessing(tmp_path):
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    os.makedirs(blessing.uri)
    open(os.path.join(blessing.uri, "NOT_BLESSED"), "w").close()
    blessing.set_int_custom_property("blessed", 0)
    return blessing


def test_a_gate_failure_on_a_small_slice_does_not_block_blessing(tmp_path):
    uri = str(tmp_path / "evaluation")
    _write_evaluation(uri, {"White": 5000, "Other": 50}, failing=["Other"])
    blessing = _blessing(tmp_path)
    ungate_small_slices(uri, blessing, {"race": 200})
    assert evaluation.validation_failures(uri) == (True, [])
    assert blessing.get_int_custom_property("blessed") == 1
    assert os.listdir(blessing.uri) == ["BLESSED"]


def test_a_gate_failure_on_a_large_slice_blocks_blessing_and_names_the_slice(tmp_path):
    uri = str(tmp_path / "evaluation")
    _write_evaluation(uri, {"White": 5000, "Other": 50}, failing=["White", "Other"])
    blessing = _blessing(tmp_path)
    ungate_small_slices(uri, blessing, {"race": 200})
    ok, reasons = evaluation.validation_failures(uri)
    assert not ok and len(reasons) == 1 and "race=White" in reasons[0]
    assert blessing.get_int_custom_property("blessed") == 0


def test_custom_op_modules_are_imported_in_every_beam_worker_too():
    from components.evaluator import with_worker_imports

    args = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    assert with_worker_imports(args, ["tensorflow_text"]) == args + ["--beam_plugin=tensorflow_text"]
    assert with_worker_imports(args + ["--beam_plugin=tensorflow_text"], ["tensorflow_text"]).count(
        "--beam_plugin=tensorflow_text") == 1
    assert with_worker_imports(args, []) == args


class ScoreWithSavedModel(beam.DoFn):
    """Loads a SavedModel in the worker (as TFMA does) and scores each text with it."""

    def __init__(self, path):
        self._path = path

    def setup(self):
        self._serve = tf.saved_model.load(self._path).signatures["serving_default"]

    def process(self, value):
        yield float(self._serve(tf.constant([value]))["n"].numpy()[0])


@pytest.mark.e2e
def test_a_multi_processing_worker_loads_a_model_with_custom_ops_given_the_evaluators_args(tmp_path):
    """Under the multi_processing DirectRunner a worker is a fresh process: the executor's own
    import of tensorflow_text does not reach it, the --beam_plugin flag does."""
    import tensorflow_text as text
    from apache_beam.testing.util import assert_that, equal_to

    from components.evaluator import with_worker_imports

    class Tokens(tf.Module):
        def __init__(self):
            super().__init__()
            self.tokenizer = text.WhitespaceTokenizer()

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve(self, x):
            return {"n": tf.cast(self.tokenizer.tokenize(x).row_lengths(), tf.float32)}

    module = Tokens()
    path = str(tmp_path / "model")
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    args = with_worker_imports(["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
                               ["tensorflow_text"])
    with beam.Pipeline(argv=args) as pipeline:
        counts = (pipeline | beam.Create(["a b c", "d e"])
                  | beam.ParDo(ScoreWithSavedModel(path)))
        assert_that(counts, equal_to([3.0, 2.0]))


def test_a_multi_class_task_gates_every_class_and_binary_tasks_get_no_class_metrics():
    import dataclasses

    from pipelines.config import ClassGate

    config = factory.build_eval_config(load_task("news"))
    per_class = config.metrics_specs[-1]
    assert list(per_class.binarize.class_ids.values) == [0, 1, 2, 3]
    assert [m.class_name for m in per_class.metrics] == ["TopOnePrecision", "TopOneRecall", "TopOneF1Score"]
    recall = per_class.metrics[1]
    assert recall.module == "models.common.multiclass_metrics"
    [gate] = recall.per_slice_thresholds
    assert list(gate.slicing_specs[0].feature_keys) == []
    assert gate.threshold.change_threshold.absolute.value == pytest.approx(-0.03)
    assert not config.metrics_specs[1].HasField("binarize")  # accuracy on the four-way prediction
    assert len(factory.build_eval_config(load_task("census")).metrics_specs) == 2
    news = load_task("news")
    wrong = dataclasses.replace(news, eval=dataclasses.replace(news.eval, class_gate=ClassGate("Recall")))
    with pytest.raises(ValueError, match="class gate on 'Recall'"):
        factory.build_eval_config(wrong)


def test_one_vs_rest_metrics_of_several_classes_are_labelled_per_class():
    from tensorflow_model_analysis.metrics import metric_types

    def key(name, class_id=None, macro=False):
        return metric_types.MetricKey(
            name=name, sub_key=metric_types.SubKey(class_id=class_id) if class_id is not None else None,
            aggregation_type=metric_types.AggregationType(macro_average=True) if macro else None).to_proto()

    news = [key("recall", 0), key("recall", 3), key("sparse_categorical_accuracy"), key("recall", macro=True)]
    per_class = evaluation.classes_per_metric(news)
    assert [evaluation._metric_label(k, per_class) for k in news] == [
        "recall/class_0", "recall/class_3", "sparse_categorical_accuracy", "recall/macro"]
    binary = [key("auc", 1), key("recall", 1)]  # a binary task's positive class: names unchanged
    assert [evaluation._metric_label(k, evaluation.classes_per_metric(binary)) for k in binary] == ["auc", "recall"]

"""TFMA metrics for multi-class classifiers, on the top-1 prediction (the most probable class):
one-vs-rest precision, recall and F1 per class, and their macro averages, per slice.

TFMA's own one-vs-rest metrics count a class as predicted when its probability passes 0.5 (with
four classes the winner often has less), and with `top_k: 1` their keys no longer match the keys
TFMA's thresholds are declared on, so a per-class gate could never pass; its macro averaging
cannot be combined with top-1 either. Here one combiner keeps the slice's confusion matrix
(actual x predicted counts) and each metric reads its number off it:

  TopOnePrecision / TopOneRecall / TopOneF1Score   name precision / recall / f1_score, one key per
      class id of the MetricsSpec's binarize.class_ids (TFMA thresholds on them work as usual);
      undefined (NaN) where the slice has no prediction (precision) or no example (recall) of the class
  MacroAverages   macro_precision, macro_recall, macro_f1_score: the unweighted mean over the classes
      that occur in the slice (as labels or predictions); an undefined per-class value counts as 0,
      as in scikit-learn

Use them by dotted name, e.g. EvalSpec(class_metrics=("models.common.multiclass_metrics.TopOneRecall",)).
Example weights are ignored.
"""
from __future__ import annotations

from typing import Dict, Iterable

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util

MACRO_NAMES = ("macro_precision", "macro_recall", "macro_f1_score")


def per_class(counts: np.ndarray) -> Dict[str, np.ndarray]:
    """{precision, recall, f1_score} per class of a confusion matrix counts[actual, predicted]
    (NaN where undefined)."""
    true_positives = np.diag(counts).astype(np.float64)
    actual = counts.sum(axis=1).astype(np.float64)
    predicted = counts.sum(axis=0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_positives / predicted, np.nan)
        recall = np.where(actual > 0, true_positives / actual, np.nan)
        total = precision + recall
        f1 = np.where(total > 0, 2 * precision * recall / total, np.where(np.isnan(total), np.nan, 0.0))
    return {"precision": precision, "recall": recall, "f1_score": f1}


def macro_averages(counts: np.ndarray) -> Dict[str, float]:
    """{macro_precision, macro_recall, macro_f1_score} of a confusion matrix counts[actual, predicted]."""
    present = (counts.sum(axis=0) + counts.sum(axis=1)) > 0
    if not present.any():
        return {name: float("nan") for name in MACRO_NAMES}
    values = per_class(counts)
    return {f"macro_{name}": float(np.nan_to_num(values[name][present], nan=0.0).mean())
            for name in ("precision", "recall", "f1_score")}


def confusion(accumulator: dict, size: int = 0) -> np.ndarray:
    size = max([size] + [1 + max(cell) for cell in accumulator])
    counts = np.zeros((size, size))
    for (actual, guess), count in accumulator.items():
        if actual >= 0:
            counts[actual, guess] += count
    return counts


class _ConfusionCombiner(beam.CombineFn):
    """{(actual class, top-1 class): count} of a slice; `extract` turns the matrix into the keys' values."""

    def __init__(self, keys, extract, eval_config, model_name, output_name):
        self._keys = keys
        self._extract = extract
        self._eval_config = eval_config
        self._model_name = model_name
        self._output_name = output_name

    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, accumulator: dict, element: metric_types.StandardMetricInputs) -> dict:
        for label, prediction, _ in metric_util.to_label_prediction_example_weight(
            element, eval_config=self._eval_config, model_name=self._model_name,
            output_name=self._output_name, example_weighted=False, flatten=False,
        ):
            actual = int(np.asarray(label).reshape(-1)[0])
            guess = int(np.argmax(np.asarray(prediction).reshape(-1)))
            accumulator[(actual, guess)] = accumulator.get((actual, guess), 0) + 1
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[dict]) -> dict:
        result: dict = {}
        for accumulator in accumulators:
            for cell, count in accumulator.items():
                result[cell] = result.get(cell, 0) + count
        return result

    def extract_output(self, accumulator: dict) -> Dict[metric_types.MetricKey, float]:
        return self._extract(accumulator, self._keys)


def _computation(keys, extract, eval_config, model_name, output_name):
    return [metric_types.MetricComputation(
        keys=keys, preprocessors=None,
        combiner=_ConfusionCombiner(keys, extract, eval_config, model_name, output_name))]


def _per_class_creator(statistic: str):
    def create(name=statistic, eval_config=None, model_name="", output_name="", sub_key=None,
               aggregation_type=None, class_weights=None, example_weighted=False):
        if sub_key is None or sub_key.class_id is None:
            raise ValueError(f"{statistic} per class needs the MetricsSpec's binarize.class_ids")
        class_id = int(sub_key.class_id)
        key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                     sub_key=sub_key, example_weighted=example_weighted)

        def extract(accumulator, keys):
            values = per_class(confusion(accumulator, class_id + 1))[statistic]
            return {keys[0]: float(values[class_id])}

        return _computation([key], extract, eval_config, model_name, output_name)

    return create


def _create_macro(name="macro_averages", eval_config=None, model_name="", output_name="", sub_key=None,
                  aggregation_type=None, class_weights=None, example_weighted=False):
    keys = [metric_types.MetricKey(name=n, model_name=model_name, output_name=output_name,
                                   example_weighted=example_weighted) for n in MACRO_NAMES]

    def extract(accumulator, keys):
        values = macro_averages(confusion(accumulator))
        return {key: values[key.name] for key in keys}

    return _computation(keys, extract, eval_config, model_name, output_name)


class TopOnePrecision(metric_types.Metric):
    """Per class: of the examples whose most probable class it is, the share that belong to it."""

    def __init__(self, name: str = "precision"):
        super().__init__(metric_util.merge_per_key_computations(_per_class_creator("precision")), name=name)


class TopOneRecall(metric_types.Metric):
    """Per class: of its examples, the share whose most probable class it is."""

    def __init__(self, name: str = "recall"):
        super().__init__(metric_util.merge_per_key_computations(_per_class_creator("recall")), name=name)


class TopOneF1Score(metric_types.Metric):
    """Per class: the harmonic mean of its top-1 precision and recall."""

    def __init__(self, name: str = "f1_score"):
        super().__init__(metric_util.merge_per_key_computations(_per_class_creator("f1_score")), name=name)


class MacroAverages(metric_types.Metric):
    """Macro-averaged top-1 precision, recall and F1 over a slice."""

    def __init__(self, name: str = "macro_averages"):
        super().__init__(metric_util.merge_per_key_computations(_create_macro), name=name)


for _metric in (TopOnePrecision, TopOneRecall, TopOneF1Score, MacroAverages):
    metric_types.register_metric(_metric)

"""TFMA metrics for STS: Pearson and Spearman correlation of the predicted similarity with the gold
score, per slice. Use them in an EvalConfig as MetricConfig(class_name="SpearmanCorrelation",
module="models.sts.metrics") (EvalSpec.metrics takes the dotted "models.sts.metrics.SpearmanCorrelation").

Both are rank/linear correlations over the whole slice, so they cannot be summed from per-example
parts: the combiner keeps every (label, prediction) pair of a slice (STS-B dev/test: ~1,500 pairs)
and computes the statistic at the end. Example weights are ignored (STS has none).
"""
from __future__ import annotations

from typing import Callable, Dict, Iterable

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util

PEARSON_NAME = "pearson"
SPEARMAN_NAME = "spearman"


def pearson(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Pearson's r; NaN for fewer than two points or a constant side."""
    if labels.size < 2:
        return float("nan")
    x = labels - labels.mean()
    y = predictions - predictions.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denominator) if denominator > 0 else float("nan")


def spearman(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Spearman's rho: Pearson's r of the ranks (ties get their average rank)."""
    from scipy.stats import rankdata

    if labels.size < 2:
        return float("nan")
    return pearson(rankdata(labels), rankdata(predictions))


STATISTICS: Dict[str, Callable[[np.ndarray, np.ndarray], float]] = {PEARSON_NAME: pearson, SPEARMAN_NAME: spearman}


class _Pairs:
    __slots__ = ["labels", "predictions"]

    def __init__(self):
        self.labels = []
        self.predictions = []


class _CorrelationCombiner(beam.CombineFn):
    """Collects (label, prediction) pairs of a slice, then computes one correlation statistic."""

    def __init__(self, key: metric_types.MetricKey, statistic: str, eval_config, aggregation_type, class_weights):
        self._key = key
        self._statistic = statistic
        self._eval_config = eval_config
        self._aggregation_type = aggregation_type
        self._class_weights = class_weights

    def create_accumulator(self) -> _Pairs:
        return _Pairs()

    def add_input(self, accumulator: _Pairs, element: metric_types.StandardMetricInputs) -> _Pairs:
        for label, prediction, _ in metric_util.to_label_prediction_example_weight(
            element,
            eval_config=self._eval_config,
            model_name=self._key.model_name,
            output_name=self._key.output_name,
            sub_key=self._key.sub_key,
            aggregation_type=self._aggregation_type,
            class_weights=self._class_weights,
            example_weighted=False,
        ):
            accumulator.labels.append(float(label))
            accumulator.predictions.append(float(prediction))
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[_Pairs]) -> _Pairs:
        accumulators = iter(accumulators)
        result = next(accumulators)
        for other in accumulators:
            result.labels.extend(other.labels)
            result.predictions.extend(other.predictions)
        return result

    def extract_output(self, accumulator: _Pairs) -> Dict[metric_types.MetricKey, float]:
        labels = np.asarray(accumulator.labels, dtype=np.float64)
        predictions = np.asarray(accumulator.predictions, dtype=np.float64)
        return {self._key: STATISTICS[self._statistic](labels, predictions)}


def _create(statistic, name, eval_config, model_name, output_name, sub_key, aggregation_type, class_weights,
            example_weighted) -> metric_types.MetricComputations:
    key = metric_types.MetricKey(
        name=name, model_name=model_name, output_name=output_name, sub_key=sub_key,
        example_weighted=example_weighted,
    )
    combiner = _CorrelationCombiner(key, statistic, eval_config, aggregation_type, class_weights)
    return [metric_types.MetricComputation(keys=[key], preprocessors=None, combiner=combiner)]


# TFMA passes the arguments a create function names in its signature, so both spell them out.
def _create_pearson(name=PEARSON_NAME, eval_config=None, model_name="", output_name="", sub_key=None,
                    aggregation_type=None, class_weights=None, example_weighted=False):
    return _create(PEARSON_NAME, name, eval_config, model_name, output_name, sub_key, aggregation_type,
                   class_weights, example_weighted)


def _create_spearman(name=SPEARMAN_NAME, eval_config=None, model_name="", output_name="", sub_key=None,
                     aggregation_type=None, class_weights=None, example_weighted=False):
    return _create(SPEARMAN_NAME, name, eval_config, model_name, output_name, sub_key, aggregation_type,
                   class_weights, example_weighted)


class PearsonCorrelation(metric_types.Metric):
    """Pearson's r between prediction and label over a slice."""

    def __init__(self, name: str = PEARSON_NAME):
        super().__init__(metric_util.merge_per_key_computations(_create_pearson), name=name)


class SpearmanCorrelation(metric_types.Metric):
    """Spearman's rank correlation between prediction and label over a slice."""

    def __init__(self, name: str = SPEARMAN_NAME):
        super().__init__(metric_util.merge_per_key_computations(_create_spearman), name=name)


metric_types.register_metric(PearsonCorrelation)
metric_types.register_metric(SpearmanCorrelation)

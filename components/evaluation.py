"""Read TFMA outputs (metrics per slice, validation result) written by the Evaluator."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import tensorflow_model_analysis as tfma

BASELINE_MODEL_NAMES = ("baseline",)


def slice_name(slice_key) -> str:
    """'Overall' or 'gender=Female' (TFMA SliceKey proto -> text)."""
    parts = []
    for single in slice_key.single_slice_keys:
        kind = single.WhichOneof("kind")
        value = getattr(single, kind)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        parts.append(f"{single.column}={value}")
    return ", ".join(parts) or "Overall"


def _class_id(key) -> Optional[int]:
    """The class id of a metric key's sub key (a TFMA MetricKey proto or metric_types.MetricKey), or None."""
    if hasattr(key, "HasField"):
        has = key.HasField("sub_key") and key.sub_key.HasField("class_id")
        return key.sub_key.class_id.value if has else None
    sub_key = key.sub_key
    return sub_key.class_id if sub_key is not None and sub_key.class_id is not None else None


def _aggregation(key):
    if hasattr(key, "HasField"):
        return key.aggregation_type if key.HasField("aggregation_type") else None
    return key.aggregation_type


def classes_per_metric(keys) -> frozenset:
    """Names of the metrics computed for more than one class id among `keys` (a multi-class task's
    one-vs-rest metrics); a binary task's metrics on its one positive class are not among them."""
    seen: Dict[str, set] = {}
    for key in keys:
        class_id = _class_id(key)
        if class_id is not None:
            seen.setdefault(key.name, set()).add(class_id)
    return frozenset(name for name, ids in seen.items() if len(ids) > 1)


AGGREGATIONS = ("macro_average", "weighted_macro_average", "micro_average")


def _metric_label(key, per_class: frozenset = frozenset()) -> str:
    """A metric's name; a one-vs-rest metric of a multi-class task (its name in per_class) gets
    '/class_N', an average over the classes '/macro' ('/weighted_macro', '/micro')."""
    aggregation = _aggregation(key)
    if aggregation is not None:
        for kind in AGGREGATIONS:
            if getattr(aggregation, kind, False):
                return f"{key.name}/{kind[: -len('_average')]}"
    class_id = _class_id(key)
    if key.name in per_class and class_id is not None:
        return f"{key.name}/class_{class_id}"
    return key.name


def _per_class_names(evaluation_uri: str) -> frozenset:
    return classes_per_metric(kv.key for per_slice in tfma.load_metrics(evaluation_uri)
                              for kv in per_slice.metric_keys_and_values)


def _value(value):
    kind = value.WhichOneof("type")
    if kind == "double_value":
        return value.double_value.value
    if kind == "bounded_value":
        return value.bounded_value.value.value
    return None


@dataclass
class SliceMetrics:
    slice: str
    candidate: Dict[str, float]
    baseline: Dict[str, float]
    key: tuple = ()  # TFMA slice key, e.g. (("gender", "Female"),); () is Overall


def load_slice_metrics(evaluation_uri: str) -> List[SliceMetrics]:
    """Metrics per slice for the candidate (and the baseline when there was one)."""
    result = []
    loaded = list(tfma.load_metrics(evaluation_uri))
    per_class = classes_per_metric(kv.key for per_slice in loaded for kv in per_slice.metric_keys_and_values)
    for per_slice in loaded:
        if per_slice.HasField("cross_slice_key"):
            continue  # cross slices (A vs B) are not per-slice rows
        candidate, baseline = {}, {}
        for kv in per_slice.metric_keys_and_values:
            if kv.key.is_diff:
                continue
            value = _value(kv.value)
            if value is None:
                continue
            target = baseline if kv.key.model_name in BASELINE_MODEL_NAMES else candidate
            target[_metric_label(kv.key, per_class)] = value
        key = tfma.slicer.deserialize_slice_key(per_slice.slice_key)
        result.append(SliceMetrics(slice_name(per_slice.slice_key), mark_undefined(candidate),
                                   mark_undefined(baseline), key))
    return result


# Metrics that mean nothing on a slice holding one class only (TFMA reports AUC 0 there).
NEEDS_BOTH_CLASSES = ("auc", "auc_precision_recall")
NEEDS_POSITIVES = ("recall",)
NEEDS_NEGATIVES = ("specificity",)
MEAN_LABEL = "mean_label"


def mark_undefined(metrics: Dict[str, float]) -> Dict[str, float]:
    """The metrics with those that are undefined on this slice set to NaN (shown as n/a): with
    no positive (mean label 0) or no negative (mean label 1) example, AUC is undefined, recall
    needs positives and specificity negatives."""
    mean = metrics.get(MEAN_LABEL)
    if mean is None or 0.0 < mean < 1.0:
        return metrics
    undefined = set(NEEDS_BOTH_CLASSES) | set(NEEDS_POSITIVES if mean == 0.0 else NEEDS_NEGATIVES)
    return {name: (float("nan") if name in undefined else value) for name, value in metrics.items()}


def overall_metrics(evaluation_uri: str) -> Dict[str, float]:
    for metrics in load_slice_metrics(evaluation_uri):
        if metrics.slice == "Overall":
            return metrics.candidate
    return {}


def validation_failures(evaluation_uri: str) -> Tuple[bool, List[str]]:
    """(validation_ok, readable reasons) from TFMA's validation result."""
    result = tfma.load_validation_result(evaluation_uri)
    reasons = []
    per_class = _per_class_names(evaluation_uri) if result.metric_validations_per_slice else frozenset()
    for per_slice in result.metric_validations_per_slice:
        where = slice_name(per_slice.slice_key)
        for failure in per_slice.failures:
            kind = "change vs baseline" if failure.metric_key.is_diff else "value"
            reasons.append(
                f"{_metric_label(failure.metric_key, per_class)} {kind} on {where} = {failure.metric_value.double_value.value:.4f} "
                f"fails threshold {_threshold_text(failure.metric_threshold)}"
            )
    if not result.validation_ok and not reasons:
        reasons.append("TFMA validation failed (see validations under the evaluation artifact)")
    return result.validation_ok, reasons


def _threshold_text(threshold) -> str:
    if threshold.HasField("value_threshold"):
        vt = threshold.value_threshold
        bounds = []
        if vt.HasField("lower_bound"):
            bounds.append(f">= {vt.lower_bound.value}")
        if vt.HasField("upper_bound"):
            bounds.append(f"<= {vt.upper_bound.value}")
        return " and ".join(bounds)
    if threshold.HasField("change_threshold"):
        ct = threshold.change_threshold
        return f"change {ct.absolute.value:+} ({tfma.MetricDirection.Name(ct.direction).lower()})"
    return str(threshold)


# --- Thresholds and per-slice validation (read back from what the Evaluator wrote) -------------


@dataclass
class Threshold:
    """One threshold from the EvalConfig TFMA used, e.g. auc >= 0.85 on Overall."""

    metric: str  # TFMA metric name, e.g. "auc"
    kind: str  # "value" | "change"
    slice_spec: object = None  # tfma.SlicingSpec, or None when it applies to every slice
    lower: Optional[float] = None
    upper: Optional[float] = None
    absolute: Optional[float] = None
    relative: Optional[float] = None
    direction: str = ""  # "higher_is_better" | "lower_is_better" (change thresholds)

    @property
    def where(self) -> str:
        if self.slice_spec is None:
            return "every slice"
        spec = self.slice_spec
        parts = list(spec.feature_keys) + [f"{k}={v}" for k, v in sorted(spec.feature_values.items())]
        return ", ".join(parts) if parts else "Overall"

    def applies_to(self, key: tuple) -> bool:
        """Does it apply to the slice with TFMA slice key tuple `key` (() is Overall)?"""
        if self.slice_spec is None:
            return True
        from tensorflow_model_analysis.slicer import slicer_lib

        return slicer_lib.SingleSliceSpec(spec=self.slice_spec).is_slice_applicable(key)

    def check(self, value: Optional[float], baseline: Optional[float] = None) -> Optional[bool]:
        """True/False as TFMA would decide for a candidate value (and baseline, for change
        thresholds); None when it cannot be decided (missing value, or no baseline)."""
        import math

        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if self.kind == "value":
            low = -math.inf if self.lower is None else self.lower
            high = math.inf if self.upper is None else self.upper
            return low <= value <= high
        if baseline is None:
            return None
        diff = value - baseline
        ok = True
        sign = -1 if self.direction == "lower_is_better" else 1
        if self.absolute is not None:
            ok = ok and sign * diff >= sign * self.absolute
        if self.relative is not None and baseline:
            ok = ok and sign * diff / baseline >= sign * self.relative
        return ok

    def text(self) -> str:
        if self.kind == "value":
            bounds = []
            if self.lower is not None:
                bounds.append(f"{self.metric} >= {self.lower:g}")
            if self.upper is not None:
                bounds.append(f"{self.metric} <= {self.upper:g}")
            rule = " and ".join(bounds) or self.metric
        else:
            sign = "<=" if self.direction == "lower_is_better" else ">="
            parts = []
            if self.absolute is not None:
                parts.append(f"{self.metric} change vs baseline {sign} {self.absolute:+g}")
            if self.relative is not None:
                parts.append(f"{self.metric} relative change vs baseline {sign} {self.relative:+g}")
            rule = " and ".join(parts) or f"{self.metric} change vs baseline"
        return f"{rule} on {self.where}"


def load_eval_config(evaluation_uri: str):
    """The EvalConfig TFMA actually used (TFX drops change thresholds when there is no baseline)."""
    from tensorflow_model_analysis.writers import eval_config_writer

    config, *_ = eval_config_writer.load_eval_run(evaluation_uri)
    return config


def has_baseline(evaluation_uri: str) -> bool:
    """Whether the Evaluator compared the candidate with a baseline model."""
    config = load_eval_config(evaluation_uri)
    return bool(config and any(spec.is_baseline for spec in config.model_specs))


def load_thresholds(evaluation_uri: str) -> List[Threshold]:
    """Every threshold of the candidate model, in EvalConfig order, without duplicates."""
    from tensorflow_model_analysis.metrics import metric_specs
    from tensorflow_model_analysis.proto import config_pb2

    config = load_eval_config(evaluation_uri)
    if config is None:
        return []
    baseline_names = {spec.name for spec in config.model_specs if spec.is_baseline}
    found: List[Threshold] = []
    seen = set()
    by_key = metric_specs.metric_thresholds_from_metrics_specs(config.metrics_specs, eval_config=config)
    per_class = classes_per_metric(by_key)
    for key, entries in by_key.items():
        if key.model_name in baseline_names:
            continue
        label = _metric_label(key, per_class)
        for slice_spec, threshold in entries:
            if isinstance(slice_spec, config_pb2.CrossSlicingSpec):
                continue  # cross-slice thresholds are not shown per slice
            spec = slice_spec if slice_spec is not None else None
            ident = (label, key.is_diff, spec.SerializeToString() if spec is not None else None,
                     threshold.SerializeToString())
            if ident in seen:
                continue
            seen.add(ident)
            if isinstance(threshold, config_pb2.GenericValueThreshold):
                found.append(Threshold(
                    metric=label, kind="value", slice_spec=spec,
                    lower=threshold.lower_bound.value if threshold.HasField("lower_bound") else None,
                    upper=threshold.upper_bound.value if threshold.HasField("upper_bound") else None,
                ))
            else:
                found.append(Threshold(
                    metric=label, kind="change", slice_spec=spec,
                    absolute=threshold.absolute.value if threshold.HasField("absolute") else None,
                    relative=threshold.relative.value if threshold.HasField("relative") else None,
                    direction=tfma.MetricDirection.Name(threshold.direction).lower(),
                ))
    return found


def slice_failures(evaluation_uri: str) -> Dict[str, List[str]]:
    """Slice name -> readable threshold failures on that slice (empty when validation passed)."""
    result = tfma.load_validation_result(evaluation_uri)
    failures: Dict[str, List[str]] = {}
    per_class = _per_class_names(evaluation_uri) if result.metric_validations_per_slice else frozenset()
    for per_slice in result.metric_validations_per_slice:
        where = slice_name(per_slice.slice_key)
        for failure in per_slice.failures:
            kind = "change vs baseline" if failure.metric_key.is_diff else "value"
            failures.setdefault(where, []).append(
                f"{_metric_label(failure.metric_key, per_class)} {kind} = {failure.metric_value.double_value.value:.4f} "
                f"fails threshold {_threshold_text(failure.metric_threshold)}"
            )
    return failures


def load_confusion_matrix(evaluation_uri: str, num_classes: int = 0, slice: str = "Overall") -> Optional[List[List[float]]]:
    """The candidate's multi-class confusion matrix on a slice, counts[actual][predicted] (TFMA's
    MultiClassConfusionMatrixPlot), at least num_classes wide; None when the evaluation has none."""
    for per_slice in tfma.load_plots(evaluation_uri):
        if per_slice.HasField("cross_slice_key") or slice_name(per_slice.slice_key) != slice:
            continue
        for kv in per_slice.plot_keys_and_values:
            if kv.key.model_name in BASELINE_MODEL_NAMES:
                continue
            if not kv.value.HasField("multi_class_confusion_matrix_at_thresholds"):
                continue
            matrices = kv.value.multi_class_confusion_matrix_at_thresholds.matrices
            if not matrices:
                continue
            entries = [e for e in matrices[0].entries if e.actual_class_id >= 0 and e.predicted_class_id >= 0]
            size = max([num_classes] + [max(e.actual_class_id, e.predicted_class_id) + 1 for e in entries])
            counts = [[0.0] * size for _ in range(size)]
            for e in entries:
                counts[e.actual_class_id][e.predicted_class_id] += e.num_weighted_examples
            return counts
    return None

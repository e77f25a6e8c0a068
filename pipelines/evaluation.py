"""Read TFMA outputs (metrics per slice, validation result) written by the Evaluator."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

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


def _metric_label(key) -> str:
    return key.name


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


def load_slice_metrics(evaluation_uri: str) -> List[SliceMetrics]:
    """Metrics per slice for the candidate (and the baseline when there was one)."""
    result = []
    for per_slice in tfma.load_metrics(evaluation_uri):
        candidate, baseline = {}, {}
        for kv in per_slice.metric_keys_and_values:
            if kv.key.is_diff:
                continue
            value = _value(kv.value)
            if value is None:
                continue
            target = baseline if kv.key.model_name in BASELINE_MODEL_NAMES else candidate
            target[_metric_label(kv.key)] = value
        result.append(SliceMetrics(slice_name(per_slice.slice_key), candidate, baseline))
    return result


def overall_metrics(evaluation_uri: str) -> Dict[str, float]:
    for metrics in load_slice_metrics(evaluation_uri):
        if metrics.slice == "Overall":
            return metrics.candidate
    return {}


def validation_failures(evaluation_uri: str) -> Tuple[bool, List[str]]:
    """(validation_ok, readable reasons) from TFMA's validation result."""
    result = tfma.load_validation_result(evaluation_uri)
    reasons = []
    for per_slice in result.metric_validations_per_slice:
        where = slice_name(per_slice.slice_key)
        for failure in per_slice.failures:
            kind = "change vs baseline" if failure.metric_key.is_diff else "value"
            reasons.append(
                f"{failure.metric_key.name} {kind} on {where} = {failure.metric_value.double_value.value:.4f} "
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

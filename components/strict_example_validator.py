"""ExampleValidator that stops the pipeline when the data has anomalies against the schema, or has
drifted too far from the data the baseline model was trained on.

Drift: features with a `drift_comparator` in the schema (census: the numeric columns, approximate
Jensen-Shannon divergence) are compared with the optional `baseline_statistics` input: the
statistics of the data the registry's baseline version was trained on (components.baseline), so a
local run and a Kubeflow run check drift the same way and rejected data never becomes a baseline.
Without a baseline (a task's first model, or a version that recorded no statistics) only the
schema is checked; the log says so. Drift is measured on the train split only (DRIFT_SPLIT), against
the baseline's train split: validation and test are hash buckets of the same data, and on their few
rows the divergence is mostly sampling noise (a 40-row split read 0.15 on an unchanged column).
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

from absl import logging
from tfx import types
from tfx.components import ExampleValidator
from tfx.components.example_validator import executor as validator_executor
from tfx.components.example_validator import labels
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import json_utils, writer_utils

from components import baseline
from models.common.contract import TRAIN_SPLIT

# Execution properties: the label column and how many classes it has (0: not a classifier).
LABEL_KEY = "label_key"
NUM_CLASSES_KEY = "num_classes"
# Optional input: the training-data statistics of the baseline model (components.baseline).
BASELINE_STATISTICS_KEY = "baseline_statistics"
# Custom properties on the ExampleAnomalies artifact naming the drift baseline (absent: none).
PROP_BASELINE_STATISTICS_URI = "drift_baseline_statistics_uri"
PROP_BASELINE = "drift_baseline"
# The split whose statistics are compared with the baseline's same split for drift.
DRIFT_SPLIT = TRAIN_SPLIT


class DataAnomalyError(RuntimeError):
    """The input data does not match the schema; nothing downstream may run on it."""


def describe_anomalies(anomalies) -> List[str]:
    """One readable line per anomaly: column, short description, details."""
    lines = []
    for column, info in sorted(anomalies.anomaly_info.items()):
        detail = info.description or "; ".join(r.description for r in info.reason)
        lines.append(f"column {column!r}: {info.short_description} ({detail})")
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        lines.append(f"dataset: {info.short_description} ({info.description})")
    return lines


def label_classes(statistics, label_key: str) -> Optional[Dict[str, int]]:
    """{class value: examples} of the label in one split's statistics. A string label lists its
    values; a numeric one (StatisticsGen sees no schema, so int labels get numeric statistics)
    tells only its min and max, which is enough to see a single class. None: no such column."""
    for dataset in statistics.datasets:
        for feature in dataset.features:
            name = feature.path.step[-1] if feature.path.step else feature.name
            if name != label_key:
                continue
            if feature.HasField("string_stats"):
                buckets = feature.string_stats.rank_histogram.buckets
                if buckets:
                    return {b.label: int(b.sample_count) for b in buckets}
                return {v.value: int(v.frequency) for v in feature.string_stats.top_values}
            if feature.HasField("num_stats") and feature.num_stats.common_stats.num_non_missing:
                low, high = feature.num_stats.min, feature.num_stats.max
                return {f"{low:g}": 1} if low == high else {f"{low:g}": 1, f"{high:g}": 1}
    return None


def add_missing_classes(anomalies, statistics, label_key: str, num_classes: int) -> None:
    """Record an anomaly on the label when a split lacks some of its classes: a model trained or
    evaluated on one class reads AUC 0 and means nothing (issue: a one-class label column)."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    present = label_classes(statistics, label_key)
    if present is None:
        return  # a missing label column is the schema's anomaly already
    seen = {value for value, count in present.items() if count > 0}
    if len(seen) >= num_classes:
        return
    info = anomalies.anomaly_info[label_key]
    info.severity = anomalies_pb2.AnomalyInfo.ERROR
    info.short_description = info.short_description or "Missing label classes"
    reason = info.reason.add()
    reason.type = anomalies_pb2.AnomalyInfo.UNKNOWN_TYPE
    reason.short_description = "Missing label classes"
    reason.description = (
        f"only {len(seen)} of the {num_classes} label classes present ({', '.join(sorted(map(str, seen))) or 'none'}); "
        f"every class must appear in every split"
    )
    info.description = "; ".join(r.description for r in info.reason)


def drift_baseline(artifacts) -> Optional[types.Artifact]:
    """The baseline statistics artifact when there is one with statistics in it, else None."""
    artifact = artifacts[0] if artifacts else None
    if artifact is None or not baseline.has_baseline(artifact):
        return None
    if not artifact_utils.decode_split_names(artifact.split_names):
        return None  # the baseline version recorded no statistics
    return artifact


class StrictExecutor(validator_executor.Executor):
    """Validates like ExampleValidator (plus drift against the baseline's training data), then
    raises DataAnomalyError naming every anomaly."""

    def Do(self, input_dict, output_dict, exec_properties):
        self._label_key = exec_properties.get(LABEL_KEY) or ""
        self._num_classes = int(exec_properties.get(NUM_CLASSES_KEY) or 0)
        exec_properties = {k: v for k, v in exec_properties.items() if k not in (LABEL_KEY, NUM_CLASSES_KEY)}
        self._found: List[Tuple[str, str]] = []
        self._baseline_stats: Dict[str, Any] = {}
        self._baseline = drift_baseline(input_dict.get(BASELINE_STATISTICS_KEY))
        described = baseline.describe(self._baseline) if self._baseline is not None else None
        if self._baseline is None:
            logging.info("ExampleValidator: no baseline statistics; drift is not checked on this run")
        else:
            logging.info("ExampleValidator: drift baseline is %s (%s)", self._baseline.uri, described)

        # Set before validating: the executor output copies the artifact.
        anomalies_artifact = artifact_utils.get_single_instance(output_dict[standard_component_specs.ANOMALIES_KEY])
        if self._baseline is not None:
            anomalies_artifact.set_string_custom_property(PROP_BASELINE_STATISTICS_URI, self._baseline.uri)
            anomalies_artifact.set_string_custom_property(PROP_BASELINE, described or "")
        inputs = {k: v for k, v in input_dict.items() if k != BASELINE_STATISTICS_KEY}
        result = super().Do(inputs, output_dict, exec_properties)
        if self._found:
            # (TFX deletes a failed execution's outputs, so the message itself must say it all.)
            message = "\n  ".join(line for _, line in self._found)
            against = ""
            if any("previous" in line for _, line in self._found) and self._baseline is not None:
                against = f"\n(drift is measured against the data the baseline {described or '?'} was trained on)"
            raise DataAnomalyError(
                f"data does not match the schema; the pipeline stops before training.\n  {message}{against}"
            )
        return result

    def _baseline_for(self, split: str):
        """The baseline's statistics for `split` (None when it has no such split, or drift is not
        measured on it)."""
        if self._baseline is None or split != DRIFT_SPLIT:
            return None
        if split not in self._baseline_stats:
            from tfx.components.statistics_gen import stats_artifact_utils

            names = artifact_utils.decode_split_names(self._baseline.split_names)
            self._baseline_stats[split] = (
                stats_artifact_utils.load_statistics(self._baseline, split).proto() if split in names else None
            )
        return self._baseline_stats[split]

    def _Validate(self, inputs, outputs):
        import tensorflow_data_validation as tfdv

        split_dir = str(outputs.get(labels.SCHEMA_DIFF_PATH, ""))
        split = split_dir.rstrip("/").rsplit("Split-", 1)[-1] if "Split-" in split_dir else "?"
        statistics = inputs[standard_component_specs.STATISTICS_KEY]
        anomalies = tfdv.validate_statistics(
            statistics=statistics,
            schema=inputs[standard_component_specs.SCHEMA_KEY],
            previous_statistics=self._baseline_for(split),
            custom_validation_config=inputs.get(standard_component_specs.CUSTOM_VALIDATION_CONFIG_KEY),
        )
        if self._label_key and self._num_classes > 1:
            add_missing_classes(anomalies, statistics, self._label_key, self._num_classes)
        writer_utils.write_anomalies(os.path.join(split_dir, validator_executor.DEFAULT_FILE_NAME), anomalies)
        for line in describe_anomalies(anomalies):
            self._found.append((split, f"[{split}] {line}"))
        return anomalies


class StrictExampleValidatorSpec(standard_component_specs.ExampleValidatorSpec):
    PARAMETERS = {
        **standard_component_specs.ExampleValidatorSpec.PARAMETERS,
        LABEL_KEY: ExecutionParameter(type=str, optional=True),
        NUM_CLASSES_KEY: ExecutionParameter(type=int, optional=True),
    }
    INPUTS = {
        **standard_component_specs.ExampleValidatorSpec.INPUTS,
        BASELINE_STATISTICS_KEY: ChannelParameter(type=standard_artifacts.ExampleStatistics, optional=True),
    }


class StrictExampleValidator(ExampleValidator):
    """ExampleValidator whose execution fails (and so stops the pipeline) on any anomaly, drift
    against the baseline model's training data included."""

    SPEC_CLASS = StrictExampleValidatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(StrictExecutor)

    def __init__(
        self,
        statistics: types.BaseChannel,
        schema: types.BaseChannel,
        exclude_splits: Optional[List[str]] = None,
        baseline_statistics: Optional[types.BaseChannel] = None,
        label_key: Optional[str] = None,
        num_classes: int = 0,
    ):
        spec = StrictExampleValidatorSpec(
            label_key=label_key,
            num_classes=num_classes,
            statistics=statistics,
            schema=schema,
            exclude_splits=json_utils.dumps(exclude_splits or []),
            baseline_statistics=baseline_statistics,
            anomalies=types.Channel(type=standard_artifacts.ExampleAnomalies),
        )
        base_component.BaseComponent.__init__(self, spec=spec)

"""ExampleValidator that stops the pipeline when the data has anomalies against the schema, or has
drifted too far from the last data this pipeline accepted.

Drift: features with a `drift_comparator` in the schema (census: the numeric columns, approximate
Jensen-Shannon divergence) are compared with the statistics of the *previous accepted span*, i.e.
the statistics that the latest successful (complete or cached) ExampleValidator execution of the
same pipeline validated. That baseline is looked up in the SQLite ML Metadata store named by the
`metadata_path` execution property; rejected data never becomes a baseline. Without a store (a
pipeline compiled for Kubeflow) or without an earlier accepted run (a task's first run) there is no
baseline and only the schema is checked; the log says so.
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
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import json_utils, writer_utils

from components import metadata

# Execution property: the SQLite ML Metadata file to find the previous accepted span in.
METADATA_PATH_KEY = "metadata_path"
# Custom properties on the ExampleAnomalies artifact naming the drift baseline (absent: none).
PROP_BASELINE_STATISTICS_ID = "drift_baseline_statistics_id"
PROP_BASELINE_STATISTICS_URI = "drift_baseline_statistics_uri"
PROP_BASELINE_RUN_ID = "drift_baseline_run_id"


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


def previous_accepted_statistics(
    metadata_path: Optional[str], pipeline: str, node_id: str, exclude_artifact_id: Optional[int] = None,
    before_ms: Optional[int] = None,
) -> Optional[Tuple[types.Artifact, Optional[str]]]:
    """(statistics artifact, run id) that the newest successful execution of this validator node
    (created before `before_ms`, if given) validated, or None (no store, no earlier accepted run, or
    its files are gone)."""
    if not metadata_path or not os.path.exists(metadata_path):
        return None
    from ml_metadata.proto import metadata_store_pb2

    store = metadata.open_store(metadata.sqlite_config(metadata_path, readonly=True))
    node_context = store.get_context_by_type_and_name(metadata.NODE_CONTEXT_TYPE, f"{pipeline}.{node_id}")
    if node_context is None:
        return None
    accepted = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)
    executions = [
        e for e in store.get_executions_by_context(node_context.id)
        if e.last_known_state in accepted and (before_ms is None or e.create_time_since_epoch < before_ms)
    ]
    executions.sort(key=lambda e: (e.create_time_since_epoch, e.id), reverse=True)
    for execution in executions:
        input_ids = [
            ev.artifact_id for ev in store.get_events_by_execution_ids([execution.id])
            if ev.type == metadata_store_pb2.Event.INPUT and ev.path.steps
            and ev.path.steps[0].key == standard_component_specs.STATISTICS_KEY
        ]
        if not input_ids or input_ids[0] == exclude_artifact_id:
            continue
        mlmd_artifact = store.get_artifacts_by_id(input_ids[:1])[0]
        if not os.path.isdir(mlmd_artifact.uri):
            logging.warning("drift baseline statistics %s are gone; trying an older run", mlmd_artifact.uri)
            continue
        artifact_type = store.get_artifact_types_by_id([mlmd_artifact.type_id])[0]
        artifact = artifact_utils.deserialize_artifact(artifact_type, mlmd_artifact)
        run_id = next(
            (c.name for c in store.get_contexts_by_execution(execution.id) if c.type == metadata.RUN_CONTEXT_TYPE), None
        )
        return artifact, run_id
    return None


class StrictExecutor(validator_executor.Executor):
    """Validates like ExampleValidator (plus drift against the previous accepted span), then raises
    DataAnomalyError naming every anomaly."""

    def Do(self, input_dict, output_dict, exec_properties):
        self._found: List[Tuple[str, str]] = []
        self._baseline: Optional[types.Artifact] = None
        self._baseline_stats: Dict[str, Any] = {}
        baseline_run = None
        statistics = artifact_utils.get_single_instance(input_dict[standard_component_specs.STATISTICS_KEY])
        context = self._context
        if context is not None and context.pipeline_info is not None and context.pipeline_node is not None:
            found = previous_accepted_statistics(
                exec_properties.get(METADATA_PATH_KEY),
                context.pipeline_info.id,
                context.pipeline_node.node_info.id,
                exclude_artifact_id=statistics.id or None,
            )
            if found:
                self._baseline, baseline_run = found
        if self._baseline is None:
            logging.info("ExampleValidator: no previous accepted span; drift is not checked on this run")
        else:
            logging.info("ExampleValidator: drift baseline is %s (run %s)", self._baseline.uri, baseline_run)

        # Set before validating: the executor output copies the artifact.
        anomalies_artifact = artifact_utils.get_single_instance(output_dict[standard_component_specs.ANOMALIES_KEY])
        if self._baseline is not None:
            anomalies_artifact.set_int_custom_property(PROP_BASELINE_STATISTICS_ID, self._baseline.id)
            anomalies_artifact.set_string_custom_property(PROP_BASELINE_STATISTICS_URI, self._baseline.uri)
            anomalies_artifact.set_string_custom_property(PROP_BASELINE_RUN_ID, baseline_run or "")
        result = super().Do(input_dict, output_dict, exec_properties)
        if self._found:
            # (TFX deletes a failed execution's outputs, so the message itself must say it all.)
            message = "\n  ".join(line for _, line in self._found)
            against = ""
            if any("previous" in line for _, line in self._found) and self._baseline is not None:
                against = f"\n(drift is measured against the data accepted in run {baseline_run or '?'})"
            raise DataAnomalyError(
                f"data does not match the schema; the pipeline stops before training.\n  {message}{against}"
            )
        return result

    def _baseline_for(self, split: str):
        """The baseline's statistics for `split` (None when it has no such split)."""
        if self._baseline is None:
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
        anomalies = tfdv.validate_statistics(
            statistics=inputs[standard_component_specs.STATISTICS_KEY],
            schema=inputs[standard_component_specs.SCHEMA_KEY],
            previous_statistics=self._baseline_for(split),
            custom_validation_config=inputs.get(standard_component_specs.CUSTOM_VALIDATION_CONFIG_KEY),
        )
        writer_utils.write_anomalies(os.path.join(split_dir, validator_executor.DEFAULT_FILE_NAME), anomalies)
        for line in describe_anomalies(anomalies):
            self._found.append((split, f"[{split}] {line}"))
        return anomalies


class StrictExampleValidatorSpec(standard_component_specs.ExampleValidatorSpec):
    PARAMETERS = {
        **standard_component_specs.ExampleValidatorSpec.PARAMETERS,
        METADATA_PATH_KEY: ExecutionParameter(type=str, optional=True),
    }


class StrictExampleValidator(ExampleValidator):
    """ExampleValidator whose execution fails (and so stops the pipeline) on any anomaly, drift
    against the previous accepted span included."""

    SPEC_CLASS = StrictExampleValidatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(StrictExecutor)

    def __init__(
        self,
        statistics: types.BaseChannel,
        schema: types.BaseChannel,
        exclude_splits: Optional[List[str]] = None,
        metadata_connection_config=None,
    ):
        spec = StrictExampleValidatorSpec(
            statistics=statistics,
            schema=schema,
            exclude_splits=json_utils.dumps(exclude_splits or []),
            metadata_path=metadata.sqlite_file(metadata_connection_config),
            anomalies=types.Channel(type=standard_artifacts.ExampleAnomalies),
        )
        base_component.BaseComponent.__init__(self, spec=spec)

"""Registrar: register a blessed and pushed model in the MLflow Model Registry, with its lineage.

Runs after the Pusher. A model the Evaluator did not bless (or the Pusher did not push) is not
registered; the output artifact says why. A registered version is named after the task and carries
tags naming everything it came from (see `registration_tags`).
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, Mapping, Optional

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils

from components import data_version as dv
from components import evaluation, metadata
from components.evaluator import PROP_BASELINE
from components import registry as reg

# Custom properties of the RegisteredModel artifact.
PROP_REGISTERED = "registered"
PROP_MODEL_NAME = "model_name"
PROP_MODEL_VERSION = "model_version"
PROP_REASON = "reason"

# Per-slice metrics tag: keep it well inside a registry tag value (100,000 characters).
_MAX_SLICE_METRICS_CHARS = 60_000


class RegisteredModel(types.Artifact):
    """The outcome of a Registrar execution: which registry version (if any) the model became."""

    # <namespace>.<Title>: the form Kubeflow Pipelines v2 requires of custom artifact types.
    TYPE_NAME = "mlops.RegisteredModel"


class RegistrarSpec(types.ComponentSpec):
    PARAMETERS = {
        "task": ExecutionParameter(type=str),
        # Registry (MLflow tracking) URI; MLFLOW_TRACKING_URI at run time takes precedence.
        "registry_uri": ExecutionParameter(type=str, optional=True),
        # JSON {"commit": ..., "dirty": ...} of the code, computed where the pipeline was built.
        "code_version": ExecutionParameter(type=str, optional=True),
        # SQLite ML Metadata file, to look up the executions that produced the inputs.
        "metadata_path": ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "model_blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
        "evaluation": ChannelParameter(type=standard_artifacts.ModelEvaluation),
        "pushed_model": ChannelParameter(type=standard_artifacts.PushedModel),
        "examples": ChannelParameter(type=standard_artifacts.Examples, optional=True),
        "hyperparameters": ChannelParameter(type=standard_artifacts.HyperParameters, optional=True),
        # StatisticsGen's output: the drift baseline of later runs that compare against this version.
        "statistics": ChannelParameter(type=standard_artifacts.ExampleStatistics, optional=True),
    }
    OUTPUTS = {
        "registered_model": ChannelParameter(type=RegisteredModel),
    }


def _single(input_dict, key) -> Optional[types.Artifact]:
    artifacts = input_dict.get(key) or []
    return artifact_utils.get_single_instance(list(artifacts)) if artifacts else None


def _int_property(artifact, name: str) -> Optional[int]:
    if artifact is None or not artifact.has_custom_property(name):
        return None
    return artifact.get_int_custom_property(name)


def _str_property(artifact, name: str) -> Optional[str]:
    if artifact is None or not artifact.has_custom_property(name):
        return None
    return artifact.get_string_custom_property(name)


def read_hyperparameters(artifact) -> Dict[str, Any]:
    """The Tuner's best hyperparameter values ({} without a Tuner)."""
    if artifact is None:
        return {}
    path = io_utils.get_only_uri_in_dir(artifact.uri)
    config = json.loads(io_utils.read_string_file(path))
    return dict(config.get("values", config))


def producing_executions(metadata_path: Optional[str], artifacts: Mapping[str, Any]) -> Dict[str, int]:
    """role -> id of the execution that produced the artifact, read from the SQLite store the
    pipeline runs on ({} without one)."""
    if not metadata_path or not os.path.exists(metadata_path):
        return {}
    return metadata.producing_executions(metadata.open_store(metadata.sqlite_config(metadata_path, readonly=True)),
                                         artifacts)


def _number(value: float) -> str:
    return f"{value:.6g}"


def slice_metrics_tag(slices) -> str:
    """JSON {slice: {metric: value}} of the candidate's scalar metrics, Overall first (NaN -> null)."""
    table = {
        s.slice: {k: float(_number(v)) if math.isfinite(v) else None for k, v in sorted(s.candidate.items())}
        for s in slices
    }
    ordered = dict(sorted(table.items(), key=lambda kv: (kv[0] != "Overall", kv[0])))
    text = json.dumps(ordered, separators=(",", ":"))
    while len(text) > _MAX_SLICE_METRICS_CHARS and len(ordered) > 1:
        ordered.popitem()
        ordered["_truncated"] = True
        text = json.dumps(ordered, separators=(",", ":"))
    return text


def registration_tags(
    *,
    task: str,
    pipeline: str,
    pipeline_run_id: Optional[str],
    executions: Mapping[str, int],
    model,
    code: Mapping[str, Any],
    examples,
    hyperparameters: Mapping[str, Any],
    overall: Mapping[str, float],
    slices_json: str,
    pushed_path: str,
    metadata_path: Optional[str],
    extra: Optional[Mapping[str, str]] = None,
) -> Dict[str, str]:
    """Every tag a registered version carries (all values are strings, as MLflow stores them)."""
    dirty = code.get("dirty")
    data_dirty = _int_property(examples, dv.PROP_DATA_DIRTY)
    tags = {
        reg.TAG_BLESSED: "true",
        reg.TAG_TASK: task,
        reg.TAG_PIPELINE: pipeline,
        reg.TAG_PIPELINE_RUN_ID: pipeline_run_id or "unknown",
        reg.TAG_GIT_COMMIT: str(code.get("commit") or "unknown"),
        reg.TAG_GIT_DIRTY: "unknown" if dirty is None else str(bool(dirty)).lower(),
        reg.TAG_DATA_MD5: _str_property(examples, dv.PROP_DATA_MD5) or "unknown",
        reg.TAG_DATA_DIRTY: "unknown" if data_dirty is None else str(bool(data_dirty)).lower(),
        reg.TAG_HYPERPARAMETERS: json.dumps(dict(hyperparameters), sort_keys=True),
        reg.TAG_SLICE_METRICS: slices_json,
        reg.TAG_PUSHED_PATH: pushed_path,
        reg.TAG_MODEL_URI: model.uri,
    }
    for role in ("trainer", "evaluator", "pusher"):
        tags[reg.MLMD_EXECUTION_TAG.format(role)] = str(executions.get(role, "unknown"))
    if model.id:
        tags[reg.MLMD_ARTIFACT_TAG.format("model")] = str(model.id)
    if metadata_path:
        tags[reg.TAG_MLMD_STORE] = metadata_path
    for name, value in sorted(overall.items()):
        tags[reg.METRIC_TAG_PREFIX + name] = _number(value)
    tags.update(extra or {})
    return tags


def not_registered_reason(blessing, pushed, evaluation_uri: Optional[str]) -> Optional[str]:
    """Why this model must not be registered, or None when it is blessed and pushed."""
    if not _int_property(blessing, "blessed"):
        reason = "the Evaluator did not bless the model"
        if evaluation_uri:
            try:
                _, failures = evaluation.validation_failures(evaluation_uri)
            except Exception:  # an unreadable validation result must not hide the real reason
                failures = []
            if failures:
                reason += " (" + "; ".join(failures) + ")"
        return reason
    if not _int_property(pushed, "pushed") or not _str_property(pushed, "pushed_destination"):
        return "the Pusher did not push the model"
    return None


class Executor(base_executor.BaseExecutor):
    """Registers a blessed, pushed model as a new version of the task's registered model."""

    def Do(self, input_dict, output_dict, exec_properties):
        output = artifact_utils.get_single_instance(output_dict["registered_model"])
        task = exec_properties["task"]
        output.set_string_custom_property(PROP_MODEL_NAME, task)

        model = _single(input_dict, "model")
        blessing = _single(input_dict, "model_blessing")
        evaluation_artifact = _single(input_dict, "evaluation")
        pushed = _single(input_dict, "pushed_model")
        reason = not_registered_reason(blessing, pushed, evaluation_artifact.uri if evaluation_artifact else None)
        if reason is None and not (os.environ.get("MLFLOW_TRACKING_URI") or exec_properties.get("registry_uri")):
            reason = "no model registry configured (set MLFLOW_TRACKING_URI)"
        if reason is not None:
            output.set_int_custom_property(PROP_REGISTERED, 0)
            output.set_string_custom_property(PROP_MODEL_VERSION, "")
            output.set_string_custom_property(PROP_REASON, reason)
            return

        version = self._register(task, model, evaluation_artifact, pushed, input_dict, exec_properties)
        output.set_int_custom_property(PROP_REGISTERED, 1)
        output.set_string_custom_property(PROP_MODEL_VERSION, str(version.version))
        output.set_string_custom_property(PROP_REASON, "")

    def _register(self, task, model, evaluation_artifact, pushed, input_dict, exec_properties):
        context = self._context
        pipeline = context.pipeline_info.id
        run_id = context.pipeline_run_id if context else None
        metadata_path = exec_properties.get("metadata_path") or None
        examples = _single(input_dict, "examples")
        hyperparameters = read_hyperparameters(_single(input_dict, "hyperparameters"))
        slices = evaluation.load_slice_metrics(evaluation_artifact.uri)
        overall = next((s.candidate for s in slices if s.slice == "Overall"), {})
        blessing = _single(input_dict, "model_blessing")
        executions = producing_executions(
            metadata_path, {"trainer": model, "evaluator": blessing, "pusher": pushed}
        )
        code = json.loads(exec_properties.get("code_version") or "{}")
        pushed_path = pushed.get_string_custom_property("pushed_destination")
        extra = {reg.TAG_BASELINE: _str_property(blessing, PROP_BASELINE) or "none"}
        statistics = _single(input_dict, "statistics")
        if statistics is not None:
            extra[reg.TAG_STATISTICS_URI] = statistics.uri
        tags = registration_tags(
            task=task,
            pipeline=pipeline,
            pipeline_run_id=run_id,
            executions=executions,
            model=model,
            code=code,
            examples=examples,
            hyperparameters=hyperparameters,
            overall=overall,
            slices_json=slice_metrics_tag(slices),
            pushed_path=pushed_path,
            metadata_path=metadata_path,
            extra=extra,
        )
        registry = reg.Registry(reg.resolve_uri(configured=exec_properties.get("registry_uri")))
        return registry.register(
            task,
            pushed_path,
            tags,
            experiment=pipeline,
            run_name=f"{task} {run_id}" if run_id else task,
            params=hyperparameters,
            metrics=overall,
            record={"tags": tags, "slice_metrics": json.loads(tags[reg.TAG_SLICE_METRICS])},
            description=f"Blessed {task} model from pipeline run {run_id or 'unknown'}, served from {pushed_path}",
        )


class Registrar(base_component.BaseComponent):
    """Registers blessed, pushed models in the MLflow Model Registry (see module docstring)."""

    SPEC_CLASS = RegistrarSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self,
        *,
        task: str,
        model: types.BaseChannel,
        model_blessing: types.BaseChannel,
        evaluation: types.BaseChannel,
        pushed_model: types.BaseChannel,
        examples: Optional[types.BaseChannel] = None,
        hyperparameters: Optional[types.BaseChannel] = None,
        statistics: Optional[types.BaseChannel] = None,
        registry_uri: Optional[str] = None,
        code_version: Optional[Mapping[str, Any]] = None,
        metadata_connection_config=None,
    ):
        spec = RegistrarSpec(
            task=task,
            registry_uri=registry_uri,
            code_version=json.dumps(dict(code_version)) if code_version else None,
            metadata_path=metadata.sqlite_file(metadata_connection_config),
            model=model,
            model_blessing=model_blessing,
            evaluation=evaluation,
            pushed_model=pushed_model,
            examples=examples,
            hyperparameters=hyperparameters,
            statistics=statistics,
            registered_model=types.Channel(type=RegisteredModel),
        )
        super().__init__(spec=spec)

"""Registrar: register a blessed and pushed model in the MLflow Model Registry, with its lineage.

Runs after the Pusher. A model the Evaluator or the InfraValidator did not bless (or the Pusher did
not push) is not registered; the output artifact says why. A registered version is named after the
task and carries tags naming everything it came from (see `registration_tags`), including
`infra_blessed=true` and the infra-validation latencies, and a model card (components.model_card:
artifacts model_card.md / model_card.html of the version's MLflow run, copies in the output artifact).
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
from components import evaluation, metadata, model_card
from components import infra_validator as infra
from components.evaluator import PROP_BASELINE
from components import registry as reg
from components.digest import saved_model_digest

# Custom properties of the RegisteredModel artifact.
PROP_REGISTERED = "registered"
PROP_MODEL_NAME = "model_name"
PROP_MODEL_VERSION = "model_version"
PROP_REASON = "reason"
# 1 when the model was already registered (a rerun whose Trainer came from cache): no new version.
PROP_UNCHANGED = "unchanged"
# Where the version's model card is: runs:/<mlflow run>/model_card.md ("" when not registered).
PROP_MODEL_CARD = "model_card"

# Per-slice metrics tag: keep it well inside a registry tag value (100,000 characters).
_MAX_SLICE_METRICS_CHARS = 60_000


class RegisteredModel(types.Artifact):
    """The outcome of a Registrar execution: which registry version (if any) the model became."""

    # On Kubeflow, TFX's step entrypoint imports an output's type by its schema title, and TFX's
    # compiler accepts only `<namespace>.<Title>`: components/__init__.py makes this title importable.
    TYPE_NAME = "components.RegisteredModel"


class RegistrarSpec(types.ComponentSpec):
    PARAMETERS = {
        "task": ExecutionParameter(type=str),
        # The pipeline's name and run id. Locally they also come from the executor context; TFX's
        # Kubeflow entrypoint gives the executor no pipeline info, so the compiled step gets the
        # name as a constant and the run id as KFP's `{{$.pipeline_job_uuid}}` placeholder.
        "pipeline_name": ExecutionParameter(type=str, optional=True),
        "run_id": ExecutionParameter(type=str, optional=True),
        # Registry (MLflow tracking) URI; MLFLOW_TRACKING_URI at run time takes precedence.
        "registry_uri": ExecutionParameter(type=str, optional=True),
        # JSON {"commit": ..., "dirty": ...} of the code, computed where the pipeline was built.
        "code_version": ExecutionParameter(type=str, optional=True),
        # SQLite ML Metadata file, to look up the executions that produced the inputs.
        "metadata_path": ExecutionParameter(type=str, optional=True),
        # The task's TaskConfig.intended_use / limitations, for the model card.
        "intended_use": ExecutionParameter(type=str, optional=True),
        "limitations": ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "model_blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
        # The InfraValidator's verdict (components.infra_validator); absent in pipelines without one.
        "infra_blessing": ChannelParameter(type=standard_artifacts.InfraBlessing, optional=True),
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
        tags[reg.METRIC_TAG_PREFIX + name] = _number(value) if math.isfinite(value) else "n/a"
    tags.update(extra or {})
    return tags


def infra_tags(infra_blessing) -> Dict[str, str]:
    """infra_blessed and infra_validation (JSON of the latencies in ms) of an InfraBlessing ({}
    without one: the pipeline had no InfraValidator)."""
    if infra_blessing is None:
        return {}
    latencies = {f"{key}_ms": value for key, value in infra.latencies(infra_blessing).items()}
    return {
        reg.TAG_INFRA_BLESSED: "true" if _int_property(infra_blessing, infra.PROP_BLESSED) == 1 else "false",
        reg.TAG_INFRA_VALIDATION: json.dumps(latencies, sort_keys=True),
    }


def read_training_info(model) -> Optional[Dict[str, Any]]:
    """The Trainer's training_info.json (seed, steps, ...); None for a model exported before it existed."""
    from models.common.training_info import read_training_info as read

    try:
        return read(model.uri)
    except FileNotFoundError:
        return None


def not_registered_reason(blessing, pushed, evaluation_uri: Optional[str], infra_blessing=None) -> Optional[str]:
    """Why this model must not be registered, or None when it is blessed (by the Evaluator and, when
    the pipeline has one, the InfraValidator) and pushed."""
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
    if infra_blessing is not None and _int_property(infra_blessing, infra.PROP_BLESSED) != 1:
        why = _str_property(infra_blessing, infra.PROP_REASON)
        return "the InfraValidator did not bless the model" + (f" ({why})" if why else "")
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
        reason = not_registered_reason(blessing, pushed, evaluation_artifact.uri if evaluation_artifact else None,
                                       _single(input_dict, "infra_blessing"))
        if reason is None and not (os.environ.get("MLFLOW_TRACKING_URI") or exec_properties.get("registry_uri")):
            reason = "no model registry configured (set MLFLOW_TRACKING_URI)"
        if reason is not None:
            output.set_int_custom_property(PROP_REGISTERED, 0)
            output.set_string_custom_property(PROP_MODEL_VERSION, "")
            output.set_string_custom_property(PROP_REASON, reason)
            output.set_string_custom_property(PROP_MODEL_CARD, "")
            return

        registry = reg.Registry(reg.resolve_uri(configured=exec_properties.get("registry_uri")))
        existing = registry.find_by_pushed_path(task, pushed.get_string_custom_property("pushed_destination"))
        if existing is not None:
            # The Pusher found this very model already pushed (a rerun with the Trainer from cache):
            # it is that version, not a new one.
            output.set_int_custom_property(PROP_REGISTERED, 1)
            output.set_int_custom_property(PROP_UNCHANGED, 1)
            output.set_string_custom_property(PROP_MODEL_VERSION, str(existing.version))
            output.set_string_custom_property(PROP_REASON, f"model unchanged: {task} v{existing.version}")
            output.set_string_custom_property(PROP_MODEL_CARD, "")
            return
        version = self._register(registry, task, model, evaluation_artifact, pushed, input_dict, exec_properties,
                                 output)
        output.set_int_custom_property(PROP_REGISTERED, 1)
        output.set_int_custom_property(PROP_UNCHANGED, 0)
        output.set_string_custom_property(PROP_MODEL_VERSION, str(version.version))
        output.set_string_custom_property(PROP_REASON, "")

    def _register(self, registry, task, model, evaluation_artifact, pushed, input_dict, exec_properties, output):
        context = self._context
        pipeline = exec_properties.get("pipeline_name") or (
            context.pipeline_info.id if context and context.pipeline_info else f"task {task}")
        run_id = exec_properties.get("run_id") or (context.pipeline_run_id if context else None)
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
        infra_blessing = _single(input_dict, "infra_blessing")
        extra.update(infra_tags(infra_blessing))
        # What `mlops registry promote` checks the pushed files against (components.registry.evidence).
        extra[reg.TAG_MODEL_DIGEST] = saved_model_digest(pushed_path)
        training_info = read_training_info(model)
        if training_info is not None:
            extra[reg.TAG_SEED] = str(training_info.get("seed", "unknown"))
            extra[reg.TAG_DETERMINISTIC] = str(bool(training_info.get("deterministic"))).lower()
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
        # Everything the card shows is read before anything is registered: a lineage that cannot be
        # read stops the step before the registry changes.
        card = dict(
            task=task, pipeline=pipeline, pipeline_run_id=run_id,
            intended_use=exec_properties.get("intended_use") or "", limitations=exec_properties.get("limitations") or "",
            tags=tags, hyperparameters=hyperparameters, training_info=training_info,
            baseline=_str_property(blessing, PROP_BASELINE), slices=slices,
            thresholds=evaluation.load_thresholds(evaluation_artifact.uri),
            infra=None if infra_blessing is None else {
                "blessed": _int_property(infra_blessing, infra.PROP_BLESSED) == 1,
                "reason": _str_property(infra_blessing, infra.PROP_REASON),
                "latency_ms": infra.latencies(infra_blessing)},
        )
        version = registry.register(
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
        output.set_string_custom_property(PROP_MODEL_CARD, self._store_card(registry, version, card, output.uri))
        return version

    @staticmethod
    def _store_card(registry, version, card: Dict[str, Any], output_uri: str) -> str:
        """Render the version's model card and store it with the version (its MLflow run's artifacts)
        and in the output artifact; returns runs:/<run>/model_card.md."""
        markdown, html = model_card.render(model_card.card_context(version=version.version, **card))
        for name, text in ((model_card.MARKDOWN_FILE, markdown), (model_card.HTML_FILE, html)):
            io_utils.write_string_file(os.path.join(output_uri, name), text)
            if version.run_id:
                registry.client.log_text(version.run_id, text, name)
        return f"runs:/{version.run_id}/{model_card.MARKDOWN_FILE}" if version.run_id else ""


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
        infra_blessing: Optional[types.BaseChannel] = None,
        registry_uri: Optional[str] = None,
        code_version: Optional[Mapping[str, Any]] = None,
        metadata_connection_config=None,
        intended_use: str = "",
        limitations: str = "",
        pipeline_name: Optional[str] = None,
        run_id: Optional[str] = None,
    ):
        spec = RegistrarSpec(
            task=task,
            pipeline_name=pipeline_name,
            run_id=run_id,
            registry_uri=registry_uri,
            code_version=json.dumps(dict(code_version)) if code_version else None,
            metadata_path=metadata.sqlite_file(metadata_connection_config),
            intended_use=intended_use or None,
            limitations=limitations or None,
            model=model,
            model_blessing=model_blessing,
            infra_blessing=infra_blessing,
            evaluation=evaluation,
            pushed_model=pushed_model,
            examples=examples,
            hyperparameters=hyperparameters,
            statistics=statistics,
            registered_model=types.Channel(type=RegisteredModel),
        )
        super().__init__(spec=spec)

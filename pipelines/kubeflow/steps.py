"""What a compiled package needs to run on the open-source Kubeflow Pipelines backend.

`use_project_entrypoint` points every TFX step at `components.kfp_entrypoint` (which repairs the
executor input that backend sends; see that module). `preflight` refuses, in one line, what that
backend would refuse when the run is created, and packages compiled by another version of mlops.
The quoted errors are the backend's own (kubeflow/pipelines 2.17.0: backend/src/apiserver/template/
v2_template.go, backend/src/v2/compiler/visitor.go and argocompiler/dag.go).
"""
from __future__ import annotations

import copy
import re
from typing import Any, Dict, Iterator, Mapping, Tuple

from pipelines.kubeflow import KubeflowError

# The contract between `mlops compile` and the step entrypoint; bump it when either changes so an
# old package is refused instead of run with a mismatched entrypoint.
PACKAGE_FORMAT = "mlops-kfp-1"

TFX_ENTRYPOINT = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
PROJECT_ENTRYPOINT = "components.kfp_entrypoint"
_PYTHONS = ("python", "python3")

SCHEMA_VERSION = "2.1.0"
# DNS-1123-like, unanchored exactly as the backend matches it.
_NAME_PATTERN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _entrypoint_module(command) -> str:
    if isinstance(command, list) and len(command) == 3 and command[0] in _PYTHONS and command[1] == "-m":
        return command[2]
    return ""


def use_project_entrypoint(pipeline_spec: Dict[str, Any]) -> Dict[str, Any]:
    """A copy of the spec whose container executors run `python -m components.kfp_entrypoint`
    instead of TFX's entrypoint, with the same args. Other commands (e.g. the ExampleGen driver of
    `lifecycle.preCacheCheck`, which the open-source backend never runs) are left alone."""
    spec = copy.deepcopy(pipeline_spec)
    for executor in spec.get("deploymentSpec", {}).get("executors", {}).values():
        container = executor.get("container")
        if container and _entrypoint_module(container.get("command")) == TFX_ENTRYPOINT:
            container["command"] = [container["command"][0], "-m", PROJECT_ENTRYPOINT]
    return spec


def use_stock_entrypoint(pipeline_spec: Dict[str, Any], tasks=None) -> Dict[str, Any]:
    """The inverse of `use_project_entrypoint` (for `tasks`, default all): TFX's own entrypoint."""
    spec = copy.deepcopy(pipeline_spec)
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    for name, _, component, _ in _tasks(spec):
        if tasks is not None and name not in tasks:
            continue
        container = executors.get(component.get("executorLabel", ""), {}).get("container")
        if container and _entrypoint_module(container.get("command")) == PROJECT_ENTRYPOINT:
            container["command"] = [container["command"][0], "-m", TFX_ENTRYPOINT]
    return spec


def _tasks(spec: Mapping[str, Any]) -> Iterator[Tuple[str, Dict[str, Any], Dict[str, Any], Dict[str, Any]]]:
    """(task name, task, component, tasks of its DAG) of every task in the root DAG and nested DAGs."""
    components = spec.get("components", {})
    pending = [spec.get("root") or {}]
    seen = set()
    while pending:
        dag = (pending.pop().get("dag") or {}).get("tasks", {})
        for name in sorted(dag):
            task = dag[name]
            ref = task.get("componentRef", {}).get("name", "")
            if ref not in components:
                raise KubeflowError(
                    f"step {name}: component {ref!r} is not in the package; the backend refuses it at run "
                    f"creation: \"cannot find component ref name={ref!r}\""
                )
            yield name, task, components[ref], dag
            if "dag" in components[ref] and ref not in seen:
                seen.add(ref)
                pending.append(components[ref])


def _refuse(step: str, construct: str, backend_text: str) -> KubeflowError:
    return KubeflowError(
        f"step {step}: {construct}; the open-source KFP backend refuses the run at creation: \"{backend_text}\""
    )


def preflight(pipeline_spec: Mapping[str, Any], platform_spec: Mapping[str, Any] | None = None) -> None:
    """Raise KubeflowError (one line) for a package this project version did not compile (its
    sdkVersion is not PACKAGE_FORMAT + "+..."), or for what the open-source KFP backend refuses when
    the package is uploaded or a run is created."""
    version = pipeline_spec.get("sdkVersion", "")
    if not str(version).startswith(PACKAGE_FORMAT + "+"):
        raise KubeflowError(
            f"compiled by another version of mlops (sdkVersion {version!r}, this version writes "
            f"{PACKAGE_FORMAT}+...): recompile with `mlops compile`"
        )
    schema = pipeline_spec.get("schemaVersion", "")
    if schema != SCHEMA_VERSION:
        raise KubeflowError(
            f"pipeline spec schema {schema!r}: the open-source KFP backend refuses the package: "
            f"\"KFP only supports schema version {SCHEMA_VERSION}, but the pipeline spec has version {schema}\""
        )
    name = pipeline_spec.get("pipelineInfo", {}).get("name", "")
    if not name:
        raise KubeflowError("pipeline spec without pipelineInfo.name: \"invalid v2 pipeline spec: name is empty\"")
    if not _NAME_PATTERN.search(name):
        raise KubeflowError(
            f"pipeline name {name!r}: \"invalid v2 pipeline spec: name should consist of lower case alphanumeric "
            "characters, '-' or '.', and must start and end with an alphanumeric character\""
        )
    if not pipeline_spec.get("root"):
        raise KubeflowError("pipeline spec without root: \"invalid v2 pipeline spec: root component is empty\"")
    _check_protos(pipeline_spec, platform_spec)

    executors = pipeline_spec.get("deploymentSpec", {}).get("executors", {})
    for step, task, component, siblings in _tasks(pipeline_spec):
        label = component.get("executorLabel")
        if label:
            executor = executors.get(label)
            if executor is None:
                raise _refuse(step, f"executor {label!r} is missing",
                              f"executor(label=\"{label}\") not found in deployment config")
            kind = next(iter(executor), "")
            if kind not in ("container", "importer"):
                construct = {"resolver": "a resolver executor (TFX Resolver node)",
                             "customJob": "a custom job executor"}.get(kind, f"a {kind!r} executor")
                raise _refuse(step, construct,
                              f"executor(label=\"{label}\"): non-container and non-importer executor not implemented")
            if kind == "importer" and task.get("triggerPolicy", {}).get("condition"):
                raise _refuse(step, "an importer with a trigger condition",
                              "triggerPolicy.condition on importer task is not supported")
        elif "dag" not in component:
            raise _refuse(step, "a component with neither executor nor DAG", "unknown component implementation")
        if "artifactIterator" in task:
            raise _refuse(step, "an artifact iterator", "artifact iterator not implemented yet")
        for producer in _producers(task):
            if producer not in siblings:
                raise _refuse(step, f"an input from unknown task {producer!r}",
                              f"unknown producer task \"{producer}\" in DAG")


def _producers(task: Mapping[str, Any]):
    inputs = task.get("inputs", {})
    for spec in inputs.get("parameters", {}).values():
        if "taskOutputParameter" in spec:
            yield spec["taskOutputParameter"].get("producerTask", "")
    for spec in inputs.get("artifacts", {}).values():
        if "taskOutputArtifact" in spec:
            yield spec["taskOutputArtifact"].get("producerTask", "")



def _check_protos(pipeline_spec, platform_spec) -> None:
    """Both documents parse as the backend parses them (protojson, unknown fields refused)."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    for document, message, text in ((pipeline_spec, pipeline_spec_pb2.PipelineSpec(), "invalid v2 pipeline spec"),
                                    (platform_spec, pipeline_spec_pb2.PlatformSpec(),
                                     "cannot unmarshal platform specific configs")):
        if not document:
            continue
        try:
            json_format.ParseDict(document, message)
        except json_format.ParseError as exc:
            raise KubeflowError(f"the package does not parse: \"{text}: {str(exc).splitlines()[0]}\"") from None

"""Run a compiled package on this machine the way the open-source Kubeflow Pipelines backend would.

`dry_run` takes the package `mlops compile` writes, checks it with `steps.preflight` and runs every
task of the root DAG in dependency order, each as a subprocess: the step's container `command` +
`args` (`python` is this interpreter), `{{$}}` replaced by the executor input the backend's driver and
launcher build, the container `env` of the spec and nothing from this shell (a pod only has what the
spec gives it, plus what the image sets: here PATH, a fresh HOME, PYTHONPATH = the project root).

What is emulated, after kubeflow/pipelines 2.17.0 (backend/src/v2):
- Root parameters: the root's defaults, then `parameters` (runtimeConfig.parameterValues), checked as
  the API server checks them (apiserver/template/v2_template.go validatePipelineJobInputs).
- Inputs (driver/resolve.go resolveInputs): `runtimeValue.constant` (with the `{{$.pipeline_job_*}}`
  and `{{$.pipeline_task_*}}` constants), `componentInputParameter`, `taskOutputParameter`, and
  `taskOutputArtifact` as the launcher recorded it: named by its numeric ML Metadata id, the
  recorded uri and metadata, type `{instanceSchema: ""}`. Parameters are checked and converted
  against the component's input definitions; component defaults are added to `{{$}}`
  (component/launcher_v2.go addDefaultParams).
- Trigger conditions: `triggerPolicy.condition`, a CEL expression over the executor input, is
  evaluated for the subset KFP and TFX write (comparisons, &&, ||, !, int()/double()/string()/bool(),
  parseJson(), field and index access); a task whose condition is false is skipped, and so is
  everything downstream of it (Argo's `depends: X.Succeeded`).
- Outputs (driver/driver.go provisionOutputs): every declared output plus `executor-logs`
  (`schemaTitle: system.Artifact`, the launcher appends the retry index: `executor-logs-0`), at
  `<root>/<pipeline name>/<run id>/<task>/<uuid>/<output>`, and `outputFile`
  `<that task dir>/output_metadata.json` (where the launcher puts it for an object-store root).
  Output parameters go to files under the run's scratch directory instead of the pod's
  `/tmp/kfp/outputs/<name>`.
- Recording (component/launcher_v2.go uploadOutputArtifacts, metadata/converter.go): the step's
  output metadata file is merged into the declared outputs (first artifact: uri, metadata), the
  metadata converted as ML Metadata stores it (bool -> int, list -> {"list": ...}, struct ->
  {"struct": ...}, null refused), `display_name` and `store_session_info` added, and converted back
  the way the next step's driver reads it (int -> number). The logs (stdout, then stderr) are
  written to the `executor-logs` artifact.

What is NOT emulated: scheduling (tasks run one at a time; Argo runs independent ones in parallel),
pods (image, resources, GPUs, the Kubernetes platform spec and pod spec patches, service accounts),
the object store (inputs are not downloaded to /s3/... or /gcs/..., so neither a listing of the
root nor directory markers can make a download fail, kubeflow/pipelines#13476; outputs are not
uploaded), caching (every step runs), retries, exit handlers and iterators, the root DAG driver's
pipeline-root and kfp-launcher ConfigMap lookup (the root given here is used), ML Metadata itself
(ids are a counter), and the Argo layer (workflow compilation beyond `steps.preflight`).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Union

from pipelines.kubeflow import KubeflowError, steps
from pipelines.kubeflow.backend_semantics import (
    Record, StepError, check_parameter_types, evaluate_condition, from_mlmd, root_parameters, text_to_value, to_mlmd,
    value_text,
)

SUCCEEDED, FAILED, SKIPPED = "succeeded", "failed", "skipped"
EXECUTOR_LOGS = "executor-logs"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The launcher records this for the run's bucket (objectstore.SessionInfo); a local root has none.
STORE_SESSION_INFO = json.dumps({"Provider": "", "Params": None}, separators=(",", ":"))


@dataclass
class Artifact:
    """An output artifact as the launcher recorded it."""

    uri: str
    metadata: Dict[str, Any]  # as the step wrote it (merged into the declared output)
    id: int  # its ML Metadata id: the name the next step sees
    recorded: Dict[str, Any]  # the metadata as the next step receives it


@dataclass
class TaskResult:
    name: str
    state: str = ""
    seconds: float = 0.0
    artifacts: Dict[str, Artifact] = field(default_factory=dict)
    parameters: Dict[str, Any] = field(default_factory=dict)
    exit_status: Optional[int] = None
    error: str = ""  # one line
    stderr_tail: List[str] = field(default_factory=list)
    log: str = ""  # the executor-logs file


@dataclass
class DryRunResult:
    pipeline_name: str
    run_id: str
    run_root: str
    tasks: Dict[str, TaskResult] = field(default_factory=dict)  # in execution order
    seconds: float = 0.0

    @property
    def failed(self) -> Optional[TaskResult]:
        return next((t for t in self.tasks.values() if t.state == FAILED), None)

    @property
    def ok(self) -> bool:
        return self.failed is None


# --- the run ---------------------------------------------------------------------------------------

def _json_ready(value: Any) -> Any:
    """Numbers as protojson writes them (integral doubles without a fraction)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


def _order(tasks: Mapping[str, Mapping[str, Any]]) -> List[str]:
    """Tasks in dependency order (dependentTasks plus the producers of inputs); ties by name."""
    deps = {}
    for name, task in tasks.items():
        found = set(task.get("dependentTasks", [])) | set(steps._producers(task))
        unknown = sorted(found - set(tasks))
        if unknown:
            raise KubeflowError(f"step {name}: depends on unknown task(s) {', '.join(unknown)}")
        deps[name] = found
    order: List[str] = []
    while len(order) < len(tasks):
        ready = sorted(n for n in tasks if n not in order and deps[n] <= set(order))
        if not ready:
            raise KubeflowError(f"dependency cycle among {', '.join(sorted(set(tasks) - set(order)))}")
        order.append(ready[0])
    return order


def _tail(path: Path, lines: int) -> List[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


def _error_line(tail: List[str]) -> str:
    """The most telling line of a failed step's stderr: the exception, else the last line."""
    for line in reversed(tail):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b.*?:", line.strip()):
            return line.strip()
    return tail[-1].strip() if tail else ""


class _Run:
    def __init__(self, spec, root: Path, run_id: str, stock, workdir: Path, extra_env, timeout, tail_lines):
        self.spec = spec
        self.name = spec["pipelineInfo"]["name"]
        self.run_id = run_id
        self.run_root = root / self.name / run_id
        self.scratch = root / ".kfp-dry-run" / run_id
        self.workdir = workdir
        self.extra_env = dict(extra_env or {})
        self.timeout = timeout
        self.tail_lines = tail_lines
        if stock:
            self.spec = steps.use_stock_entrypoint(spec, None if stock is True else set(stock))
        self.executors = self.spec.get("deploymentSpec", {}).get("executors", {})
        self.records: Dict[str, Dict[str, Record]] = {}  # task -> output -> record
        self.output_parameters: Dict[str, Dict[str, Any]] = {}
        self.next_id = 1
        self.dag_execution_id = 1

    # driver ---------------------------------------------------------------------------------------
    def resolve_inputs(self, name, task, component, root_params) -> Dict[str, Any]:
        parameters: Dict[str, Any] = {}
        for key, spec in task.get("inputs", {}).get("parameters", {}).items():
            if "componentInputParameter" in spec:
                source = spec["componentInputParameter"]
                if source not in root_params:
                    raise StepError(f"parent DAG does not have input parameter {source}")
                if root_params[source] is None:
                    if component.get("inputDefinitions", {}).get("parameters", {}).get(key, {}).get("isOptional"):
                        continue
                    raise StepError(f"resolved parameter is null: {source}")
                parameters[key] = root_params[source]
            elif "taskOutputParameter" in spec:
                out = spec["taskOutputParameter"]
                produced = self.output_parameters.get(out.get("producerTask"), {})
                parameters[key] = produced.get(out.get("outputParameterKey"))
            elif "runtimeValue" in spec:
                parameters[key] = self.constant(spec["runtimeValue"].get("constant"), name)
            else:
                raise StepError(f"parameter spec of type {next(iter(spec), '?')} not implemented yet")
        artifacts: Dict[str, Any] = {}
        for key, spec in task.get("inputs", {}).get("artifacts", {}).items():
            if "taskOutputArtifact" not in spec:
                raise StepError(f"artifact spec of type {next(iter(spec), '?')} not implemented yet")
            out = spec["taskOutputArtifact"]
            record = self.records.get(out.get("producerTask"), {}).get(out.get("outputArtifactKey"))
            if record is None:
                raise StepError(f"cannot find output artifact key {out.get('outputArtifactKey')!r} "
                                 f"in producer task {out.get('producerTask')!r}")
            artifacts[key] = {"artifacts": [record.runtime_artifact()]}
        check_parameter_types(parameters, component.get("inputDefinitions", {}))
        return {"parameterValues": parameters, "artifacts": artifacts}

    def constant(self, value, task_name):
        if not isinstance(value, str):
            return value
        if "{{$.workspace_path}}" in value:
            return value.replace("{{$.workspace_path}}", "/kfp-workspace")
        return {
            "{{$.pipeline_job_name}}": f"{self.name} (dry run)",
            "{{$.pipeline_job_resource_name}}": f"{self.name}-{self.run_id[:8]}",
            "{{$.pipeline_job_uuid}}": self.run_id,
            "{{$.pipeline_task_name}}": task_name,
            "{{$.pipeline_task_uuid}}": str(self.dag_execution_id),
        }.get(value, value)

    def provision_outputs(self, name, component) -> Dict[str, Any]:
        task_root = f"{self.run_root}/{name}/{uuid.uuid4()}"
        declared = component.get("outputDefinitions", {})
        artifacts = {}
        for key, spec in declared.get("artifacts", {}).items():
            artifact = {"name": key, "type": spec.get("artifactType", {}), "uri": f"{task_root}/{key}"}
            if spec.get("metadata"):
                artifact["metadata"] = spec["metadata"]
            artifacts[key] = {"artifacts": [artifact]}
        # publish-logs (on by default): the driver adds it, the launcher appends the retry index.
        artifacts[EXECUTOR_LOGS] = {"artifacts": [{
            "name": EXECUTOR_LOGS, "type": {"schemaTitle": "system.Artifact"},
            "uri": f"{task_root}/{EXECUTOR_LOGS}-0"}]}
        parameters = {key: {"outputFile": str(self.scratch / name / "outputs" / key)}
                      for key in declared.get("parameters", {})}
        outputs: Dict[str, Any] = {"artifacts": artifacts, "outputFile": f"{task_root}/output_metadata.json"}
        if parameters:
            outputs["parameters"] = parameters
        return outputs

    # launcher -------------------------------------------------------------------------------------
    def command(self, container, executor_input, component) -> List[str]:
        with_defaults = json.loads(json.dumps(executor_input))
        values = with_defaults["inputs"].setdefault("parameterValues", {})
        for key, spec in component.get("inputDefinitions", {}).get("parameters", {}).items():
            if key not in values and "defaultValue" in spec:
                values[key] = spec["defaultValue"]
        placeholders = {"{{$}}": json.dumps(_json_ready(_drop_empty(with_defaults)), separators=(",", ":"))}
        for key, value in values.items():
            placeholders[f"{{{{$.inputs.parameters['{key}']}}}}"] = value_text(value)
        for side in ("inputs", "outputs"):
            for key, lst in with_defaults[side].get("artifacts", {}).items():
                if lst["artifacts"]:
                    uri = lst["artifacts"][0]["uri"]
                    placeholders[f"{{{{$.{side}.artifacts['{key}'].uri}}}}"] = uri
                    placeholders[f"{{{{$.{side}.artifacts['{key}'].path}}}}"] = uri  # a local root is its path
        for key, spec in with_defaults["outputs"].get("parameters", {}).items():
            placeholders[f"{{{{$.outputs.parameters['{key}'].output_file}}}}"] = spec["outputFile"]

        def fill(text):
            for placeholder, value in placeholders.items():
                text = text.replace(placeholder, value)
            return text

        command = [fill(part) for part in container.get("command", []) + container.get("args", [])]
        if command and command[0] in ("python", "python3"):
            command[0] = sys.executable
        return command

    def environment(self, container, name) -> Dict[str, str]:
        home = self.scratch / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": str(home),
            "PYTHONPATH": str(self.workdir),
            "PYTHONUNBUFFERED": "1",
            "KFP_POD_NAME": f"{self.name}-{name.lower()}-{self.run_id[:5]}",
            "KFP_POD_UID": str(uuid.uuid4()),
        }
        env.update(self.extra_env)
        env.update({e["name"]: e.get("value", "") for e in container.get("env", [])})
        return env

    def execute(self, name, task, component, root_params, result: TaskResult) -> None:
        executor_input: Dict[str, Any] = {"inputs": self.resolve_inputs(name, task, component, root_params)}
        condition = task.get("triggerPolicy", {}).get("condition")
        if condition and not evaluate_condition(condition, _proto_names(executor_input["inputs"])):
            result.state = SKIPPED
            result.error = f"trigger condition is false: {condition}"
            return
        executor_input["outputs"] = outputs = self.provision_outputs(name, component)
        container = self.executors[component["executorLabel"]]["container"]
        Path(outputs["outputFile"]).parent.mkdir(parents=True, exist_ok=True)
        for spec in outputs.get("parameters", {}).values():
            Path(spec["outputFile"]).parent.mkdir(parents=True, exist_ok=True)

        log = Path(outputs["artifacts"][EXECUTOR_LOGS]["artifacts"][0]["uri"])
        stdout, stderr = log.with_name(log.name + ".stdout"), log.with_name(log.name + ".stderr")
        with open(stdout, "wb") as out, open(stderr, "wb") as err:
            try:
                status = subprocess.run(self.command(container, executor_input, component), cwd=self.workdir,
                                        env=self.environment(container, name), stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=err, timeout=self.timeout).returncode
            except subprocess.TimeoutExpired:
                status = None
        log.write_bytes(stdout.read_bytes() + stderr.read_bytes())
        result.log = str(log)
        result.stderr_tail = _tail(stderr, self.tail_lines)
        stdout.unlink()
        stderr.unlink()
        result.exit_status = status
        if status != 0:
            result.state = FAILED
            result.error = (f"timed out after {self.timeout}s" if status is None
                            else _error_line(result.stderr_tail) or f"exit status {status}")
            return
        self.record(name, component, executor_input, result)
        result.state = SUCCEEDED

    def record(self, name, component, executor_input, result: TaskResult) -> None:
        output_file = Path(executor_input["outputs"]["outputFile"])
        written = json.loads(output_file.read_text()) if output_file.exists() else {}
        records = self.records.setdefault(name, {})
        for key, lst in executor_input["outputs"]["artifacts"].items():
            artifact = dict(lst["artifacts"][0])
            produced = written.get("artifacts", {}).get(key, {}).get("artifacts", [])
            if produced and key != EXECUTOR_LOGS:
                if produced[0].get("uri"):
                    artifact["uri"] = produced[0]["uri"]
                if "metadata" in produced[0]:
                    artifact["metadata"] = {**artifact.get("metadata", {}), **produced[0]["metadata"]}
            try:
                props = to_mlmd(artifact.get("metadata", {}))
            except StepError as exc:
                raise StepError(f"output {key!r}: {exc}") from None
            props.setdefault("display_name", ("string", key))
            props.setdefault("store_session_info", ("string", STORE_SESSION_INFO))
            record = records[key] = Record(self.next_id, artifact["uri"], props)
            self.next_id += 1
            result.artifacts[key] = Artifact(uri=record.uri, metadata=artifact.get("metadata", {}), id=record.id,
                                             recorded=from_mlmd(props))
        parameters = dict(written.get("parameterValues", {}))
        declared = component.get("outputDefinitions", {}).get("parameters", {})
        for key, spec in executor_input["outputs"].get("parameters", {}).items():
            if key not in parameters:
                path = Path(spec["outputFile"])
                if not path.exists():
                    raise StepError(f"failed to read output parameter name={key!r} path={str(path)!r}: no such file")
                parameters[key] = text_to_value(path.read_text(), declared[key].get("parameterType", "STRING"))
        self.output_parameters[name] = result.parameters = parameters


def _drop_empty(executor_input: Dict[str, Any]) -> Dict[str, Any]:
    """protojson leaves out empty maps."""
    inputs = {k: v for k, v in executor_input["inputs"].items() if v}
    return {**executor_input, "inputs": inputs}


def _proto_names(inputs: Mapping[str, Any]) -> Dict[str, Any]:
    """The executor input's inputs as CEL sees them (proto field names)."""
    return {"parameter_values": inputs.get("parameterValues", {}), "artifacts": inputs.get("artifacts", {})}


def dry_run(
    package,
    *,
    pipeline_root: Union[str, Path],
    parameters: Optional[Mapping[str, Any]] = None,
    progress: Optional[Callable[[str, TaskResult], None]] = None,
    stock_entrypoint: Union[bool, Iterable[str]] = False,
    workdir: Optional[Union[str, Path]] = None,
    env: Optional[Mapping[str, str]] = None,
    timeout: Optional[float] = None,
    run_id: Optional[str] = None,
    tail_lines: int = 20,
) -> DryRunResult:
    """Run `package` (a CompiledPipeline or the path of one) under `pipeline_root` (a local
    directory) as the open-source KFP backend would; stop at the first failing step.

    `parameters`: runtimeConfig.parameterValues (typed values; see `coerce_parameters` for text).
    `progress(event, task)` is called with "start" before and "end" after each task.
    `stock_entrypoint`: run TFX's own entrypoint instead of `components.kfp_entrypoint` (True: every
    step; or the names of the steps), to see what the backend does to an unrepaired step.
    `workdir`: the steps' working directory and PYTHONPATH (the image's /app), default this project.
    `env`: more environment for every step (the image's ENV), applied before the spec's `env`.
    """
    from pipelines.kubeflow import compiler

    if not isinstance(package, compiler.CompiledPipeline):
        package = compiler.read_package(Path(package))
    spec = package.pipeline_spec
    steps.preflight(spec, package.platform_spec)
    root = Path(pipeline_root)
    if "://" in str(pipeline_root):
        raise KubeflowError(f"the dry run needs a local directory as pipeline root, not {pipeline_root}")
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    root_params = root_parameters(spec, parameters or {})
    run = _Run(spec, root, run_id or str(uuid.uuid4()), stock_entrypoint, Path(workdir or PROJECT_ROOT).resolve(),
               env, timeout, tail_lines)
    result = DryRunResult(pipeline_name=run.name, run_id=run.run_id, run_root=str(run.run_root))
    tasks = run.spec["root"].get("dag", {}).get("tasks", {})
    components = run.spec.get("components", {})
    started = time.monotonic()
    for name in _order(tasks):
        task = tasks[name]
        task_result = result.tasks[name] = TaskResult(name=name)
        upstream = set(task.get("dependentTasks", [])) | set(steps._producers(task))
        skipped = sorted(u for u in upstream if result.tasks[u].state == SKIPPED)
        if skipped:
            task_result.state, task_result.error = SKIPPED, f"upstream {', '.join(skipped)} skipped"
            _notify(progress, "end", task_result)
            continue
        component = components[task["componentRef"]["name"]]
        if "executorLabel" not in component or "container" not in run.executors.get(component["executorLabel"], {}):
            raise KubeflowError(f"step {name}: the dry run runs container executors only")
        _notify(progress, "start", task_result)
        begun = time.monotonic()
        try:
            run.execute(name, task, component, root_params, task_result)
        except StepError as exc:
            task_result.state, task_result.error = FAILED, str(exc)
        task_result.seconds = time.monotonic() - begun
        _notify(progress, "end", task_result)
        if task_result.state == FAILED:
            break
    result.seconds = time.monotonic() - started
    return result


def _notify(progress, event: str, task: TaskResult) -> None:
    if progress is not None:
        progress(event, task)

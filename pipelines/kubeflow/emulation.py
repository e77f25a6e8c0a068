"""One step of a compiled package as the open-source KFP backend runs it: the driver's inputs and
outputs, the pod's environment and secrets, the launcher's command line, object-store downloads and
uploads, and what the launcher records. `dry_run` runs the steps in order; see its docstring for
what is and is not emulated, after kubeflow/pipelines 2.17.0 backend/src/v2."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from pipelines.kubeflow import object_store, steps
from pipelines.kubeflow.backend_semantics import (
    Record, StepError, check_parameter_types, evaluate_condition, from_mlmd, text_to_value, to_mlmd, value_text,
)
from pipelines.kubeflow.resources import KUBERNETES_PLATFORM as KUBERNETES

SUCCEEDED, FAILED, SKIPPED = "succeeded", "failed", "skipped"
EXECUTOR_LOGS = "executor-logs"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The launcher records this for the run's bucket (objectstore.SessionInfo): a local root has none, an
# s3:// root without a kfp-launcher `providers` entry takes its credentials from the environment.
STORE_SESSION_INFO = json.dumps({"Provider": "", "Params": None}, separators=(",", ":"))
S3_SESSION_INFO = json.dumps({"Provider": "s3", "Params": {"fromEnv": "true"}}, separators=(",", ":"))


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



def _json_ready(value: Any) -> Any:
    """Numbers as protojson writes them (integral doubles without a fraction)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


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


class EmulatedRun:
    """The run's state between steps: the records and output parameters each step left."""

    def __init__(self, spec, root: str, run_id: str, stock, workdir: Path, extra_env, timeout, tail_lines,
                 scratch: Path, store=None, secrets=None, platform=None):
        self.spec = spec
        self.name = spec["pipelineInfo"]["name"]
        self.run_id = run_id
        self.run_root = f"{str(root).rstrip('/')}/{self.name}/{run_id}"
        self.scratch = scratch
        self.store = store  # object_store.S3Store for an s3:// root, else None (a local root is its path)
        self.secrets = dict(secrets or {})
        self.platform_executors = (platform or {}).get("platforms", {}).get(KUBERNETES, {}).get(
            "deploymentSpec", {}).get("executors", {})
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

    def mount(self, name) -> Path:
        """The pod's `/` for object-store paths (/s3/...): one per step, as each step is its own pod."""
        return self.scratch / "pods" / name

    def local(self, uri: str, name: str) -> str:
        """Where the step's pod sees `uri` (launcher_v2.go LocalPathForURI); a local root is its path."""
        if self.store is None:
            return uri
        return str(object_store.local_path_for_uri(uri, self.mount(name)))

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
        outputs: Dict[str, Any] = {"artifacts": artifacts,
                                   "outputFile": f"{self.local(task_root, name)}/output_metadata.json"}
        if parameters:
            outputs["parameters"] = parameters
        return outputs

    # launcher -------------------------------------------------------------------------------------
    def command(self, container, executor_input, component, name) -> List[str]:
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
                    placeholders[f"{{{{$.{side}.artifacts['{key}'].path}}}}"] = self.local(uri, name)
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

    def environment(self, container, name, label) -> Dict[str, str]:
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
        env.update(self.secret_env(label))
        return env

    def secret_env(self, label) -> Dict[str, str]:
        """The platform spec's secretAsEnv (driver/k8s.go): a missing secret or key keeps the pod from
        starting (CreateContainerConfigError) unless marked optional."""
        env: Dict[str, str] = {}
        for entry in self.platform_executors.get(label, {}).get("secretAsEnv", []):
            name = entry.get("secretNameParameter", {}).get("runtimeValue", {}).get("constant") or entry.get(
                "secretName", "")
            secret = self.secrets.get(name)
            for pair in entry.get("keyToEnv", []):
                if secret is not None and pair["secretKey"] in secret:
                    env[pair["envVar"]] = secret[pair["secretKey"]]
                elif not entry.get("optional"):
                    raise StepError(f'CreateContainerConfigError: secret "{name}" '
                                    f'{"not found" if secret is None else "has no key " + repr(pair["secretKey"])}')
        return env

    def execute(self, name, task, component, root_params, result: TaskResult) -> None:
        executor_input: Dict[str, Any] = {"inputs": self.resolve_inputs(name, task, component, root_params)}
        condition = task.get("triggerPolicy", {}).get("condition")
        if condition and not evaluate_condition(condition, _proto_names(executor_input["inputs"])):
            result.state = SKIPPED
            result.error = f"trigger condition is false: {condition}"
            return
        executor_input["outputs"] = outputs = self.provision_outputs(name, component)
        label = component["executorLabel"]
        container = self.executors[label]["container"]
        env = self.environment(container, name, label)
        self.download_inputs(name, executor_input)
        Path(outputs["outputFile"]).parent.mkdir(parents=True, exist_ok=True)
        for lst in outputs["artifacts"].values():  # prepareOutputFolders
            Path(self.local(lst["artifacts"][0]["uri"], name)).parent.mkdir(parents=True, exist_ok=True)
        for spec in outputs.get("parameters", {}).values():
            Path(spec["outputFile"]).parent.mkdir(parents=True, exist_ok=True)

        log = Path(self.local(outputs["artifacts"][EXECUTOR_LOGS]["artifacts"][0]["uri"], name))
        stdout, stderr = log.with_name(log.name + ".stdout"), log.with_name(log.name + ".stderr")
        with open(stdout, "wb") as out, open(stderr, "wb") as err:
            try:
                status = subprocess.run(self.command(container, executor_input, component, name), cwd=self.workdir,
                                        env=env, stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=err, timeout=self.timeout).returncode
            except subprocess.TimeoutExpired:
                status = None
        log.write_bytes(stdout.read_bytes() + stderr.read_bytes())
        self.upload_outputs(name, outputs, succeeded=status == 0)
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

    def download_inputs(self, name, executor_input) -> None:
        """launcher_v2.go downloadArtifacts: every input artifact's prefix to its local path."""
        if self.store is None:
            return
        for key, lst in executor_input["inputs"].get("artifacts", {}).items():
            for artifact in lst["artifacts"]:
                try:
                    self.store.download(artifact["uri"], Path(self.local(artifact["uri"], name)))
                except object_store.ObjectStoreError as exc:
                    raise StepError(f"failed to download input artifact {key!r} from remote storage URI "
                                    f"{artifact['uri']!r}: {exc}") from None

    def upload_outputs(self, name, outputs, succeeded: bool) -> None:
        """uploadOutputArtifacts: local paths under their URIs (only the logs after a failure); a
        local path the step did not write is skipped."""
        if self.store is None:
            return
        for key, lst in outputs["artifacts"].items():
            if not succeeded and key != EXECUTOR_LOGS:
                continue
            uri = lst["artifacts"][0]["uri"]
            try:
                self.store.upload(Path(self.local(uri, name)), uri)
            except FileNotFoundError:
                continue
            except Exception as exc:  # noqa: BLE001 - the launcher fails the step on any upload error
                raise StepError(f"failed to upload output artifact {key!r} to remote storage URI {uri!r}: "
                                f"{exc}") from None

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
            props.setdefault("store_session_info",
                             ("string", S3_SESSION_INFO if self.store is not None else STORE_SESSION_INFO))
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

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

- Object stores (component/launcher_v2.go, objectstore/object_store.go; `object_store`): with an
  `s3://` root, artifact URIs are `s3://...`, while the output metadata file, TFX's temp dir and the
  `.path` placeholders are the pod's local `/s3/...` paths (a directory per step stands for each
  pod's `/`); inputs are downloaded there before the command (a `dir/` marker fails the download as
  in kubeflow/pipelines#13476), outputs uploaded after it, only the logs after a failure.
- Secrets: the platform spec's secretAsEnv, from the `secrets` given (a missing one fails the step).

What is NOT emulated: scheduling (tasks run one at a time; Argo runs independent ones in parallel),
pods (image, resources, GPUs, node selectors and pod spec patches, service accounts and IRSA: the
credentials are this process's), gs:// and minio:// roots, the kfp-launcher ConfigMap's
`providers` (an s3:// root is opened `fromEnv`), caching (every step runs), retries, exit handlers
and iterators, the root DAG driver's pipeline-root lookup (the root given here is used), ML
Metadata itself (ids are a counter), and the Argo layer (workflow compilation beyond
`steps.preflight`).
"""
from __future__ import annotations

import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Union

from pipelines.kubeflow import KubeflowError, object_store, steps
from pipelines.kubeflow.backend_semantics import StepError, root_parameters
from pipelines.kubeflow.emulation import (  # noqa: F401 - re-exported: the states and results of a run
    EXECUTOR_LOGS, FAILED, PROJECT_ROOT, S3_SESSION_INFO, SKIPPED, STORE_SESSION_INFO, SUCCEEDED, Artifact, EmulatedRun,
    TaskResult,
)

_Run = EmulatedRun

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
    secrets: Optional[Mapping[str, Mapping[str, str]]] = None,
    scratch: Optional[Union[str, Path]] = None,
) -> DryRunResult:
    """Run `package` (a CompiledPipeline or the path of one) under `pipeline_root` (a local
    directory) as the open-source KFP backend would; stop at the first failing step.

    `parameters`: runtimeConfig.parameterValues (typed values; see `coerce_parameters` for text).
    `progress(event, task)` is called with "start" before and "end" after each task.
    `stock_entrypoint`: run TFX's own entrypoint instead of `components.kfp_entrypoint` (True: every
    step; or the names of the steps), to see what the backend does to an unrepaired step.
    `workdir`: the steps' working directory and PYTHONPATH (the image's /app), default this project.
    `env`: more environment for every step (the image's ENV), applied before the spec's `env`.
    `pipeline_root`: a local directory, or an `s3://` URI (the launcher's downloads and uploads run
    against that S3 API with this process's boto3 credentials and endpoint, as `fromEnv`).
    `secrets`: the cluster's Kubernetes secrets (name -> key -> value) for the platform spec's
    secretAsEnv. `scratch`: the local directory for the pods' files (default: under a local root, or
    a new temporary directory).
    """
    from pipelines.kubeflow import compiler

    if not isinstance(package, compiler.CompiledPipeline):
        package = compiler.read_package(Path(package))
    spec = package.pipeline_spec
    steps.preflight(spec, package.platform_spec)
    run_id = run_id or str(uuid.uuid4())
    store = None
    if object_store.is_remote(str(pipeline_root)):
        root = str(pipeline_root).rstrip("/")
        if not root.startswith(object_store.EMULATED_SCHEMES):
            raise KubeflowError(f"the dry run emulates s3:// object stores and local directories, not {root}")
        store = object_store.S3Store()
        local_scratch = Path(scratch) if scratch else Path(tempfile.mkdtemp(prefix="mlops-kfp-dry-run-"))
    else:
        local_root = Path(pipeline_root).resolve()
        local_root.mkdir(parents=True, exist_ok=True)
        root = str(local_root)
        local_scratch = Path(scratch) if scratch else local_root / ".kfp-dry-run"
    root_params = root_parameters(spec, parameters or {})
    run = _Run(spec, root, run_id, stock_entrypoint, Path(workdir or PROJECT_ROOT).resolve(),
               env, timeout, tail_lines, scratch=(local_scratch / run_id).resolve(), store=store, secrets=secrets,
               platform=package.platform_spec)
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

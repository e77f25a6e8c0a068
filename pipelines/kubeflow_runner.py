"""Compile a task's pipeline for Kubeflow Pipelines (KFP v2 backend) and submit it.

The pipeline itself comes unchanged from `factory.create_pipeline`; this module only adds what is
specific to running on the cluster: the image, the pipeline/data/serving roots, where packaged files
live inside the image, per-component resources and GPU scheduling, and the connection to the KFP API.

The package it writes is what the KFP backend accepts both from the API and from the UI's
"Upload pipeline": a YAML file whose first document is the PipelineSpec (schema 2.1.0) and whose
second document, present when any step needs a GPU, is the Kubernetes PlatformSpec (the format
kfp-kubernetes writes) with the node selector and toleration of each GPU step.
"""
from __future__ import annotations

import contextlib
import datetime
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from pipelines.config import ComponentResources, TaskConfig

# Where the project lives inside the pipeline image (infra/docker/Dockerfile: WORKDIR /app).
IMAGE_PACKAGE_ROOT = "/app"

# The GPU node pool (infra/terraform, infra/k8s/README.md §5).
GPU_RESOURCE = "nvidia.com/gpu"
GPU_NODE_LABEL = {"nvidia.com/gpu.present": "true"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}

KUBERNETES_PLATFORM = "kubernetes"
HEALTHZ_PATH = "/apis/v2beta1/healthz"


class KubeflowError(RuntimeError):
    """A problem to report as one line (unreachable API, rejected credentials, bad package)."""


# --------------------------------------------------------------------------------------------
# Resources


_MEMORY_SUFFIXES = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "": 1,
}


def cpu_cores(quantity: str) -> float:
    """Kubernetes CPU quantity ('4', '0.5', '500m') -> cores."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)(m?)\s*", str(quantity))
    if not m:
        raise ValueError(f"invalid CPU quantity {quantity!r} (expected e.g. '4', '0.5' or '500m')")
    value = float(m.group(1))
    return value / 1000 if m.group(2) else value


def memory_gb(quantity: str) -> float:
    """Kubernetes memory quantity ('16Gi', '512Mi', '8G', bytes) -> GB (10^9 bytes), the unit of
    PipelineContainerSpec.ResourceSpec.memory_limit/memory_request."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)([KMGTPE]i|[kKMGTPE]?)\s*", str(quantity))
    if not m:
        raise ValueError(f"invalid memory quantity {quantity!r} (expected e.g. '16Gi', '512Mi' or '8G')")
    return float(m.group(1)) * _MEMORY_SUFFIXES[m.group(2)] / 10**9


def resource_spec(resources: ComponentResources):
    """The TFX KubeflowV2 platform config (ResourceSpec) for one component.

    cpu/memory are used as both request and limit; gpu > 0 adds an nvidia.com/gpu accelerator.
    """
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec()
    if resources.cpu:
        spec.cpu_limit = spec.cpu_request = cpu_cores(resources.cpu)
    if resources.memory:
        spec.memory_limit = spec.memory_request = memory_gb(resources.memory)
    if resources.gpu:
        if resources.gpu < 0:
            raise ValueError(f"gpu must be >= 0, got {resources.gpu}")
        spec.accelerator.type = GPU_RESOURCE
        spec.accelerator.count = int(resources.gpu)
    return spec


def gpu_steps(task: TaskConfig) -> List[str]:
    """Component ids that request a GPU in the task config."""
    return sorted(node for node, res in task.resources.items() if res.gpu > 0)


# --------------------------------------------------------------------------------------------
# Compile


def default_data_root(pipeline_root: str) -> str:
    return f"{pipeline_root.rstrip('/')}/data"


def default_serving_root(pipeline_root: str) -> str:
    return f"{pipeline_root.rstrip('/')}/serving"


def compile_data_version(start: Optional[Path] = None) -> Dict[str, Any]:
    """The data version to record on ExampleGen's output: the md5 data.dvc names at compile time.

    Looks for data.dvc from `start` (default: the working directory) upwards, then in this checkout.
    The copy of the data under the cluster's data root is not checked (compiling never reads it).
    """
    from pipelines import datasets

    candidates = [start, Path(__file__).resolve().parent.parent]
    for candidate in candidates:
        try:
            root = datasets.repo_root(candidate)
        except FileNotFoundError:
            continue
        return {"md5": datasets.tracked_md5(root), "dirty": False, "target": "data.dvc"}
    return {"md5": "untracked", "dirty": True, "target": "none"}


@dataclass
class CompiledPipeline:
    """A compiled package: PipelineSpec and (for GPU steps) Kubernetes PlatformSpec, as JSON dicts."""

    pipeline_spec: Dict[str, Any]
    platform_spec: Dict[str, Any]
    data_version: Mapping[str, Any] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.pipeline_spec["pipelineInfo"]["name"]

    @property
    def pipeline_root(self) -> str:
        return self.pipeline_spec.get("defaultPipelineRoot", "")

    def documents(self) -> List[Dict[str, Any]]:
        return [self.pipeline_spec] + ([self.platform_spec] if self.platform_spec else [])

    def write(self, path: Path) -> Path:
        """Write the package as YAML (one document per spec), creating parent directories."""
        import yaml

        path = Path(path)
        check_package_suffix(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = (
            "# PIPELINE DEFINITION (compiled by `mlops compile`)\n"
            f"# Name: {self.name}\n"
            f"# Pipeline root: {self.pipeline_root}\n"
            f"# Data: dvc md5 {self.data_version.get('md5', 'unknown')}\n"
        )
        with open(path, "w", encoding="utf-8") as f:
            f.write(header)
            yaml.safe_dump_all(self.documents(), f, sort_keys=True)
        return path


def check_package_suffix(path: Path) -> None:
    if Path(path).suffix not in (".yaml", ".yml"):
        raise KubeflowError(
            f"{path}: the package must be .yaml/.yml; the GPU node selector and toleration live in a "
            "second YAML document (Kubernetes platform spec), which JSON cannot hold"
        )


def read_package(path: Path) -> CompiledPipeline:
    """Read a package written by CompiledPipeline.write (or by the kfp compiler)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise KubeflowError(f"package {path} not found")
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    except yaml.YAMLError as exc:
        raise KubeflowError(f"{path} is not a YAML pipeline package: {str(exc).splitlines()[0]}") from None
    if not docs or not isinstance(docs[0], dict) or "pipelineInfo" not in docs[0] or "root" not in docs[0]:
        raise KubeflowError(f"{path} holds no pipeline spec (expected pipelineInfo and root)")
    platform: Dict[str, Any] = {}
    for doc in docs[1:]:
        platform.update(doc)
    return CompiledPipeline(pipeline_spec=docs[0], platform_spec=platform)


def build_pipeline(
    task: TaskConfig,
    *,
    pipeline_root: str,
    data_root: Optional[str] = None,
    serving_root: Optional[str] = None,
    package_root: str = IMAGE_PACKAGE_ROOT,
    data_version: Optional[Mapping[str, Any]] = None,
    enable_cache: bool = True,
    baseline: bool = True,
):
    """The factory's pipeline with cluster roots and per-component resources attached."""
    from pipelines import factory

    pipeline = factory.create_pipeline(
        task,
        pipeline_root=pipeline_root,
        data_root=data_root or default_data_root(pipeline_root),
        serving_root=serving_root or default_serving_root(pipeline_root),
        data_version=data_version,
        enable_cache=enable_cache,
        beam_pipeline_args=list(task.beam_pipeline_args),
        package_root=package_root,
        baseline=baseline,
    )
    by_id = {component.id: component for component in pipeline.components}
    unknown = sorted(set(task.resources) - set(by_id))
    if unknown:
        raise KubeflowError(
            f"task {task.name!r} sets resources for unknown component(s) {', '.join(unknown)}; "
            f"components: {', '.join(sorted(by_id))}"
        )
    for node_id, resources in task.resources.items():
        by_id[node_id].with_platform_config(resource_spec(resources))
    return pipeline


def _executor_labels(pipeline_spec: Mapping[str, Any]) -> Dict[str, str]:
    """task name (= TFX node id) -> executor label in deploymentSpec.executors."""
    components = pipeline_spec["components"]
    return {
        name: components[t["componentRef"]["name"]]["executorLabel"]
        for name, t in pipeline_spec["root"]["dag"]["tasks"].items()
    }


def kubernetes_platform_spec(executor_labels: Sequence[str]) -> Dict[str, Any]:
    """PlatformSpec (JSON form) that pins the given executors to the GPU node pool."""
    if not executor_labels:
        return {}
    executors = {
        label: {"nodeSelector": {"labels": dict(GPU_NODE_LABEL)}, "tolerations": [dict(GPU_TOLERATION)]}
        for label in sorted(executor_labels)
    }
    return {"platforms": {KUBERNETES_PLATFORM: {"deploymentSpec": {"executors": executors}}}}


def compile_pipeline(
    task: TaskConfig,
    *,
    image: str,
    pipeline_root: str,
    data_root: Optional[str] = None,
    serving_root: Optional[str] = None,
    package_root: str = IMAGE_PACKAGE_ROOT,
    data_version: Optional[Mapping[str, Any]] = None,
    enable_cache: bool = True,
    baseline: bool = True,
) -> CompiledPipeline:
    """Compile with TFX's KubeflowV2DagRunner, in memory: no network, nothing under pipeline_root."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.v1.orchestration.experimental import KubeflowV2DagRunner, KubeflowV2DagRunnerConfig

    if not image:
        raise KubeflowError("an image is required (the pipeline image built by `make image`)")
    if not pipeline_root:
        raise KubeflowError("a pipeline root is required (e.g. the Terraform output pipeline_root)")
    version = dict(data_version) if data_version is not None else compile_data_version()
    pipeline = build_pipeline(
        task,
        pipeline_root=pipeline_root,
        data_root=data_root,
        serving_root=serving_root,
        package_root=package_root,
        data_version=version,
        enable_cache=enable_cache,
        baseline=baseline,
    )
    runner = KubeflowV2DagRunner(
        # Schema 2.1.0: the only one the KFP v2 backend accepts.
        KubeflowV2DagRunnerConfig(default_image=image, use_pipeline_spec_2_1=True)
    )
    job = runner.run(pipeline, write_out=False)
    spec: Dict[str, Any] = job["pipelineSpec"]
    spec["defaultPipelineRoot"] = pipeline_root

    labels = _executor_labels(spec)
    executors = spec["deploymentSpec"]["executors"]
    # TFX applies the ResourceSpec to ordinary components only (not to FileBasedExampleGen), so make
    # sure every configured component carries it.
    for node_id, resources in task.resources.items():
        container = executors[labels[node_id]].get("container")
        if container is not None and "resources" not in container:
            container["resources"] = json_format.MessageToDict(resource_spec(resources))
    platform = kubernetes_platform_spec([labels[node] for node in gpu_steps(task)])

    # Validate against kfp's own protos, as the backend will.
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())

    warnings = []
    resolvers = sorted(name for name, label in labels.items() if "resolver" in executors[label])
    if resolvers:
        warnings.append(
            "the open-source KFP backend does not run TFX Resolver executors "
            f"({', '.join(resolvers)}): runs are rejected at creation with 'resolver executors not "
            "implemented'; compile with --no-baseline for that backend (value thresholds only)"
        )
    return CompiledPipeline(pipeline_spec=spec, platform_spec=platform, data_version=version, warnings=warnings)


# --------------------------------------------------------------------------------------------
# Submit


def _reason(exc: BaseException) -> str:
    """A short reason for a connection failure ('connection refused', 'timed out', ...)."""
    import urllib3

    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 1.x: test it first.
    if not isinstance(exc, urllib3.exceptions.NewConnectionError) and isinstance(
        exc, (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.ReadTimeoutError)
    ):
        return "timed out"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return f"TLS error: {str(exc).splitlines()[0]}"
    text = str(exc)
    m = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if m:
        return m.group(1).strip().lower()
    return text.splitlines()[0] if text else type(exc).__name__


def _auth_headers(token: Optional[str]) -> Dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def check_endpoint(host: str, token: Optional[str] = None, timeout: float = 10.0) -> None:
    """One GET of the KFP healthz endpoint; raises KubeflowError with a one-line reason.

    kfp.Client retries its own first request for ~25 s on errors, so the reachability and
    credential check is done here, once, with a timeout.
    """
    import urllib3

    if not re.match(r"^https?://[^/\s]+", host or ""):
        raise KubeflowError(f"--host must be an http(s) URL such as http://localhost:8080, got {host!r}")
    url = host.rstrip("/") + HEALTHZ_PATH
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False)
    try:
        response = http.request("GET", url, headers=_auth_headers(token), redirect=False)
    except urllib3.exceptions.HTTPError as exc:
        raise KubeflowError(f"cannot reach Kubeflow Pipelines at {host}: {_reason(exc)}") from None
    finally:
        http.clear()
    status = response.status
    if status in (401, 403):
        word = "Unauthorized" if status == 401 else "Forbidden"
        raise KubeflowError(
            f"Kubeflow Pipelines at {host} rejected the request (HTTP {status} {word}); "
            "pass a valid token with --token or $MLOPS_KFP_TOKEN"
        )
    if 300 <= status < 400:
        raise KubeflowError(
            f"Kubeflow Pipelines at {host} redirected to {response.headers.get('Location', '?')} "
            "(a login page?); use the API address (e.g. a port-forward) or pass --token"
        )
    if status != 200:
        raise KubeflowError(
            f"unexpected HTTP {status} from {url}; is {host} the Kubeflow Pipelines API "
            "(e.g. http://localhost:8080 after `kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80`)?"
        )


def _api_error(exc: BaseException, host: str, doing: str) -> KubeflowError:
    """One-line KubeflowError for an ApiException (or connection error) from kfp's client."""
    status = getattr(exc, "status", None)
    if status is None:
        return KubeflowError(f"cannot reach Kubeflow Pipelines at {host} while {doing}: {_reason(exc)}")
    if status in (401, 403):
        return KubeflowError(
            f"Kubeflow Pipelines at {host} rejected the request while {doing} (HTTP {status}); "
            "pass a valid token with --token or $MLOPS_KFP_TOKEN"
        )
    message = ""
    body = getattr(exc, "body", None)
    if body:
        try:
            data = json.loads(body)
            message = data.get("message") or data.get("error") or ""
        except (ValueError, AttributeError):
            message = str(body)
    message = " ".join(str(message or getattr(exc, "reason", "") or "").split())
    return KubeflowError(f"Kubeflow Pipelines refused {doing} (HTTP {status}): {message[:500]}")


@dataclass(frozen=True)
class SubmitResult:
    pipeline_id: str
    version_id: str
    experiment_id: str
    run_id: str
    run_url: str


def submit_package(
    package: Path,
    *,
    host: str,
    experiment: str,
    run_name: str,
    version_name: Optional[str] = None,
    token: Optional[str] = None,
) -> SubmitResult:
    """Upload `package` as a new version of its pipeline (creating the pipeline if needed) and start
    a run of that version in `experiment` with the package's pipeline root."""
    import kfp
    import kfp_server_api
    import urllib3

    compiled = read_package(package)
    check_endpoint(host, token)
    name = compiled.name
    version_name = version_name or f"{name}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    step = "connecting"
    try:
        client = kfp.Client(host=host, existing_token=token)
        step = "looking up the pipeline"
        pipeline_id = client.get_pipeline_id(name)
        if pipeline_id is None:
            step = "uploading the pipeline"
            pipeline = client.upload_pipeline(str(package), pipeline_name=name, description=f"mlops {name}")
            pipeline_id = pipeline.pipeline_id
            versions = client.list_pipeline_versions(pipeline_id, page_size=1, sort_by="created_at desc")
            version_id = versions.pipeline_versions[0].pipeline_version_id
        else:
            step = "uploading the pipeline version"
            version = client.upload_pipeline_version(
                str(package), pipeline_version_name=version_name, pipeline_id=pipeline_id
            )
            version_id = version.pipeline_version_id
        step = "creating the experiment"
        experiment_obj = client.create_experiment(experiment)
        step = "starting the run"
        with contextlib.redirect_stdout(io.StringIO()):  # kfp prints its own "Run details" line
            run = client.run_pipeline(
                experiment_id=experiment_obj.experiment_id,
                job_name=run_name,
                pipeline_id=pipeline_id,
                version_id=version_id,
                pipeline_root=compiled.pipeline_root or None,
            )
    except (kfp_server_api.ApiException, urllib3.exceptions.HTTPError) as exc:
        raise _api_error(exc, host, step) from None
    except ValueError as exc:  # e.g. several pipelines with the same name
        raise KubeflowError(f"Kubeflow Pipelines at {host}: {exc} (while {step})") from None
    return SubmitResult(
        pipeline_id=pipeline_id,
        version_id=version_id,
        experiment_id=experiment_obj.experiment_id,
        run_id=run.run_id,
        run_url=f"{host.rstrip('/')}/#/runs/details/{run.run_id}",
    )

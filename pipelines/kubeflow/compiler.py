"""Compile a task's pipeline for Kubeflow Pipelines (KFP v2 backend).

The pipeline itself comes unchanged from `factory.create_pipeline`; this module only adds what is
specific to running on the cluster: the image, the pipeline/data/serving roots, where packaged files
live inside the image, and per-component resources and GPU scheduling (`resources`).

The package it writes is what the KFP backend accepts both from the API and from the UI's
"Upload pipeline": a YAML file whose first document is the PipelineSpec (schema 2.1.0) and whose
second document, present when any step needs a GPU, is the Kubernetes PlatformSpec (the format
kfp-kubernetes writes) with the node selector and toleration of each GPU step.
"""
from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from components import gpu_check
from components.registry.tags import TRACKING_URI_ENV
from pipelines import nodes
from pipelines.config import TaskConfig
from pipelines.kubeflow import KubeflowError, cluster as target_cluster
from pipelines.kubeflow import storage
from pipelines.kubeflow.resources import gpu_steps, kubernetes_platform_spec, resource_spec
from pipelines.kubeflow.storage import S3Access

# A parameter constant the open-source backend's driver replaces with the run's id.
KFP_RUN_ID = "{{$.pipeline_job_uuid}}"

# Where the project lives inside the pipeline image (infra/docker/Dockerfile: WORKDIR /app).
IMAGE_PACKAGE_ROOT = "/app"


def default_data_root(pipeline_root: str) -> str:
    return f"{pipeline_root.rstrip('/')}/data"


def default_serving_root(pipeline_root: str) -> str:
    return f"{pipeline_root.rstrip('/')}/serving"


def compile_data_version(start: Optional[Path] = None) -> Dict[str, Any]:
    """The data version to record on ExampleGen's output: the md5 data.dvc names at compile time
    (looked up from `start`, default the working directory, then this checkout). The copy of the
    data under the cluster's data root is not checked (compiling never reads it)."""
    from components import data_version

    return data_version.recorded_version(start, Path(__file__).resolve().parents[2])


@dataclass
class CompiledPipeline:
    """A compiled package: PipelineSpec and (for GPU steps) Kubernetes PlatformSpec, as JSON dicts."""

    pipeline_spec: Dict[str, Any]
    platform_spec: Dict[str, Any]
    data_version: Mapping[str, Any] = field(default_factory=dict)
    registry_uri: str = ""
    warnings: List[str] = field(default_factory=list)
    cluster: str = ""  # the Terraform environment whose node pools the requests were checked against

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
    registry_uri: Optional[str] = None,
    s3: Optional[S3Access] = None,
    dvc_remote: Optional[str] = None,
):
    """The factory's pipeline with cluster roots and per-component resources attached. No metadata
    connection: on the cluster, ML Metadata is KFP's own service, and no step may read a local file."""
    from components.code_version import code_version
    from pipelines import factory

    snapshot = None
    if dvc_remote:
        from components import data_snapshot

        md5 = (data_version or {}).get("md5", "")
        data_root = data_snapshot.snapshot_root(pipeline_root, md5)
        snapshot = data_snapshot.DataSnapshotComponent(
            remote=dvc_remote, md5=md5, destination=data_root, subdir=task.data_dir).with_id(nodes.DATA_SNAPSHOT)
    pipeline = factory.create_pipeline(
        task,
        pipeline_root=pipeline_root,
        data_root=data_root or default_data_root(pipeline_root),
        serving_root=serving_root or default_serving_root(pipeline_root),
        data_version=data_version,
        enable_cache=enable_cache,
        beam_pipeline_args=list(task.beam_pipeline_args) + (s3 or S3Access()).beam_args(),
        package_root=package_root,
        baseline=baseline,
        registry_uri=registry_uri,
        code_version=code_version(Path(__file__).resolve().parents[2]),
        # The KFP driver replaces this constant with the run's id (driver/resolve.go).
        run_id=KFP_RUN_ID,
        data_snapshot=snapshot,
        run_summary=True,
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
    registry_uri: Optional[str] = None,
    cluster: Optional[str] = None,
    s3: Optional[S3Access] = None,
    dvc_remote: Optional[str] = None,
) -> CompiledPipeline:
    """Compile with TFX's KubeflowV2DagRunner, in memory: no network, nothing under pipeline_root.

    registry_uri: the MLflow registry the Baseline and Registrar steps use in the cluster (default
    $MLFLOW_TRACKING_URI); required, since a Registrar without one would register nothing.
    cluster: the Terraform environment (`cluster.CLUSTERS`, default $MLOPS_CLUSTER, else dev) whose
    node pools must fit every step's request: a pod no node can hold would stay Pending.
    s3: the object store's endpoint, region and credentials secret for every step (`storage`).
    dvc_remote: the DVC remote (s3://...) a first step reads the stamped data version from, by md5,
    into `<pipeline root>/data-versions/<md5>` (components.data_snapshot); without it ExampleGen
    reads whatever is under the data root."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.v1.orchestration.experimental import KubeflowV2DagRunner, KubeflowV2DagRunnerConfig

    from pipelines.kubeflow import steps

    if not image:
        raise KubeflowError("an image is required (the pipeline image built by `make image`)")
    if not pipeline_root:
        raise KubeflowError("a pipeline root is required (e.g. the Terraform output pipeline_root)")
    registry_uri = check_registry_uri(registry_uri or os.environ.get(TRACKING_URI_ENV))
    s3 = s3 or S3Access()
    for option, root in (("--pipeline-root", pipeline_root), ("--data-root", data_root),
                         ("--serving-root", serving_root), ("--dvc-remote", dvc_remote)):
        storage.check_root(root or "", option)
    if dvc_remote and data_root:
        raise KubeflowError("--data-root and --dvc-remote exclude each other: with a DVC remote the run reads "
                            "the stamped data version from it")
    target = target_cluster.check_fits(task.name, task.resources, cluster)
    version = dict(data_version) if data_version is not None else compile_data_version()
    if dvc_remote and not str(version.get("md5", "")).endswith(".dir"):
        raise KubeflowError(f"--dvc-remote needs the data version of data.dvc (a .dir md5), not "
                            f"{version.get('md5')!r}: run `dvc add data` and commit data.dvc")
    pipeline = build_pipeline(
        task,
        pipeline_root=pipeline_root,
        data_root=data_root,
        serving_root=serving_root,
        package_root=package_root,
        data_version=version,
        enable_cache=enable_cache,
        baseline=baseline,
        registry_uri=registry_uri,
        s3=s3,
        dvc_remote=dvc_remote,
    )
    runner = KubeflowV2DagRunner(
        # Schema 2.1.0: the only one the KFP v2 backend accepts.
        KubeflowV2DagRunnerConfig(default_image=image, use_pipeline_spec_2_1=True)
    )
    job = runner.run(pipeline, write_out=False)
    spec: Dict[str, Any] = steps.use_project_entrypoint(job["pipelineSpec"])
    spec["defaultPipelineRoot"] = pipeline_root
    spec["sdkVersion"] = f"{steps.PACKAGE_FORMAT}+{spec.get('sdkVersion', 'tfx')}"
    # The Baseline reads the registry, which changes between runs: a cached answer would be stale.
    for name, task_spec in spec["root"]["dag"]["tasks"].items():
        if name == nodes.BASELINE:
            task_spec["cachingOptions"] = {"enableCache": False}

    labels = _executor_labels(spec)
    executors = spec["deploymentSpec"]["executors"]
    # TFX applies the ResourceSpec to ordinary components only (not to FileBasedExampleGen), so make
    # sure every configured component carries it.
    for node_id, resources in task.resources.items():
        container = executors[labels[node_id]].get("container")
        if container is not None and "resources" not in container:
            container["resources"] = json_format.MessageToDict(resource_spec(resources))
    gpu_labels = [labels[node] for node in gpu_steps(task)]
    platform = kubernetes_platform_spec(gpu_labels)
    # Every step reaches the object store the same way; GPU steps check that they got a GPU.
    storage.add_container_env(executors, sorted(set(labels.values())), s3.container_env())
    for node in gpu_steps(task):
        storage.add_container_env(executors, [labels[node]], [
            {"name": gpu_check.REQUIRE_GPU_ENV, "value": str(task.resources[node].gpu)}])
    platform = storage.add_secret_env(platform, sorted(set(labels.values())), s3)

    # Validate against kfp's own protos, as the backend will.
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())

    # What the open-source backend would refuse is refused here, naming the step.
    steps.preflight(spec, platform)
    return CompiledPipeline(pipeline_spec=spec, platform_spec=platform, data_version=version,
                            registry_uri=registry_uri, cluster=target.name)


def check_registry_uri(uri: Optional[str]) -> str:
    """The registry URI for steps in the cluster, or KubeflowError: none given, or one that names a
    file on this machine (a pod cannot open it)."""
    if not uri:
        raise KubeflowError(
            f"the Registrar needs a model registry in the cluster: pass --registry-uri (e.g. the MLflow "
            f"server of infra/k8s, {target_cluster.REGISTRY_URI}) or set ${TRACKING_URI_ENV}"
        )
    scheme = urllib.parse.urlparse(uri).scheme
    if scheme in ("", "file", "sqlite"):
        raise KubeflowError(
            f"registry {uri!r} is a file on this machine, which no pod can open: pass the URI of an MLflow "
            f"server (http://...) or of a database the cluster reaches"
        )
    return uri


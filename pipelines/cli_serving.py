"""`mlops registry manifest TASK@ALIAS|TASK:VERSION`: a KServe InferenceService serving one registered
version, written as a kustomize overlay (default infra/k8s/serving/<task>/, namespace mlops):

    kustomization.yaml     namespace, labels, the two resources below
    servingruntime.yaml    <name>-tfserving: TensorFlow Serving for the `tensorflow` model format
    inferenceservice.yaml  serving.kserve.io/v1beta1 InferenceService, TensorFlow predictor

storageUri is the version's pushed path as the cluster sees it: the s3:// path a Kubeflow run pushed
to. A version pushed by a local run lives on a laptop; copy it to the cluster's store and pass
`--storage-uri` (the manifest then records that it was overridden, and the original path).

Why a ServingRuntime of our own: TF Serving serves numbered version folders under its base path
(`<base>/<N>/saved_model.pb`), while storageUri names one version's SavedModel folder (the Pusher's
`<serving root>/<task>/<version>/`), which KServe downloads to /mnt/models. The runtime links that
folder as version 1 of a base path, so TF Serving serves exactly the registered version (pointing
storageUri at the parent folder would serve the newest push instead of the alias's version).

Resources: the task declaration's `resources["Trainer"]` (the model was trained, and so fits, in
it), as request and limit; `--cpu/--memory/--gpu` override them. With a GPU the predictor gets
`nvidia.com/gpu`, the GPU pool's node selector and toleration (infra/k8s/README.md §5) and the
GPU build of TF Serving.
"""
from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from rich.markup import escape

from pipelines.cli import GROUPS, CliError, console, err_console, non_negative_int, task_or_error
from pipelines.config import ComponentResources

REPO = Path(__file__).resolve().parent.parent
SERVING_DIR = REPO / "infra" / "k8s" / "serving"
NAMESPACE = "mlops"  # infra/k8s/base/mlflow/namespace.yaml
# The namespace's IRSA service account (trusted by the workload role that reads the buckets).
SERVICE_ACCOUNT = "mlflow"
TF_SERVING_IMAGE = "tensorflow/serving:2.16.1"  # the TensorFlow release of constraints.txt
GPU_SUFFIX = "-gpu"
# storageUri schemes KServe's storage initializer downloads from.
CLUSTER_SCHEMES = ("s3", "gs", "pvc", "hdfs", "webhdfs", "http", "https", "oci", "hf")
GPU_LABEL = {"nvidia.com/gpu.present": "true"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}
FILES = ("kustomization.yaml", "servingruntime.yaml", "inferenceservice.yaml")


def serving_resources(task, cpu: Optional[str] = None, memory: Optional[str] = None, gpu: Optional[int] = None) -> ComponentResources:
    base = task.resources.get("Trainer") or ComponentResources(cpu="1", memory="2Gi")
    return ComponentResources(
        cpu=cpu if cpu is not None else base.cpu,
        memory=memory if memory is not None else base.memory,
        gpu=int(gpu if gpu is not None else base.gpu),
    )


def storage_uri(version, override: Optional[str]) -> Tuple[str, bool]:
    """(storageUri, overridden): the pushed path when the cluster can read it, else --storage-uri."""
    pushed = version.pushed_path or ""
    if override:
        if urllib.parse.urlparse(override).scheme not in CLUSTER_SCHEMES:
            raise CliError(f"--storage-uri {override} is not a URI the cluster can read ({', '.join(s + '://' for s in CLUSTER_SCHEMES)})", 2)
        return override.rstrip("/"), True
    if not pushed:
        raise CliError(f"{version.name} v{version.version} has no pushed SavedModel path (tag pushed_model_path); pass --storage-uri")
    if urllib.parse.urlparse(pushed).scheme in CLUSTER_SCHEMES:
        return pushed.rstrip("/"), False
    version_dir = Path(pushed).name
    raise CliError(
        f"{version.name} v{version.version} was pushed to {pushed}, which the cluster cannot read: copy it to the "
        f"cluster's store (e.g. `aws s3 sync {pushed} s3://BUCKET/serving/{version.name}/{version_dir}/`) and pass "
        f"--storage-uri s3://BUCKET/serving/{version.name}/{version_dir}"
    )


def dns_name(text: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = "m-" + name
    return name[:45].rstrip("-")


def _quantities(resources: ComponentResources) -> Dict[str, Dict[str, str]]:
    amounts = {}
    if resources.cpu:
        amounts["cpu"] = str(resources.cpu)
    if resources.memory:
        amounts["memory"] = str(resources.memory)
    limits = dict(amounts)
    if resources.gpu:
        limits["nvidia.com/gpu"] = str(resources.gpu)
    return {"requests": amounts, "limits": limits} if amounts or limits else {}


def serving_runtime(name: str, image: str) -> dict:
    script = (
        "mkdir -p /tmp/tfs && ln -sfn /mnt/models /tmp/tfs/1 && "
        "exec tensorflow_model_server --port=9000 --rest_api_port=8080 --model_name={{.Name}} "
        "--model_base_path=/tmp/tfs --rest_api_timeout_in_ms=60000"
    )
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": name},
        "spec": {
            "supportedModelFormats": [{"name": "tensorflow", "version": "2", "autoSelect": False}],
            "protocolVersions": ["v1", "grpc-v1"],
            "containers": [{
                "name": "kserve-container",
                "image": image,
                "command": ["/bin/sh", "-c"],
                "args": [script],
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            }],
        },
    }


def inference_service(task, version, ref: str, uri: str, overridden: bool, resources: ComponentResources,
                      name: str, runtime: str, service_account: Optional[str]) -> dict:
    annotations = {
        "mlops/model-ref": ref,
        "mlops/model-version": f"{version.name} v{version.version}",
        "mlops/pushed-path": version.pushed_path or "",
        "mlops/storage-uri": "overridden by --storage-uri (the pushed path is not on the cluster's store)"
        if overridden else "the version's pushed path",
    }
    if task.custom_op_modules:
        annotations["mlops/custom-ops"] = ", ".join(task.custom_op_modules)
    model = {"modelFormat": {"name": "tensorflow"}, "runtime": runtime, "storageUri": uri}
    quantities = _quantities(resources)
    if quantities:
        model["resources"] = quantities
    predictor: dict = {}
    if service_account:
        predictor["serviceAccountName"] = service_account
    if resources.gpu:
        predictor["nodeSelector"] = dict(GPU_LABEL)
        predictor["tolerations"] = [dict(GPU_TOLERATION)]
    predictor["model"] = model
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "labels": {"mlops/task": task.name, "mlops/model-version": str(version.version)},
            "annotations": annotations,
        },
        "spec": {"predictor": predictor},
    }


def kustomization(comment: str) -> Tuple[str, dict]:
    return comment, {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": NAMESPACE,
        "resources": ["servingruntime.yaml", "inferenceservice.yaml"],
        "labels": [{"pairs": {"app.kubernetes.io/part-of": "mlops", "app.kubernetes.io/component": "serving"},
                    "includeSelectors": False}],
    }


def build_overlay(task, version, ref: str, storage_override: Optional[str] = None, resources: Optional[ComponentResources] = None,
                  name: Optional[str] = None, image: Optional[str] = None, service_account: Optional[str] = SERVICE_ACCOUNT) -> Dict[str, Tuple[str, dict]]:
    """file name -> (header comment, document) of the overlay."""
    uri, overridden = storage_uri(version, storage_override)
    resources = resources or serving_resources(task)
    name = dns_name(name or task.name)
    runtime = f"{name}-tfserving"
    image = image or TF_SERVING_IMAGE + (GPU_SUFFIX if resources.gpu else "")
    how = f"--storage-uri {uri}" if overridden else "storageUri = the pushed path"
    comment = (
        f"# Generated by `mlops registry manifest {ref}`: {version.name} v{version.version}, {how}.\n"
        f"# Regenerate rather than edit. Deploy: kubectl apply -k <this folder> (KServe installed).\n"
    )
    return {
        "kustomization.yaml": kustomization(comment),
        "servingruntime.yaml": (comment, serving_runtime(runtime, image)),
        "inferenceservice.yaml": (comment, inference_service(task, version, ref, uri, overridden, resources, name, runtime, service_account)),
    }


def write_overlay(directory: Path, overlay: Dict[str, Tuple[str, dict]]) -> List[Path]:
    import yaml

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create {directory}: {exc.strerror} (choose another --output)") from None
    written = []
    for file_name, (comment, document) in overlay.items():
        path = directory / file_name
        try:
            path.write_text(comment + yaml.safe_dump(document, sort_keys=False, default_flow_style=False))
        except OSError as exc:
            raise CliError(f"cannot write {path}: {exc.strerror} (choose another --output)") from None
        written.append(path)
    return written


def cmd_manifest(args) -> int:
    from pipelines.cli_registry import version_for

    if "@" not in args.ref and ":" not in args.ref:
        raise CliError(f"expected TASK@ALIAS or TASK:VERSION (e.g. census@production or census:3), got {args.ref!r}", 2)
    name = re.split(r"[@:]", args.ref, 1)[0]
    task = task_or_error(name)
    version = version_for(args, args.ref)
    resources = serving_resources(task, args.cpu, args.memory, args.gpu)
    overlay = build_overlay(task, version, args.ref, args.storage_uri, resources, args.name, args.image,
                            args.service_account or None)
    directory = Path(args.output) if args.output else SERVING_DIR / dns_name(args.name or task.name)
    for path in write_overlay(directory, overlay):
        console.print(f"wrote {escape(str(path))}")
    isvc = overlay["inferenceservice.yaml"][1]
    console.print(f"storageUri {escape(isvc['spec']['predictor']['model']['storageUri'])}"
                  + (" (overridden: the pushed path is local)" if args.storage_uri else ""))
    if task.custom_op_modules and not args.image:
        err_console.print(f"[yellow]warning:[/] the {task.name} model needs the ops of {', '.join(task.custom_op_modules)}, "
                          f"which stock TF Serving lacks: pass --image with a TF Serving build that has them")
    console.print(f"deploy: kubectl apply -k {escape(str(directory))}")
    return 0


def register(sub) -> None:
    p = GROUPS["registry"]("manifest", cmd_manifest, "a KServe InferenceService overlay serving TASK@ALIAS or TASK:VERSION")
    p.add_argument("ref", metavar="TASK@ALIAS|TASK:VERSION")
    p.add_argument("--output", help="overlay folder (default: infra/k8s/serving/<task>/)")
    p.add_argument("--storage-uri", help="where the cluster reads the SavedModel (needed for versions pushed by a local run)")
    p.add_argument("--name", help="InferenceService name (default: the task)")
    p.add_argument("--image", help=f"TF Serving image (default {TF_SERVING_IMAGE}, {TF_SERVING_IMAGE}{GPU_SUFFIX} with a GPU)")
    p.add_argument("--service-account", default=SERVICE_ACCOUNT,
                   help=f"predictor service account with read access to the store (default {SERVICE_ACCOUNT}, the namespace's IRSA account; '' for none)")
    p.add_argument("--cpu", help="CPU request and limit (default: the task's Trainer resources)")
    p.add_argument("--memory", help="memory request and limit, e.g. 4Gi (default: the task's Trainer resources)")
    p.add_argument("--gpu", type=non_negative_int, help="GPUs (default: the task's Trainer resources; 0 for CPU serving)")

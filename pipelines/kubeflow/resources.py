"""Kubernetes resources of a task's steps on Kubeflow: CPU/memory requests and limits, and the GPU
node pool (accelerator, node selector, toleration) that GPU steps are scheduled on."""
from __future__ import annotations

import re
from typing import Any, Dict, List, Sequence

from pipelines.config import ComponentResources, TaskConfig

# The GPU node pool (infra/terraform, infra/k8s/README.md §5).
GPU_RESOURCE = "nvidia.com/gpu"
GPU_NODE_LABEL = {"nvidia.com/gpu.present": "true"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}

KUBERNETES_PLATFORM = "kubernetes"


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


def kubernetes_platform_spec(executor_labels: Sequence[str]) -> Dict[str, Any]:
    """PlatformSpec (JSON form) that pins the given executors to the GPU node pool."""
    if not executor_labels:
        return {}
    executors = {
        label: {"nodeSelector": {"labels": dict(GPU_NODE_LABEL)}, "tolerations": [dict(GPU_TOLERATION)]}
        for label in sorted(executor_labels)
    }
    return {"platforms": {KUBERNETES_PLATFORM: {"deploymentSpec": {"executors": executors}}}}

"""The cluster a package is compiled for, in one place: what a pod can get on each node type of the
Terraform pools (so a step no node can hold is a compile error, not a pod Pending forever), and the
in-cluster registry URL and KFP backend version that infra/ deploys. Tests compare each with infra/
(tfvars, rendered kustomize overlays, infra/k8s/README.md) so the two cannot drift.

Allocatable per node = capacity - kube-reserved - eviction threshold - the DaemonSets on every node:

- capacity: vCPUs and memory of the EC2 type, less 7.5% of memory for what the kernel and firmware
  keep (Karpenter's default vmMemoryOverheadPercent; an m6i.xlarge reports ~15.2 of its 16 GiB);
- kube-reserved (awslabs/amazon-eks-ami nodeadm/internal/kubelet/config.go, as bootstrap.sh did on
  AL2): CPU 6% of the first core, 1% of the second, 0.5% of cores 3-4, 0.25% above; memory
  255Mi + 11Mi x max pods, max pods = ENIs x (IPv4 per ENI - 1) + 2 (templates/shared/runtime/
  eni-max-pods.txt: 58 for all four types used); eviction-hard memory.available 100Mi;
- DaemonSets (requests): aws-node 25m (vpc-cni add-on, config/master/aws-k8s-cni.yaml), kube-proxy
  100m (EKS add-on), ebs-csi-node 3 x (10m, 40Mi) (aws-ebs-csi-driver deploy/kubernetes/base/
  node.yaml); GPU nodes also nvidia-device-plugin 50m, 64Mi (infra/k8s/base, checked by a test).

Result (cores, GiB, GPUs): m6i.xlarge 3.765 / 13.71 / 0, m6i.2xlarge 7.755 / 28.51 / 0,
g5.xlarge 3.715 / 13.65 / 1, g5.2xlarge 7.705 / 28.45 / 1.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple

from pipelines.kubeflow import KubeflowError

# In-cluster MLflow: Service `mlflow`, namespace `mlops`, port 5000 (infra/k8s/base/mlflow).
REGISTRY_URI = "http://mlflow.mlops.svc.cluster.local:5000"
# The KFP backend infra/k8s/README.md §4 installs and pipelines/kubeflow/dry_run.py emulates.
KFP_VERSION = "2.17.0"

CLUSTER_ENV = "MLOPS_CLUSTER"
DEFAULT_CLUSTER = "dev"

MI = 2**20
_VM_MEMORY_OVERHEAD = 0.075
_EVICTION_MI = 100
# (millicores, MiB) requested on every node / additionally on GPU nodes.
NODE_DAEMONSETS = {"aws-node": (25, 0), "kube-proxy": (100, 0), "ebs-csi-node": (30, 120)}
GPU_NODE_DAEMONSETS = {"nvidia-device-plugin": (50, 64)}


def kube_reserved_millicores(vcpus: int) -> int:
    """nodeadm's getCPUMillicoresToReserve: 6% / 1% / 0.5% / 0.25% of the cores in [0,1), [1,2),
    [2,4), [4,∞)."""
    total, reserved = vcpus * 1000, 0
    for start, end, basis_points in ((0, 1000, 600), (1000, 2000, 100), (2000, 4000, 50), (4000, 1 << 40, 25)):
        if total > start:
            reserved += (min(total, end) - start) * basis_points // 10000
    return reserved


@dataclass(frozen=True)
class Allocatable:
    """What one pod can request on an otherwise empty node."""

    cpu: float  # cores
    memory: int  # bytes
    gpu: int

    def describe(self) -> str:
        return f"{self.cpu:.2f} CPU, {self.memory / 2**30:.1f}Gi, {self.gpu} GPU"


@dataclass(frozen=True)
class NodeType:
    name: str
    vcpus: int
    memory_gib: int
    gpus: int
    max_pods: int

    def allocatable(self) -> Allocatable:
        daemonsets = list(NODE_DAEMONSETS.values()) + (list(GPU_NODE_DAEMONSETS.values()) if self.gpus else [])
        cpu_m = self.vcpus * 1000 - kube_reserved_millicores(self.vcpus) - sum(c for c, _ in daemonsets)
        capacity_mi = int(self.memory_gib * 1024 * (1 - _VM_MEMORY_OVERHEAD))
        memory_mi = capacity_mi - (255 + 11 * self.max_pods) - _EVICTION_MI - sum(m for _, m in daemonsets)
        return Allocatable(cpu=cpu_m / 1000, memory=memory_mi * MI, gpu=self.gpus)


# Every instance type infra/terraform/env/*.tfvars uses (tests/pipelines/test_kubeflow_cluster.py).
NODE_TYPES: Mapping[str, NodeType] = {
    n.name: n for n in (
        NodeType("m6i.xlarge", vcpus=4, memory_gib=16, gpus=0, max_pods=58),
        NodeType("m6i.2xlarge", vcpus=8, memory_gib=32, gpus=0, max_pods=58),
        NodeType("g5.xlarge", vcpus=4, memory_gib=16, gpus=1, max_pods=58),  # 1x A10G 24 GB
        NodeType("g5.2xlarge", vcpus=8, memory_gib=32, gpus=1, max_pods=58),
    )
}


@dataclass(frozen=True)
class Cluster:
    """A Terraform environment's node pools (cpu_instance_types, gpu_instance_type)."""

    name: str
    cpu_pool: Tuple[str, ...]
    gpu_pool: Tuple[str, ...]


CLUSTERS: Mapping[str, Cluster] = {
    "dev": Cluster("dev", cpu_pool=("m6i.xlarge",), gpu_pool=("g5.xlarge",)),
    "prod": Cluster("prod", cpu_pool=("m6i.2xlarge",), gpu_pool=("g5.2xlarge",)),
}


def get_cluster(name: Optional[str] = None) -> Cluster:
    """The named cluster, else $MLOPS_CLUSTER, else dev; KubeflowError for an unknown name."""
    name = name or os.environ.get(CLUSTER_ENV) or DEFAULT_CLUSTER
    if name not in CLUSTERS:
        raise KubeflowError(
            f"unknown cluster {name!r}: pass --cluster (or ${CLUSTER_ENV}) as one of {', '.join(sorted(CLUSTERS))}"
        )
    return CLUSTERS[name]


def _request(resources) -> Allocatable:
    from pipelines.kubeflow.resources import cpu_cores, memory_gb

    return Allocatable(
        cpu=cpu_cores(resources.cpu) if resources.cpu else 0.0,
        memory=int(memory_gb(resources.memory) * 10**9) if resources.memory else 0,
        gpu=int(resources.gpu or 0),
    )


def _fits(request: Allocatable, node: Allocatable) -> bool:
    return request.cpu <= node.cpu and request.memory <= node.memory and request.gpu <= node.gpu


def check_fits(task_name: str, resources: Mapping[str, object], cluster: Optional[str] = None) -> Cluster:
    """KubeflowError (one line, naming the step and the node type) if some step's request fits no
    node of its pool: GPU steps go to the GPU pool, the others to the CPU pool."""
    target = get_cluster(cluster)
    for step, res in sorted(resources.items()):
        request = _request(res)
        pool, kind = (target.gpu_pool, "GPU") if request.gpu else (target.cpu_pool, "CPU")
        nodes: Dict[str, Allocatable] = {t: NODE_TYPES[t].allocatable() for t in pool}
        if any(_fits(request, node) for node in nodes.values()):
            continue
        name, node = max(nodes.items(), key=lambda item: (item[1].cpu, item[1].memory))
        asked = f"{res.cpu or 0} CPU, {res.memory or '0'}, {request.gpu} GPU"
        raise KubeflowError(
            f"step {step} of {task_name} asks {asked}, but a {name} node of the {target.name} {kind} pool "
            f"allocates at most {node.describe()} to a pod: lower resources[{step!r}] in pipelines/tasks/"
            f"{task_name}.py or compile for a larger cluster (--cluster)"
        )
    return target

"""The cluster a package is compiled for (`pipelines/kubeflow/cluster.py`) against infra/: requests
that no node of the target pool can hold are compile errors, every task and profile fits dev and
prod, and the node types, registry URL and KFP version each live in one place that infra/ agrees
with (tfvars, the device plugin DaemonSet, the rendered kustomize overlays, infra/k8s/README.md)."""
from __future__ import annotations

import re
import shutil
import subprocess
import urllib.parse
import warnings

import pytest
import yaml

from pipelines import cli
from pipelines.config import ComponentResources
from pipelines.kubeflow import KubeflowError, cluster, compiler
from pipelines.tasks import KNOWN_TASKS, load_task, profiles
from tests.conftest import REPO
from tests.pipelines.test_kubeflow_compiler import IMAGE, no_network

TFVARS = REPO / "infra" / "terraform" / "env"
DATA_VERSION = {"md5": "0" * 32, "source": "test"}


def _compile(task, cluster_name=None, **kwargs):
    with warnings.catch_warnings(), no_network():
        warnings.simplefilter("ignore")
        return compiler.compile_pipeline(
            task, image=IMAGE, pipeline_root="s3://bucket/pipelines", registry_uri=cluster.REGISTRY_URI,
            data_version=DATA_VERSION, cluster=cluster_name, **kwargs)


# ------------------------------------------------------------------------------------------------
# requests against the node pools


@pytest.mark.parametrize("name", sorted(KNOWN_TASKS))
@pytest.mark.parametrize("cluster_name", sorted(cluster.CLUSTERS))
def test_every_task_and_profile_compiles_for_every_cluster(name, cluster_name):
    for profile, task in sorted(profiles(name).items()):
        compiled = _compile(task, cluster_name)
        assert compiled.cluster == cluster_name, profile


@pytest.mark.parametrize("resources, cluster_name, node", [
    (ComponentResources(cpu="4", memory="16Gi", gpu=1), "dev", "g5.xlarge"),  # the old census default
    (ComponentResources(cpu="8", memory="16Gi", gpu=1), "prod", "g5.2xlarge"),  # the old pets gpu profile
    (ComponentResources(cpu="1", memory="1Gi", gpu=2), "prod", "g5.2xlarge"),  # one GPU per node
    (ComponentResources(cpu="4"), "dev", "m6i.xlarge"),  # CPU steps go to the CPU pool
    (ComponentResources(cpu="2", memory="30Gi"), "prod", "m6i.2xlarge"),
])
def test_a_request_no_node_of_the_pool_can_hold_is_a_one_line_error_naming_step_and_node_type(
        resources, cluster_name, node):
    task = load_task("census").with_overrides(resources={"Trainer": resources})
    with pytest.raises(KubeflowError) as err:
        _compile(task, cluster_name)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("step Trainer of census asks ")
    assert f"a {node} node of the {cluster_name} " in message and "--cluster" in message


def test_a_request_too_big_for_dev_fits_prod():
    task = load_task("census").with_overrides(resources={"Trainer": ComponentResources(cpu="6", memory="24Gi", gpu=1)})
    with pytest.raises(KubeflowError, match="g5.xlarge node of the dev GPU pool"):
        cluster.check_fits(task.name, task.resources, "dev")
    assert cluster.check_fits(task.name, task.resources, "prod").name == "prod"


def test_cluster_option_and_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("pipelines.tasks.census.TASK", load_task("census").with_overrides(
        resources={"Trainer": ComponentResources(cpu="6", memory="24Gi", gpu=1)}))
    base = ["compile", "census", "--image", IMAGE, "--pipeline-root", str(tmp_path / "r"),
            "--output", str(tmp_path / "census.yaml"), "--registry-uri", cluster.REGISTRY_URI]
    monkeypatch.delenv(cluster.CLUSTER_ENV, raising=False)
    assert cli.main(base) == 1  # dev by default
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "step Trainer of census asks 6 CPU, 24Gi, 1 GPU" in err[0] and "g5.xlarge" in err[0]
    assert cli.main(base + ["--cluster", "prod"]) == 0
    assert "cluster: prod (requests fit CPU pool m6i.2xlarge, GPU pool g5.2xlarge)" in capsys.readouterr().out
    monkeypatch.setenv(cluster.CLUSTER_ENV, "prod")
    assert cli.main(base) == 0
    monkeypatch.setenv(cluster.CLUSTER_ENV, "staging")
    assert cli.main(base) == 1
    assert "unknown cluster 'staging'" in capsys.readouterr().err


def test_allocatable_follows_the_eks_ami_reservations():
    """Spot values worked out by hand from the formulas in cluster.py's docstring."""
    assert [cluster.kube_reserved_millicores(n) for n in (1, 2, 4, 8)] == [60, 70, 80, 90]
    g5 = cluster.NODE_TYPES["g5.xlarge"].allocatable()
    # 4000m - 80m kube-reserved - 205m DaemonSets; 15155Mi - 893Mi - 100Mi - 184Mi.
    assert g5.cpu == pytest.approx(3.715) and g5.memory == 13978 * 2**20 and g5.gpu == 1
    assert g5.memory < 14 * 2**30  # "< 15 GiB" (issue 24): 16Gi requests can never fit


# ------------------------------------------------------------------------------------------------
# one table, one URL, one version: each checked against infra/


def _tfvars(path):
    text = path.read_text()
    cpu = re.search(r'^cpu_instance_types\s*=\s*\[([^\]]*)\]', text, re.M)
    gpu = re.search(r'^gpu_instance_type\s*=\s*"([^"]+)"', text, re.M)
    assert cpu and gpu, f"{path.name}: cpu_instance_types / gpu_instance_type not found"
    return tuple(re.findall(r'"([^"]+)"', cpu.group(1))), (gpu.group(1),)


def test_node_type_table_matches_the_terraform_environments():
    envs = {p.stem: _tfvars(p) for p in sorted(TFVARS.glob("*.tfvars"))}
    assert set(envs) == set(cluster.CLUSTERS), "one cluster per infra/terraform/env/*.tfvars"
    for env, (cpu_pool, gpu_pool) in envs.items():
        assert (cluster.CLUSTERS[env].cpu_pool, cluster.CLUSTERS[env].gpu_pool) == (cpu_pool, gpu_pool), env
        for name in cpu_pool + gpu_pool:
            assert name in cluster.NODE_TYPES, f"{env}: {name} has no row in cluster.NODE_TYPES"
        assert all(cluster.NODE_TYPES[n].gpus == 0 for n in cpu_pool)
        assert all(cluster.NODE_TYPES[n].gpus >= 1 for n in gpu_pool)
    variables = (REPO / "infra" / "terraform" / "variables.tf").read_text()
    gpus = re.search(r'variable "gpu_count_per_node" \{.*?default\s*=\s*(\d+)', variables, re.S)
    assert gpus and {cluster.NODE_TYPES[n].gpus for _, pool in envs.values() for n in pool} == {int(gpus.group(1))}


def test_gpu_daemonset_requests_match_the_table():
    daemonset = yaml.safe_load((REPO / "infra/k8s/base/nvidia-device-plugin/daemonset.yaml").read_text())
    requests = daemonset["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    assert cluster.GPU_NODE_DAEMONSETS["nvidia-device-plugin"] == (
        int(requests["cpu"].rstrip("m")), int(requests["memory"].rstrip("Mi")))


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_registry_uri_is_the_mlflow_service_of_the_rendered_overlay(overlay):
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not installed: cannot render infra/k8s/overlays")
    rendered = subprocess.run(["kubectl", "kustomize", str(REPO / "infra/k8s/overlays" / overlay)],
                              capture_output=True, text=True, check=True, timeout=120).stdout
    services = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Service"]
    url = urllib.parse.urlparse(cluster.REGISTRY_URI)
    name, namespace, svc, domain = url.hostname.split(".", 3)
    assert (svc, domain) == ("svc", "cluster.local")
    matches = [s for s in services if (s["metadata"]["name"], s["metadata"].get("namespace")) == (name, namespace)]
    assert matches, f"no Service {name} in namespace {namespace}: {[s['metadata'] for s in services]}"
    assert url.port in [p["port"] for p in matches[0]["spec"]["ports"]]


def test_docs_name_only_the_registry_uri_of_the_manifests():
    host = urllib.parse.urlparse(cluster.REGISTRY_URI).hostname
    for doc in ("README.md", "infra/README.md", "infra/k8s/README.md"):
        text = (REPO / doc).read_text()
        for mention in re.findall(r"mlflow\.[a-z0-9-]+\.svc[a-z.]*", text):
            assert host.startswith(mention), f"{doc} names {mention}, infra/k8s deploys {host}"
    assert "mlflow.mlflow" not in (REPO / "pipelines/kubeflow/compiler.py").read_text()


def test_kfp_version_installed_is_the_one_emulated():
    readme = (REPO / "infra/k8s/README.md").read_text()
    installed = re.findall(r"^export PIPELINE_VERSION=(\S+)", readme, re.M)
    assert installed == [cluster.KFP_VERSION]
    assert f"kubeflow/pipelines {cluster.KFP_VERSION}" in (REPO / "pipelines/kubeflow/dry_run.py").read_text()
    for doc in ("README.md", "infra/README.md", "infra/k8s/README.md"):
        for version in re.findall(r"(?:Kubeflow Pipelines|KFP)(?: backend)? (\d+\.\d+\.\d+)", (REPO / doc).read_text()):
            assert version == cluster.KFP_VERSION, f"{doc} names KFP {version}"

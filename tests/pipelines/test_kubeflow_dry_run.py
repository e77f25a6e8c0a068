"""pipelines.kubeflow.steps and .dry_run: what the open-source KFP backend refuses, and a compiled
package run here the way that backend runs it (kubeflow/pipelines 2.17.0, backend/src/v2)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import cli
from pipelines.kubeflow import KubeflowError, backend_semantics, dry_run, emulation, steps
from pipelines.kubeflow.compiler import CompiledPipeline

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


# The whole pipeline through this emulation, on an s3:// root: tests/pipelines/test_kubeflow_s3.py.

"""Model registry against the embedded SQLite store: the Registrar in the real census pipeline,
promote / refuse / rollback / path through the CLI, and two concurrent promote processes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from ml_metadata import metadata_store
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils, standard_artifacts

from components import registrar
from pipelines import cli, cli_run, evaluation, factory, lineage, summary
from pipelines.config import load_task
from pipelines.registry import (
    HISTORY_TAG_PREFIX, TAG_PUSHED_PATH, Registry, replay,
)
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

PIPELINE = "mlops-census"


# ---- helpers shared with test_registry_server.py


def store_of(home):
    return metadata_store.MetadataStore(lineage.sqlite_config(os.path.join(home, "metadata.sqlite")))


def first_run(home) -> lineage.RunRecord:
    """The census_run fixture's own run (other tests may add later runs to the same home)."""
    store = store_of(home)
    return lineage.load_run(store, PIPELINE, lineage.list_run_ids(store, PIPELINE)[-1])


def real_inputs(home, record: lineage.RunRecord) -> dict:
    """The Registrar's input artifacts of a real run, read back from ML Metadata."""
    store = store_of(home)

    def load(node, key):
        found = record.nodes[node].output(key)
        artifact = store.get_artifacts_by_id([found.id])[0]
        return artifact_utils.deserialize_artifact(store.get_artifact_types_by_id([artifact.type_id])[0], artifact)

    return {
        "model": [load(factory.TRAINER, "model")],
        "model_blessing": [load(factory.EVALUATOR, "blessing")],
        "evaluation": [load(factory.EVALUATOR, "evaluation")],
        "pushed_model": [load(factory.PUSHER, "pushed_model")],
        "examples": [load(factory.EXAMPLE_GEN, "examples")],
        "hyperparameters": [load(factory.TUNER, "best_hyperparameters")],
    }


def run_registrar(inputs, out_dir: Path, run_id: str, **exec_properties) -> registrar.RegisteredModel:
    output = registrar.RegisteredModel()
    output.uri = str(out_dir)
    executor = registrar.Executor(base_executor.BaseExecutor.Context(pipeline_run_id=run_id))
    executor.Do(inputs, {"registered_model": [output]}, {"task": "census", **exec_properties})
    return output


def copy_blessed_version(reg: Registry, base, pushed_dir: Path):
    """Another blessed version (same lineage tags as base) served from pushed_dir."""
    if base.pushed_path and os.path.isdir(base.pushed_path):
        shutil.copytree(base.pushed_path, pushed_dir)
    else:
        pushed_dir.mkdir(parents=True)
    tags = {**base.tags, TAG_PUSHED_PATH: str(pushed_dir)}
    return reg.register("census", str(pushed_dir), tags, experiment=PIPELINE)


def mlops(args, capsys):
    status = cli.main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def concurrent_promotes(reg: Registry, home: str, versions, env) -> None:
    """Two real `mlops registry promote` processes that contend for the lock.

    The test holds the promote lock while both start, waits until both report that they are
    waiting for it, then lets go: both must then pass through the lock one after the other.
    """
    logs = []
    procs = []
    with reg.exclusive("census"):
        for version in versions:
            out = open(Path(home) / f"promote-v{version}.out", "w+")
            err = open(Path(home) / f"promote-v{version}.err", "w+")
            logs.append((out, err))
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "pipelines.cli", "registry", "promote", "census", str(version), "--home", home],
                cwd=REPO, env=env, stdout=out, stderr=err,
            ))
        deadline = time.monotonic() + 240
        try:
            while True:
                texts = [Path(err.name).read_text() for _, err in logs]
                if all("waiting:" in text for text in texts):
                    break
                for proc, text in zip(procs, texts):
                    assert proc.poll() is None, f"promote exited before taking the lock:\n{text}"
                assert time.monotonic() < deadline, f"promotes never waited for the lock: {texts}"
                time.sleep(0.2)
        except BaseException:
            for proc in procs:
                proc.kill()
            raise
    try:
        for proc, (out, err) in zip(procs, logs):
            assert proc.wait(timeout=240) == 0, Path(out.name).read_text() + Path(err.name).read_text()
            assert "promoted census" in Path(out.name).read_text()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for out, err in logs:
            out.close()
            err.close()


def assert_consistent_after_race(reg: Registry, before: int, contenders) -> None:
    history = reg.history("census", "production")
    first, second = history[-2:]
    assert {first["version"], second["version"]} == set(contenders)
    # Serialised: the second promote saw the first one's move.
    assert first["previous"] == before
    assert second["previous"] == first["version"]
    alias = reg.alias_version("census", "production")
    assert alias == second["version"] == replay(history)[-1]


def env_without_server():
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(REPO)
    return env


# ---- fixtures


@pytest.fixture
def no_server(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture
def registry_copy(census_run, tmp_path, no_server):
    """A private copy of the census run's registry (the shared one stays as the pipeline left it)."""
    _, home, status = census_run
    assert status == 0
    private = tmp_path / "home"
    private.mkdir()
    shutil.copy(Path(home) / "mlflow.db", private / "mlflow.db")
    reg = Registry.open(private)
    record = first_run(home)
    base = reg.version("census", record.nodes[factory.REGISTRAR].output("registered_model").get("model_version"))
    return str(private), reg, base


# ---- tests


def test_blessed_run_is_registered_with_its_lineage(census_run, capsys, no_server):
    root, home, status = census_run
    assert status == 0
    record = first_run(home)
    assert record.nodes[factory.REGISTRAR].state == "complete"
    output = record.nodes[factory.REGISTRAR].output("registered_model")
    assert output.type == "mlops.RegisteredModel"
    assert output.get("registered") == 1 and output.get("model_name") == "census" and output.get("reason") == ""
    assert os.path.exists(os.path.join(home, "mlflow.db"))

    info = Registry.open(home, must_exist=True).version("census", output.get("model_version"))
    tags = info.tags
    pushed = record.nodes[factory.PUSHER].output("pushed_model").get("pushed_destination")
    assert info.source == pushed == info.pushed_path and os.path.isdir(pushed)
    assert tags["blessed"] == "true" and tags["task"] == "census" and tags["pipeline"] == PIPELINE
    assert tags["pipeline_run_id"] == record.run_id
    for role, node in (("trainer", factory.TRAINER), ("evaluator", factory.EVALUATOR), ("pusher", factory.PUSHER)):
        assert tags[f"mlmd.{role}_execution_id"] == str(record.nodes[node].execution_id), role
    assert tags["mlmd.model_artifact_id"] == str(record.nodes[factory.TRAINER].output("model").id)
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert tags["git_commit"] == head and tags["git_dirty"] in ("true", "false")
    assert tags["dvc_data_md5"] == yaml.safe_load((root / "data.dvc").read_text())["outs"][0]["md5"]
    assert tags["dvc_data_dirty"] == "false"
    assert {"learning_rate", "embedding_dim"} <= set(json.loads(tags["hyperparameters"]))
    overall = evaluation.overall_metrics(record.nodes[factory.EVALUATOR].output("evaluation").uri)
    assert float(tags["metric.auc"]) == pytest.approx(overall["auc"], rel=1e-5)
    slices = json.loads(tags["slice_metrics"])
    assert "Overall" in slices and any(name.startswith("gender=") for name in slices)
    assert "auc" in slices["Overall"]
    # The MLflow run behind the version holds the same story (and the record in <home>/mlartifacts).
    assert info.run_id and list(Path(home, "mlartifacts").rglob("registration.json"))

    result = summary.summarize(record)
    assert result.registered and result.registered_as == f"census v{info.version}"
    cli_run._print_summary(load_task("census"), result)
    assert f"registered as census v{info.version}" in capsys.readouterr().out


def test_unblessed_model_is_not_registered(census_run, tmp_path, capsys, no_server):
    _, home, _ = census_run
    record = first_run(home)
    inputs = real_inputs(home, record)
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    os.makedirs(blessing.uri)
    Path(blessing.uri, "NOT_BLESSED").write_text("")
    blessing.set_int_custom_property("blessed", 0)
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    pushed.set_int_custom_property("pushed", 0)
    registry_home = tmp_path / "registry"
    uri = f"sqlite:///{registry_home}/mlflow.db"

    output = run_registrar(
        {**inputs, "model_blessing": [blessing], "pushed_model": [pushed]}, tmp_path / "out", record.run_id,
        registry_uri=uri,
    )
    assert output.get_int_custom_property("registered") == 0
    assert output.get_string_custom_property("model_version") == ""
    assert "did not bless" in output.get_string_custom_property("reason")
    assert not registry_home.exists(), "an unblessed model must not even open the registry"

    # Blessed but not pushed: not registered either.
    output = run_registrar({**inputs, "pushed_model": [pushed]}, tmp_path / "out2", record.run_id, registry_uri=uri)
    assert output.get_int_custom_property("registered") == 0
    assert "did not push" in output.get_string_custom_property("reason")
    assert not registry_home.exists()

    cli_run._print_summary(load_task("census"), summary.RunSummary(
        "r", [], blessed=False, registered=False, registry_reason="the Evaluator did not bless the model",
    ))
    assert "not registered: the Evaluator did not bless the model" in capsys.readouterr().out


def test_promote_path_rollback_through_the_cli(registry_copy, tmp_path, capsys):
    home, reg, v1 = registry_copy
    v2 = copy_blessed_version(reg, v1, tmp_path / "serving" / "2")
    v3 = copy_blessed_version(reg, v1, tmp_path / "serving" / "3")
    h = ["--home", home]

    status, out, _ = mlops(["registry", "list"] + h, capsys)
    assert status == 0 and "census" in out
    status, out, _ = mlops(["registry", "list", "census"] + h, capsys)
    assert status == 0 and f"v{v3.version}" in out
    status, out, _ = mlops(["registry", "show", "census", str(v1.version)] + h, capsys)
    assert status == 0 and "pipeline_run_id" in out and "metrics per slice" in out

    for version in (v1, v2, v3):
        status, out, err = mlops(["registry", "promote", "census", str(version.version)] + h, capsys)
        assert status == 0, err
        assert f"promoted census v{version.version} to production" in out
        status, out, _ = mlops(["registry", "path", "census@production"] + h, capsys)
        assert status == 0 and out.strip() == version.pushed_path
    status, out, _ = mlops(["registry", "promote", "census", str(v3.version)] + h, capsys)
    assert status == 0 and "already" in out

    status, out, _ = mlops(["registry", "rollback", "census"] + h, capsys)
    assert status == 0 and f"v{v3.version} -> v{v2.version}" in out
    assert mlops(["registry", "path", "census@production"] + h, capsys)[1].strip() == v2.pushed_path
    status, out, _ = mlops(["registry", "rollback", "census"] + h, capsys)
    assert status == 0 and f"v{v2.version} -> v{v1.version}" in out
    status, _, err = mlops(["registry", "rollback", "census"] + h, capsys)
    assert status == 1 and "no earlier promotion" in err

    # Another alias has its own history; the production history lives on the registered model.
    assert mlops(["registry", "promote", "census", f"v{v3.version}", "--alias", "staging"] + h, capsys)[0] == 0
    model = reg.client.get_registered_model("census")
    assert model.aliases == {"production": v1.version, "staging": v3.version}
    history = json.loads(model.tags[HISTORY_TAG_PREFIX + "production"])
    assert [(e["action"], e["version"]) for e in history] == [
        ("promote", v1.version), ("promote", v2.version), ("promote", v3.version),
        ("rollback", v2.version), ("rollback", v1.version),
    ]
    assert all(e["at"] and e["by"] for e in history)
    status, out, _ = mlops(["registry", "history", "census"] + h, capsys)
    assert status == 0 and out.count("rollback") == 2
    status, _, err = mlops(["registry", "path", "census@canary"] + h, capsys)
    assert status == 1 and "no alias 'canary'" in err


def test_promote_refuses_unknown_and_unblessed_versions(registry_copy, tmp_path, capsys):
    home, reg, v1 = registry_copy
    h = ["--home", home]
    # Versions made without the Registrar: no blessed tag, or blessed=false.
    untagged = reg.client.create_model_version("census", str(tmp_path / "elsewhere"), tags={"task": "census"})
    falsely = reg.client.create_model_version("census", str(tmp_path / "elsewhere2"), tags={"blessed": "false"})
    before = reg.client.get_registered_model("census").aliases

    for version in (untagged.version, falsely.version):
        status, _, err = mlops(["registry", "promote", "census", str(version)] + h, capsys)
        assert status == 1 and f"census v{version} is not blessed" in err
    status, _, err = mlops(["registry", "promote", "census", "999"] + h, capsys)
    assert status == 1 and "census has no version 999" in err
    status, _, err = mlops(["registry", "promote", "nosuchtask", "1"] + h, capsys)
    assert status == 1 and "no registered model 'nosuchtask'" in err and "known tasks: census" in err
    status, _, err = mlops(["registry", "promote", "census", "latest"] + h, capsys)
    assert status == 1 and "not a version number" in err
    status, _, err = mlops(["registry", "list"] + ["--home", str(tmp_path / "empty")], capsys)
    assert status == 1 and "no model registry at" in err
    assert reg.client.get_registered_model("census").aliases == before
    assert reg.history("census") == []


def test_two_concurrent_promotes_leave_one_consistent_alias(registry_copy, tmp_path, capsys):
    home, reg, v1 = registry_copy
    v2 = copy_blessed_version(reg, v1, tmp_path / "serving" / "2")
    v3 = copy_blessed_version(reg, v1, tmp_path / "serving" / "3")
    assert reg.promote("census", v1.version).action == "promote"

    concurrent_promotes(reg, home, [v2.version, v3.version], env_without_server())

    assert_consistent_after_race(reg, v1.version, [v2.version, v3.version])
    # The lock file sits next to the database and is free again.
    assert (Path(home) / "mlflow.db.lock").exists()
    first = reg.history("census")[-2]["version"]
    assert reg.rollback("census").version == first
